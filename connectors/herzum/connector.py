"""Herzum Approval items: listed per linked person, decided as that person.

Why per person: Herzum's `username=` filter returns exactly the approvals that Jira user can act
on, which is who should get the card. One approval seen by several linked people is one item
with several recipients. Jira issue keys, summaries and status names are cached per connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    Action,
    ActionSpec,
    Actor,
    ApprovalItem,
    Capabilities,
    Connector,
    CredentialField,
    Field,
    InputDef,
    LinkedUser,
    Person,
    Status,
    VendorIdentity,
)
from connectors.errors import AlreadyDecided, InvalidInput, NotAllowed, NotFound, Unsupported
from connectors.herzum import HerzumSettings
from connectors.herzum.client import HerzumClient
from connectors.http import Sleep

STATUSES = {
    "PENDING": Status.PENDING,
    "APPROVED": Status.APPROVED,
    "REJECTED": Status.REJECTED,
    "ABSTAINED": Status.CANCELLED,
}
WIRE_ACTIONS = {
    Action.APPROVE: "APPROVE",
    Action.REJECT: "REJECT",
    Action.ABSTAIN: "ABSTAIN",
    Action.RESET: "RESET",
}


# Slack has no masked input: the person must know the password shows as typed and passes through Slack.
PASSWORD_NOTE = (
    "Jira asks for your password on each decision. Slack cannot hide what you type here: it shows "
    "on your screen and passes through Slack to this bot, which sends it to Jira for this one "
    "decision only and never stores or logs it."
)
WRONG_PASSWORD = (
    "the Jira password you typed for this decision is wrong. Your linked account is unchanged; "
    "click again and retype it"
)


def parse_date(text: Any) -> datetime | None:
    """Herzum dates are "dd/MM/yyyy HH:mm:ss" strings (or "Not Sent")."""
    try:
        return datetime.strptime(str(text), "%d/%m/%Y %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


class HerzumConnector(Connector):
    type = "herzum"
    vendor_label = "Jira"
    capabilities = Capabilities(
        approve=True,
        reject=True,
        abstain=True,
        reset=True,
        comments=True,
        link_mode="credentials",
        per_user_listing=True,
        notes=("Actionable only while the issue is in the approval's source status.",),
    )
    credential_fields = (
        CredentialField("username", "Jira username", secret=False),
        CredentialField("secret", "Password or personal access token", hint="Your Jira password or a PAT"),
    )

    def __init__(
        self,
        name: str,
        settings: HerzumSettings,
        *,
        timeout: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = 0.5,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self._timeout, self._sleep, self._backoff = timeout, sleep, backoff_base
        self.service = self._client(settings.username, settings.secret)
        self._issues: dict[str, tuple[str, str]] = {}  # issue id → (key, summary)
        self._status_names: dict[str, str] = {}
        # Actions Herzum answered `issueapproval.action.disabled` for: no longer offered here.
        self.disabled: set[Action] = set()

    def _client(self, username: str, secret: str) -> HerzumClient:
        return HerzumClient(
            self.settings.base_url,
            username,
            secret,
            timeout=self._timeout,
            sleep=self._sleep,
            backoff_base=self._backoff,
        )

    async def aclose(self) -> None:
        await self.service.aclose()

    # ---- reading -----------------------------------------------------------------------------------

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        seen: dict[str, tuple[dict[str, Any], list[Person]]] = {}
        for user in linked:
            for wire in await self.service.pending_for(user.vendor_user_id):
                key = str(wire["id"])
                entry = seen.setdefault(key, (wire, []))
                entry[1].append(Person(user.vendor_user_id, user.vendor_user_id, user.email))
        items = []
        for wire, people in seen.values():
            items.append(await self._item(wire, tuple(sorted(people, key=lambda p: p.id))))
        return sorted(items, key=lambda i: i.external_id)

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        issue_id = item.ref.get("issueId", "")
        for wire in await self.service.approvals_of_issue(issue_id):
            if str(wire.get("id")) == item.external_id:
                return await self._item(wire, item.recipients)
        raise NotFound(f"approval {item.external_id} is no longer on issue {issue_id}")

    async def check(self) -> str:
        me = await self.service.myself()
        return f"reachable as {me.get('name')}"

    async def _issue(self, issue_id: str) -> tuple[str, str, str]:
        """(key, summary, current status id); the status is read every time, it decides "due"."""
        body = await self.service.issue(issue_id)
        fields = body.get("fields") or {}
        key, summary = str(body.get("key") or issue_id), str(fields.get("summary") or "")
        self._issues[issue_id] = (key, summary)
        return key, summary, str((fields.get("status") or {}).get("id") or "")

    async def _status(self, status_id: str) -> str:
        if status_id not in self._status_names:
            self._status_names[status_id] = await self.service.status_name(status_id)
        return self._status_names[status_id]

    async def _item(self, wire: dict[str, Any], recipients: tuple[Person, ...]) -> ApprovalItem:
        issue_id = str(wire.get("issueId"))
        key, summary, current = await self._issue(issue_id)
        status = STATUSES.get(str(wire.get("approvalStatus")), Status.CANCELLED)
        source = str(wire.get("sourceStatusId") or "")
        due = status is Status.PENDING and (not source or source == current)
        notices: list[str] = []
        if status is Status.PENDING and not due:
            notices.append(
                f"Waits until {key} is in status “{await self._status(source)}”; it cannot be decided before that."
            )
        fields = [
            Field("Issue", f"{key}: {summary}"),
            Field("Approval", str(wire.get("approvalName") or "")),
            Field("Transition", str(wire.get("transitionName") or "")),
        ]
        if wire.get("isOptionalApproval"):
            fields.append(Field("Optional", "yes"))
        submitted = parse_date(wire.get("submittedDate"))
        approver = wire.get("approverUser")
        return ApprovalItem(
            connector=self.name,
            external_id=str(wire["id"]),
            kind="Jira approval",
            title=f"{key}: {summary}" if summary else key,
            status=status,
            summary=f"{wire.get('approvalName') or 'Approval'} for “{wire.get('transitionName') or 'the next step'}”",
            url=f"{self.settings.link_url}/browse/{key}",
            created_at=submitted,
            fields=tuple(f for f in fields if f.value),
            actions=self._actions() if due else (),
            notices=tuple(notices),
            recipients=recipients,
            decided_by=Person(str(approver), str(approver)) if approver and status.final else None,
            decided_at=parse_date(wire.get("date")) if status.final else None,
            ref={"issueId": issue_id, "issueKey": key},
        )

    def _actions(self) -> tuple[ActionSpec, ...]:
        password = (
            InputDef(
                "password",
                "Your Jira password",
                kind="password",
                required=True,
                description=PASSWORD_NOTE,
            ),
        )
        inputs = password if self.settings.require_password else ()
        comment_required = "required" if self.settings.require_comment else None
        wanted = [Action.APPROVE, Action.REJECT]
        if self.settings.enable_abstain:
            wanted.append(Action.ABSTAIN)
        if self.settings.enable_reset:
            wanted.append(Action.RESET)
        specs = []
        for action in wanted:
            if action in self.disabled:
                continue
            comment = comment_required or ("optional" if action is Action.REJECT else "none")
            confirm = "Reject this approval in Jira?" if action is Action.REJECT else None
            specs.append(ActionSpec(action, comment=comment, inputs=inputs, confirm=confirm))  # type: ignore[arg-type]
        return tuple(specs)

    # ---- acting ------------------------------------------------------------------------------------

    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        if action not in WIRE_ACTIONS:
            raise Unsupported(f"Herzum has no {action.value} action")
        body: dict[str, Any] = {"action": WIRE_ACTIONS[action], "username": actor.vendor_user_id}
        if comment:
            body["comment"] = comment
        if inputs and inputs.get("password"):
            body["password"] = inputs["password"]
        client = self._client(
            actor.credentials.get("username", actor.vendor_user_id), actor.credentials.get("secret", "")
        )
        try:
            wire = await client.act(item.external_id, body)
        except InvalidInput as exc:
            if exc.field == "password":
                raise InvalidInput(str(exc), field="password", detail=WRONG_PASSWORD) from exc
            raise
        except NotAllowed as exc:
            if exc.reason == "action_disabled":
                self.disabled.add(action)
                raise
            if exc.reason == "not_approver":
                # Herzum answers the same 403 when the approval was decided elsewhere: re-read to tell.
                fresh = await self.refresh(item)
                if fresh.status.final:
                    raise AlreadyDecided(str(exc), status=fresh.status) from exc
            raise
        finally:
            await client.aclose()
        return await self._item(wire, item.recipients)

    async def verify(self, credentials: Mapping[str, str]) -> VendorIdentity:
        client = self._client(credentials.get("username", ""), credentials.get("secret", ""))
        try:
            me = await client.myself()
        finally:
            await client.aclose()
        name = str(me.get("name") or credentials.get("username", ""))
        if name.lower() != credentials.get("username", "").lower():
            raise NotAllowed("these credentials belong to another Jira user", reason="wrong_user")
        return VendorIdentity(name, str(me.get("displayName") or name), me.get("emailAddress"))
