"""Harness approval instances as ApprovalItems; decisions with the clicker's personal API key.

Why no relative times here: "expires in 2 h" would change the fingerprint every poll; the item
keeps the raw deadline and the card renders the countdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
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
from connectors.http import Sleep

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
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self._timeout, self._sleep, self._backoff = timeout, sleep, backoff_base
        self.service = self._client(settings.token)
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
        items: list[ApprovalItem] = []
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
                        items.append(self._item(wire, org, project, execution))
        return sorted(items, key=lambda i: i.external_id)

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        wire = await self.service.instance(item.external_id)
        if not wire:
            raise NotFound(f"approval instance {item.external_id} not found")
        execution = self._executions.get(item.ref["execution"], {"planExecutionId": item.ref["execution"]})
        return self._item(wire, item.ref["org"], item.ref["project"], execution)

    async def check(self) -> str:
        total = 0
        for scope in self.settings.projects:
            org, project = scope.split("/")
            total += len(await self.service.waiting_executions(org, project))
        return f"reachable; {total} execution(s) waiting for approval"

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
        approved = tuple(a.person for a in activities if a.action is Action.APPROVE)
        rejected = tuple(a.person for a in activities if a.action is Action.REJECT)
        groups = ", ".join(approvers.get("userGroups") or []) or "no user groups"
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
            groups=(
                ApproverGroup(
                    groups,
                    GroupState.DUE if status is Status.PENDING else GroupState.RESOLVED,
                    int(approvers.get("minimumCount") or 1),
                    (),
                    approved,
                    rejected,
                ),
            ),
            fields=(
                Field("Pipeline", pipeline),
                Field("Execution", execution_id),
                Field("Approver groups", groups),
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
