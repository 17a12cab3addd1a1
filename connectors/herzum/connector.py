"""Herzum Approval items: every PENDING approval, and who among the linked people may decide it.

Why two listings: the service account lists every PENDING approval (`username` is optional on
`issueapprovals`), so an approval waiting on someone who never linked still gets a card in the
connector's channel. Herzum names no approvers on an approval, so who may decide comes from each
linked person's own listing (`username=<them>`): they become the item's approvers and recipients
(their DMs and their queue). The channel keeps a copy (`channel_card`), since approvers who have
not linked cannot be named. Jira issue keys and summaries are cached per connector; whether an
approval is due comes from the `issueStatus` Herzum sends with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from connectors.base import (
    Action,
    ActionSpec,
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
from connectors.errors import AlreadyDecided, InvalidInput, NotAllowed, NotFound, TransientError, Unsupported
from connectors.herzum import HerzumSettings
from connectors.herzum.client import CredentialsRefused, HerzumClient, Scheme
from connectors.http import Sleep

log = logging.getLogger(__name__)

T = TypeVar("T")

# Jira Data Center personal access tokens are 44 base64 characters; a value shaped like one is
# tried as a Bearer token first, so a token is never sent as a Basic password that Jira would
# count as a failed login.
_TOKEN_SHAPED = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")
# Issue keys and summaries are read again after this long (seconds).
_ISSUE_TTL = 600.0

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


def _deciders(item: ApprovalItem) -> tuple[Person, ...]:
    """The linked people known to be able to decide `item` (kept across a re-read)."""
    return item.groups[0].approvers if item.groups else item.recipients


class HerzumConnector(Connector):
    type = "herzum"
    vendor_label = "Herzum Approval (Jira)"
    capabilities = Capabilities(
        approve=True,
        reject=True,
        abstain=True,
        reset=True,
        comments=True,
        link_mode="credentials",
        per_user_listing=True,
        notes=(
            "Actionable only while the issue is in the approval's source status.",
            "Every pending approval is carded in the channel; linked approvers also get it in their DM.",
        ),
    )
    credential_fields = (
        CredentialField("username", "Jira username", secret=False),
        CredentialField(
            "secret",
            "Password or personal access token",
            hint="Your Jira password, or a personal access token (Profile → Personal Access Tokens)",
        ),
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
        self.service = self._client(
            settings.username, settings.secret, "bearer" if settings.token else "basic"
        )
        self._issues: dict[str, tuple[str, str, float]] = {}  # issue id → (key, summary, read at)
        self._status_names: dict[str, str] = {}
        self._people: dict[str, tuple[Person, float]] = {}  # username → (as Jira names them, read at)
        # Which scheme a person's secret worked with (keyed by a digest, never the secret itself).
        self._schemes: dict[tuple[str, str], Scheme] = {}
        # Actions Herzum answered `issueapproval.action.disabled` for: no longer offered here.
        self.disabled: set[Action] = set()

    def _client(self, username: str, secret: str, scheme: Scheme = "basic") -> HerzumClient:
        return HerzumClient(
            self.settings.base_url,
            username,
            secret,
            scheme=scheme,
            timeout=self._timeout,
            sleep=self._sleep,
            backoff_base=self._backoff,
        )

    async def aclose(self) -> None:
        await self.service.aclose()

    # ---- reading -----------------------------------------------------------------------------------

    async def _as_person(self, username: str, secret: str, call: Callable[[HerzumClient], Awaitable[T]]) -> T:
        """Run `call` with a person's own Jira credentials, in the scheme Jira takes them.

        A password is HTTP Basic; a personal access token is `Authorization: Bearer`. One field
        takes either, so the likelier scheme goes first and the other follows only on Jira's
        own 401 (nothing was done then). The scheme that worked is remembered for the process."""
        memo = (username.lower(), hashlib.sha256(secret.encode()).hexdigest()[:16])
        first: Scheme = self._schemes.get(memo) or ("bearer" if _TOKEN_SHAPED.match(secret) else "basic")
        order: tuple[Scheme, ...] = (first, "basic" if first == "bearer" else "bearer")
        for attempt, scheme in enumerate(order):
            client = self._client(username, secret, scheme)
            try:
                result = await call(client)
            except CredentialsRefused:
                if attempt == len(order) - 1:
                    raise
                continue
            finally:
                await client.aclose()
            self._schemes[memo] = scheme
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _profile(self, user: LinkedUser) -> Person:
        """A linked person as Jira names them (display name, email), read every ten minutes.

        Jira's email wins over the one stored at linking; a failed read keeps the last answer."""
        username = user.vendor_user_id
        cached = self._people.get(username)
        if cached is not None and time.monotonic() - cached[1] < _ISSUE_TTL:
            return cached[0]
        try:
            body = await self.service.user(username) or {}
        except TransientError:
            return cached[0] if cached else Person(username, username, user.email)
        found = Person(
            username, str(body.get("displayName") or username), body.get("emailAddress") or user.email
        )
        self._people[username] = (found, time.monotonic())
        return found

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        every = {str(w["id"]): w for w in await self.service.pending()}
        deciders: dict[str, list[Person]] = {}
        for user in linked:
            try:
                theirs = await self.service.pending(user.vendor_user_id)
            except NotFound:
                # issueapproval.user.notfound: the Jira user is gone; their link will fail on use.
                log.info("%s: Jira has no user %s any more", self.name, user.vendor_user_id)
                continue
            person = await self._profile(user)
            for wire in theirs:
                key = str(wire["id"])
                every.setdefault(key, wire)  # one the service account may not see itself
                deciders.setdefault(key, []).append(person)
        # Concurrently: a first poll reads each issue once, and VendorHTTP bounds the fan-out.
        items = await asyncio.gather(
            *(
                self._item(wire, tuple(sorted(deciders.get(key, ()), key=lambda p: p.id)))
                for key, wire in every.items()
            )
        )
        return sorted(items, key=lambda i: int(i.external_id) if i.external_id.isdigit() else 0)

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        issue_id = item.ref.get("issueId", "")
        for wire in await self.service.approvals_of_issue(issue_id):
            if str(wire.get("id")) == item.external_id:
                return await self._item(wire, _deciders(item))
        raise NotFound(f"approval {item.external_id} is no longer on issue {issue_id}")

    async def check(self) -> str:
        me = await self.service.myself()
        return f"reachable as {me.get('name')}"

    async def _issue(self, issue_id: str, status: str | None) -> tuple[str, str, str]:
        """(key, summary, current status id). Herzum sends the issue's status with each approval
        (`issueStatus`), and that decides "due"; the key and summary are read again only every
        ten minutes, or whenever the status is not given."""
        cached = self._issues.get(issue_id)
        if status and cached and time.monotonic() - cached[2] < _ISSUE_TTL:
            return cached[0], cached[1], status
        body = await self.service.issue(issue_id)
        fields = body.get("fields") or {}
        key, summary = str(body.get("key") or issue_id), str(fields.get("summary") or "")
        self._issues[issue_id] = (key, summary, time.monotonic())
        return key, summary, status or str((fields.get("status") or {}).get("id") or "")

    async def _status(self, status_id: str) -> str:
        if status_id not in self._status_names:
            self._status_names[status_id] = await self.service.status_name(status_id)
        return self._status_names[status_id]

    async def _item(self, wire: dict[str, Any], recipients: tuple[Person, ...]) -> ApprovalItem:
        issue_id = str(wire.get("issueId"))
        key, summary, current = await self._issue(issue_id, str(wire.get("issueStatus") or "") or None)
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
        try:
            required = max(1, int(float(wire.get("mra") or -1)))
        except (TypeError, ValueError):
            required = 1
        group = ApproverGroup(
            # Herzum names the approval, not its approvers: the group lists the linked people
            # whose own listing holds it; others may exist (hence the channel copy).
            name=str(wire.get("approvalName") or "Approvers"),
            state=GroupState.DUE
            if due
            else (GroupState.WAITING if status is Status.PENDING else GroupState.RESOLVED),
            required=required,
            approvers=recipients,
        )
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
            groups=(group,),
            recipients=recipients,
            channel_card=True,
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
        username = actor.credentials.get("username", actor.vendor_user_id)
        try:
            wire = await self._as_person(
                username, actor.credentials.get("secret", ""), lambda c: c.act(item.external_id, body)
            )
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
        return await self._item(wire, _deciders(item))

    async def verify(self, credentials: Mapping[str, str]) -> VendorIdentity:
        """Who the username and password or token belong to; each is tried the way Jira takes it."""
        me = await self._as_person(
            credentials.get("username", ""), credentials.get("secret", ""), lambda c: c.myself()
        )
        name = str(me.get("name") or credentials.get("username", ""))
        if name.lower() != credentials.get("username", "").lower():
            raise NotAllowed("these credentials belong to another Jira user", reason="wrong_user")
        return VendorIdentity(name, str(me.get("displayName") or name), me.get("emailAddress"))
