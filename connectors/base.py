"""The vendor-neutral domain every connector speaks, and the one interface they all implement.

Why frozen dataclasses: an `ApprovalItem` is a snapshot of what the vendor said at one moment. The
sync diffs snapshots, the store keeps the latest as JSON, and Block Kit is rendered from it; none of
those may mutate it. `to_json`/`from_json` round-trip through pydantic's TypeAdapter so the store
can keep the item whole and the card can be rebuilt from it after a restart.

What a connector promises (checked by tests/contract for every vendor):
- `fetch_pending` lists what waits now, with the service credentials (or per linked user where
  the vendor only lists per user). It never acts.
- `refresh` re-reads one item: the truth after a timeout, and the final state of an item that
  left the pending list. Raises `NotFound` when the vendor no longer knows it.
- `act` decides as the `Actor` (the person who clicked) and never with service credentials. It
  is called at most once per click: the bot never retries it blindly.
- `verify` tells who a set of credentials belongs to, before they are stored.
- Only actions listed in `ApprovalItem.actions` are offered; the card shows nothing a vendor
  cannot really do.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import TypeAdapter

from connectors.errors import Unsupported
from connectors.status import Status as Status  # re-exported: the domain's names live here


class Action(StrEnum):
    """What a person can ask the bot to do to an item (the vendor decides which apply)."""

    APPROVE = "approve"
    REJECT = "reject"
    ABSTAIN = "abstain"
    RESET = "reset"
    REASSIGN = "reassign"
    COMMENT = "comment"
    CANCEL = "cancel"
    REQUEST = "request"


class GroupState(StrEnum):
    """An approver group's turn: waiting (not yet), due (their turn now), resolved (done)."""

    WAITING = "waiting"
    DUE = "due"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone at the vendor. `id` is the vendor's own id (username, user id, account id)."""

    id: str
    name: str = ""
    email: str | None = None
    # Further addresses the vendor knows (Greenhouse's secondary emails): each is tried in Slack.
    emails: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.email or self.id

    @property
    def all_emails(self) -> tuple[str, ...]:
        """Every address to look up, lowercase, the primary first, each once."""
        seen: list[str] = []
        for address in (self.email, *self.emails):
            key = (address or "").strip().lower()
            if key and key not in seen:
                seen.append(key)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class ApproverGroup:
    name: str
    state: GroupState = GroupState.DUE
    required: int = 1
    approvers: tuple[Person, ...] = ()
    approved_by: tuple[Person, ...] = ()
    rejected_by: tuple[Person, ...] = ()


@dataclass(frozen=True, slots=True)
class Field:
    """A label/value pair shown on the card (pipeline, environment, version...)."""

    label: str
    value: str


InputKind = Literal["text", "multiline", "select", "password", "slack_user", "checkbox"]


@dataclass(frozen=True, slots=True)
class InputDef:
    """One thing the person must (or may) give with an action, rendered as a modal field.

    `password` inputs are used once for the call they came with and are never stored or logged.
    `slack_user` renders a user picker; the bot hands the connector the picked person's
    vendor identity in `inputs[name]` (resolved by email), never a Slack id.
    """

    name: str
    label: str
    kind: InputKind = "text"
    default: str | None = None
    allowed: tuple[str, ...] = ()
    required: bool = False
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action the item allows right now, and what the person must give with it.

    `comment`: "none" (no modal), "optional" (modal with an optional comment), "required".
    A spec with inputs or a comment opens a modal before any vendor call (Slack's trigger_id
    lives 3 s); `confirm` adds Slack's confirm dialog to the button.
    """

    action: Action
    label: str | None = None
    comment: Literal["none", "optional", "required"] = "none"
    inputs: tuple[InputDef, ...] = ()
    confirm: str | None = None

    @property
    def needs_modal(self) -> bool:
        return self.comment != "none" or bool(self.inputs)


@dataclass(frozen=True, slots=True)
class Activity:
    """One decision in the vendor's history of the item (who, what, when, why)."""

    person: Person
    action: Action
    at: datetime | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalItem:
    connector: str
    external_id: str
    kind: str
    title: str
    status: Status = Status.PENDING
    summary: str = ""
    url: str | None = None
    requester: Person | None = None
    created_at: datetime | None = None
    deadline: datetime | None = None
    groups: tuple[ApproverGroup, ...] = ()
    fields: tuple[Field, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    activities: tuple[Activity, ...] = ()
    # Shown prominently, e.g. "Decided in Jira (OPS-12)", "Approving also rejects older runs".
    notices: tuple[str, ...] = ()
    # Set when final: who decided, when, with what note (where the vendor tells).
    decided_by: Person | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    # Vendor persons whose DM should carry a card (whose turn it is). Empty: the connector's channel.
    recipients: tuple[Person, ...] = ()
    # Also post to the connector's channel (e.g. a group step with no person to DM). Items with no
    # recipients always go to the channel.
    channel_card: bool = False
    # Since when the item has waited on its current recipients (reminders count from here);
    # None: since the bot first saw it.
    due_since: datetime | None = None
    # When the vendor itself last reminded the approvers (Greenhouse's reminder_sent_at).
    vendor_reminded_at: datetime | None = None
    # Free-form vendor data a connector needs again to act (e.g. an execution id); never secrets.
    ref: Mapping[str, str] = field(default_factory=dict)

    def action(self, action: Action) -> ActionSpec | None:
        for spec in self.actions:
            if spec.action is action:
                return spec
        return None

    def with_status(self, status: Status, **changes: Any) -> ApprovalItem:
        actions = () if status.final else self.actions
        return replace(self, status=status, actions=actions, **changes)

    @property
    def key(self) -> tuple[str, str]:
        return (self.connector, self.external_id)

    def to_json(self) -> str:
        return _ITEM.dump_json(self).decode()

    @staticmethod
    def from_json(data: str | bytes) -> ApprovalItem:
        return _ITEM.validate_json(data)

    def fingerprint(self) -> str:
        """A stable digest of everything a card shows: equal fingerprints need no Slack call."""
        # The same canonical text as json.dumps(json.loads(to_json()), sort_keys=True), without the
        # round trip through text: stored versions stay comparable.
        canonical = json.dumps(_ITEM.dump_python(self, mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


_ITEM: TypeAdapter[ApprovalItem] = TypeAdapter(ApprovalItem)


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One input of the linking modal. `secret` fields are stored encrypted and never shown again."""

    key: str
    label: str
    secret: bool = True
    hint: str | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class VendorIdentity:
    """Who a set of credentials (or an email) is at the vendor."""

    user_id: str
    display_name: str = ""
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """The person who clicked, as the vendor will see them. Never built from service credentials."""

    slack_user_id: str
    vendor_user_id: str
    display_name: str = ""
    email: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    # One of the bot's [slack] admins: a vendor-side guard the bot applies itself (Connector.permits)
    # lets them through, since the config names them as allowed.
    admin: bool = False


@dataclass(frozen=True, slots=True)
class LinkedUser:
    """A Slack user linked to this connector, handed to `fetch_pending` for per-user listings."""

    slack_user_id: str
    vendor_user_id: str
    email: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the vendor's API can do at all (per item, `ApprovalItem.actions` says what applies now)."""

    approve: bool = False
    reject: bool = False
    abstain: bool = False
    reset: bool = False
    reassign: bool = False
    request: bool = False
    cancel: bool = False
    comments: bool = False
    approver_inputs: bool = False
    # "credentials": the user links their own secret; "email": mapped by Slack email, no secret.
    link_mode: Literal["credentials", "email"] = "credentials"
    per_user_listing: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Requestable:
    """Something a person may start from Slack (an approval path on an issue, a flow not yet
    requested). `inputs` are asked in a modal before `Connector.request` is called."""

    id: str
    title: str
    inputs: tuple[InputDef, ...] = ()
    description: str = ""


class Connector(ABC):
    """One configured vendor instance. Subclasses live in connectors/<vendor>/connector.py."""

    type: ClassVar[str]
    vendor_label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    # Seconds one vendor request may take (the clients' httpx timeout, connectors/http.py): a
    # click's overall deadline is derived from it (bot/reconcile.click_deadline).
    request_timeout: float = 15.0

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        """Everything pending now. Raises a ConnectorError when the vendor cannot be read."""

    @abstractmethod
    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        """The item as the vendor has it now (any status). Raises NotFound when gone."""

    @abstractmethod
    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        """Perform `action` as `actor`; return the item as the vendor answered. Called once per click."""

    def permits(self, item: ApprovalItem, action: Action, actor: Actor) -> str | None:
        """None when actor may take action on item as far as the bot must check (the vendor checks
        the rest); otherwise a short phrase naming who may, e.g. "the path's requester or one of its
        approvers".

        Why the bot checks at all: some vendors trust the bot's key or an On-Behalf-Of header, so
        whoever clicks would be believed. Connectors whose vendor checks the person say None."""
        return None

    async def verify(self, credentials: Mapping[str, str]) -> VendorIdentity:
        """Who these credentials belong to. Raises AuthExpired when they do not work."""
        raise Unsupported(f"{self.vendor_label} links people by email, not by credentials")

    async def identify(self, email: str) -> VendorIdentity | None:
        """The vendor user with this email (for link_mode "email"); None when there is none."""
        return None

    async def requestable(self, actor: Actor, target: str | None = None) -> list[Requestable]:
        """What `actor` may start now (for `target`, e.g. a Jira issue key). Vendors with
        `capabilities.request` override this."""
        return []

    async def request(
        self, actor: Actor, requestable_id: str, inputs: Mapping[str, str] | None = None
    ) -> ApprovalItem | None:
        """Start the approval `requestable_id` as `actor`; the new item when the vendor returns one."""
        raise Unsupported(f"{self.vendor_label} cannot start approvals from Slack")

    async def check(self) -> str:
        """Reach the vendor with the service credentials; return a one-line description of what answered."""
        items = await self.fetch_pending(())
        return f"reachable, {len(items)} pending"

    async def aclose(self) -> None:
        """Release HTTP clients."""
        return None
