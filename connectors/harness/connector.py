"""Harness approval instances as ApprovalItems; decisions with the clicker's personal API key.

Who may decide a step is the members of its approver user groups, read with the service token
from Harness's user-group members API (every page) and kept for `membership_ttl`: the item's
groups carry those people (with their emails) and its recipients are all of them, so each gets
the card in their DM and a person's queue holds only the steps of their groups. A group the
token may not read (403) stays on the item without people and the card goes to the channel
(`channel_card`); `check()` names the missing permission.

Why no relative times here: "expires in 2 h" would change the fingerprint every poll; the item
keeps the raw deadline and the card renders the countdown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    Action,
    ActionSpec,
    Activity,
    Actor,
    ApprovalItem,
    ApproverGroup,
    Capabilities,
    Connector,
    CredentialField,
    Field,
    GroupState,
    InputDef,
    LinkedUser,
    Person,
    Status,
    VendorIdentity,
)
from connectors.errors import AuthExpired, NotAllowed, NotFound, Unsupported
from connectors.harness import HarnessSettings
from connectors.harness.client import WIRE_STATUS, HarnessClient
from connectors.harness.groups import GroupRef, group_refs
from connectors.http import Sleep
from connectors.membership import DEFAULT_TTL, Clock, Members, MembershipCache

log = logging.getLogger(__name__)

# The permission the members call needs ("User Groups: View" in Harness's role editor).
GROUP_VIEW = "core_usergroup_view"

AUTO_REJECT = "Approving also rejects older runs of this pipeline waiting on this step."


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC) if value else None
    except (TypeError, ValueError):
        return None


class HarnessConnector(Connector):
    type = "harness"
    vendor_label = "Harness"
    capabilities = Capabilities(
        approve=True, reject=True, comments=True, approver_inputs=True, link_mode="credentials"
    )
    credential_fields = (
        CredentialField("api_key", "Personal API key", hint="a pat.… token from your Harness profile"),
    )

    def __init__(
        self,
        name: str,
        settings: HarnessSettings,
        *,
        timeout: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = 0.5,
        membership_ttl: timedelta = DEFAULT_TTL,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self._timeout, self._sleep, self._backoff = timeout, sleep, backoff_base
        self.service = self._client(settings.token)
        self._members: MembershipCache[tuple[str | None, str | None, str]] = (
            MembershipCache(membership_ttl, clock=clock) if clock else MembershipCache(membership_ttl)
        )
        # Groups the service token may not read (key → display name), for check().
        self._unreadable: dict[tuple[str | None, str | None, str], str] = {}
        self._quiet: dict[str, int] = {}  # project → cycles left to skip
        self._executions: dict[str, dict[str, Any]] = {}  # execution id → summary (cache)

    def _client(self, key: str) -> HarnessClient:
        return HarnessClient(
            self.settings.base_url,
            self.settings.account,
            key,
            timeout=self._timeout,
            sleep=self._sleep,
            backoff_base=self._backoff,
        )

    async def aclose(self) -> None:
        await self.service.aclose()

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        found: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = []
        for scope in self.settings.projects:
            if self._quiet.get(scope, 0) > 0:
                self._quiet[scope] -= 1
                continue
            org, project = scope.split("/")
            executions = await self.service.waiting_executions(org, project)
            if not executions:
                self._quiet[scope] = self.settings.quiet_every - 1
            for execution in executions:
                execution_id = str(execution["planExecutionId"])
                self._executions[execution_id] = execution
                for wire in await self.service.instances(org, project, execution_id):
                    if wire.get("type", "HarnessApproval") == "HarnessApproval":
                        found.append((wire, org, project, execution))
        await self._resolve(ref for wire, org, project, _ in found for ref in self._refs(wire, org, project))
        items = [self._item(wire, org, project, execution) for wire, org, project, execution in found]
        return sorted(items, key=lambda i: i.external_id)

    @staticmethod
    def _refs(wire: Mapping[str, Any], org: str, project: str) -> list[GroupRef]:
        return group_refs(wire.get("details") or {}, org, project)

    async def _resolve(self, refs: Iterable[GroupRef]) -> None:
        """Read the members of every group not read within `membership_ttl` (each once)."""
        by_key = {ref.key: ref for ref in refs}
        due = self._members.due(by_key)
        await asyncio.gather(
            *(self._members.refresh(key, functools.partial(self._load, by_key[key])) for key in due)
        )

    async def _load(self, ref: GroupRef) -> Members:
        try:
            rows = await self.service.group_members(ref.identifier, org=ref.org, project=ref.project)
        except NotAllowed as exc:
            log.info("%s: may not read user group %s (%s)", self.name, ref.identifier, exc)
            self._unreadable[ref.key] = ref.name
            return Members(unreadable=GROUP_VIEW)
        except NotFound:
            return Members(unreadable="not found")
        self._unreadable.pop(ref.key, None)
        people = {
            str(row.get("uuid") or row.get("email")): Person(
                str(row.get("uuid") or row.get("email")), str(row.get("name") or ""), row.get("email") or None
            )
            for row in rows
            if not row.get("disabled") and not row.get("locked") and (row.get("uuid") or row.get("email"))
        }
        return Members(tuple(sorted(people.values(), key=lambda p: p.id)))

    def _groups(
        self, refs: Sequence[GroupRef], state: GroupState, required: int, activities: Sequence[Activity]
    ) -> tuple[tuple[ApproverGroup, ...], tuple[Person, ...], bool]:
        """The step's groups with their people, everyone who may decide, and whether someone may
        decide who cannot be named (a group unreadable, or no group at all)."""
        members = [self._members.known(ref.key) or Members(unreadable="not read") for ref in refs]
        emails = [{(p.email or "").lower() for p in m.people} for m in members]
        placed: list[tuple[list[Person], list[Person]]] = [([], []) for _ in refs]
        for activity in activities:
            email = (activity.person.email or "").lower()
            homes = [i for i, known in enumerate(emails) if email and email in known] or [0]
            for i in homes if placed else ():
                (placed[i][0] if activity.action is Action.APPROVE else placed[i][1]).append(activity.person)
        groups = tuple(
            ApproverGroup(ref.name, state, required, m.people, tuple(ok), tuple(no))
            for ref, m, (ok, no) in zip(refs, members, placed, strict=True)
        )
        everyone = {p.id: p for m in members for p in m.people}
        unnamed = not refs or any(m.unreadable for m in members)
        return groups, tuple(sorted(everyone.values(), key=lambda p: p.id)), unnamed

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        wire = await self.service.instance(item.external_id)
        if not wire:
            raise NotFound(f"approval instance {item.external_id} not found")
        execution = self._executions.get(item.ref["execution"], {"planExecutionId": item.ref["execution"]})
        await self._resolve(self._refs(wire, item.ref["org"], item.ref["project"]))
        return self._item(wire, item.ref["org"], item.ref["project"], execution)

    async def check(self) -> str:
        """Reach Harness, and read the members of every group a waiting step names: a group the
        service token may not read is named with the permission it lacks."""
        self._quiet.clear()
        items = await self.fetch_pending()
        text = f"reachable; {len(items)} approval step(s) waiting"
        hidden = sorted(set(self._unreadable.values()))
        if hidden:
            text += (
                f"; cannot read the members of user group(s) {', '.join(hidden)}: the service token "
                f"needs the “User Groups: View” permission ({GROUP_VIEW}); until then those steps are "
                "carded in the channel only"
            )
        return text

    def _item(self, wire: dict[str, Any], org: str, project: str, execution: dict[str, Any]) -> ApprovalItem:
        details = wire.get("details") or {}
        approvers = details.get("approvers") or {}
        status = WIRE_STATUS.get(str(wire.get("status")), Status.CANCELLED)
        activities = [
            Activity(
                Person(
                    str(a["user"].get("email") or a["user"].get("name")),
                    a["user"].get("name") or "",
                    a["user"].get("email"),
                ),
                Action.APPROVE if a.get("action") == "APPROVE" else Action.REJECT,
                _ms(a.get("approvedAt")),
                a.get("comments") or None,
            )
            for a in details.get("approvalActivities") or []
        ]
        refs = self._refs(wire, org, project)
        groups, everyone, unnamed = self._groups(
            refs,
            GroupState.DUE if status is Status.PENDING else GroupState.RESOLVED,
            int(approvers.get("minimumCount") or 1),
            activities,
        )
        if not groups:
            # Harness lets nobody decide a step without user groups; the card says so.
            groups = (
                ApproverGroup(
                    "No user groups", GroupState.DUE if status is Status.PENDING else GroupState.RESOLVED
                ),
            )
        trigger = (execution.get("executionTriggerInfo") or {}).get("triggeredBy") or {}
        requester = (
            Person(
                str(trigger.get("identifier") or ""),
                str(trigger.get("identifier") or ""),
                (trigger.get("extraInfo") or {}).get("email"),
            )
            if trigger
            else None
        )
        pipeline = str(execution.get("name") or execution.get("pipelineIdentifier") or "pipeline")
        run = execution.get("runSequence")
        execution_id = str(execution.get("planExecutionId"))
        inputs = tuple(
            InputDef(
                name=str(i["name"]),
                label=str(i.get("description") or i["name"]),
                kind="select" if i.get("allowedValues") else "text",
                default=i.get("defaultValue"),
                allowed=tuple(str(v) for v in i.get("allowedValues") or ()),
                required=bool(i.get("required")),
            )
            for i in details.get("approverInputs") or []
        )
        actions: tuple[ActionSpec, ...] = ()
        if status is Status.PENDING:
            actions = (
                ActionSpec(Action.APPROVE, comment="optional" if inputs else "none", inputs=inputs),
                ActionSpec(
                    Action.REJECT,
                    comment="optional",
                    confirm="Reject this approval step? One rejection ends it.",
                ),
            )
        notices = (AUTO_REJECT,) if details.get("isAutoRejectEnabled") and status is Status.PENDING else ()
        last = activities[-1] if activities and status.final else None
        ui = self.settings.ui_url.rstrip("/")
        return ApprovalItem(
            connector=self.name,
            external_id=str(wire["id"]),
            kind="Pipeline approval",
            title=f"{pipeline}{f' #{run}' if run else ''}: approval",
            status=status,
            summary=str(details.get("approvalMessage") or ""),
            url=f"{ui}/ng/account/{self.settings.account}/module/cd/orgs/{org}/projects/{project}/pipelines/"
            f"{execution.get('pipelineIdentifier') or pipeline}/executions/{execution_id}/pipeline",
            requester=requester,
            created_at=_ms(wire.get("created")),
            deadline=_ms(wire.get("deadline")),
            groups=groups,
            recipients=everyone,
            channel_card=unnamed,
            fields=(
                Field("Pipeline", pipeline),
                # The run number, not the execution id: people know a run by its number.
                *((Field("Run", f"#{run}"),) if run else ()),
                Field("Approver groups", ", ".join(g.name for g in groups)),
                *((Field("Triggered by", requester.label),) if requester and requester.label else ()),
            ),
            actions=actions,
            activities=tuple(activities),
            notices=notices,
            decided_by=last.person if last else None,
            decided_at=last.at if last else None,
            decision_note=last.comment if last else None,
            ref={
                "org": org,
                "project": project,
                "execution": execution_id,
                "callback": str(details.get("callbackId") or ""),
            },
        )

    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        if action not in (Action.APPROVE, Action.REJECT):
            raise Unsupported(f"Harness has no {action.value} action")
        key = actor.credentials.get("api_key", "")
        client = self._client(key)
        wire_action = "APPROVE" if action is Action.APPROVE else "REJECT"
        values = [{"name": k, "value": v} for k, v in (inputs or {}).items() if action is Action.APPROVE]
        try:
            if self.settings.act_by == "execution":
                await client.act_on_execution(
                    item.ref["org"],
                    item.ref["project"],
                    item.ref["execution"],
                    {"action": wire_action, "comments": comment or "", "approver_inputs": values},
                    item.ref.get("callback") or None,
                )
                return await self.refresh(item)
            wire = await client.act_on_instance(
                item.external_id, {"action": wire_action, "comments": comment or "", "approverInputs": values}
            )
        finally:
            await client.aclose()
        execution = self._executions.get(item.ref["execution"], {"planExecutionId": item.ref["execution"]})
        return self._item(wire, item.ref["org"], item.ref["project"], execution)

    async def verify(self, credentials: Mapping[str, str]) -> VendorIdentity:
        key = credentials.get("api_key", "").strip()
        if key.startswith("sat."):
            raise NotAllowed("service-account key", reason="service_account")
        parts = key.split(".")
        if len(parts) < 4 or parts[0] != "pat":
            raise AuthExpired("not a personal access token (pat.<account>.<id>.<secret>)")
        if parts[1] != self.settings.account:
            raise NotAllowed("key of another account", reason="wrong_account")
        client = self._client(key)
        try:
            user = await client.current_user()
        finally:
            await client.aclose()
        return VendorIdentity(
            str(user.get("uuid") or user.get("email")), str(user.get("name") or ""), user.get("email")
        )
