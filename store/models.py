"""Tables. Natural keys where they exist, BIGINT surrogate ids elsewhere (PostgreSQL upserts burn
sequence values, so 32-bit ids would run out on a busy install).

Every timestamp is timezone-aware UTC: `UTCDateTime` stores UTC and hands back aware datetimes on
SQLite too, which keeps naive datetimes from leaking into comparisons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, **kw))


class ItemRow(SQLModel, table=True):
    """The latest vendor snapshot of an approval plus the bot's own state (claim, local decision)."""

    __tablename__ = "items"
    __table_args__ = (sa.UniqueConstraint("connector", "external_id", name="uq_items_connector_external"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    connector: str = Field(max_length=64, index=True)
    external_id: str = Field(max_length=255)
    status: str = Field(max_length=16, index=True)
    version: str = Field(max_length=64)
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    first_seen_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # A click in progress: who, which action, since when. Set atomically (see repo.claim_item).
    claim_by: str | None = Field(default=None, max_length=32)
    claim_action: str | None = Field(default=None, max_length=16)
    claim_at: datetime | None = _ts()
    # The rest of the click's intent, written with the claim before the vendor is called, so that
    # whoever settles an interrupted click knows whom to name and tell (bot/reconcile.py).
    claim_vendor_user: str | None = Field(default=None, max_length=255)
    claim_comment: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    claim_via: str | None = Field(default=None, max_length=64)
    claim_deadline: datetime | None = _ts()
    # The process (per-run instance id, store/heartbeats.py) working on the click: once its
    # heartbeat lapses, reconciliation need not wait for the deadline.
    claim_process: str | None = Field(default=None, max_length=200)
    # What the bot itself did last (shown on the card: "Approved by @alice", "Failed: ...").
    decided_by: str | None = Field(default=None, max_length=32)
    decided_action: str | None = Field(default=None, max_length=16)
    decided_at: datetime | None = _ts()
    decided_comment: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # Set by a sync when the item left the pending list and was re-read to its final state.
    closed_at: datetime | None = _ts()


class CardRow(SQLModel, table=True):
    """One posted copy of an item's card. `target` is "channel:C…", "user:U…" or "email:…"."""

    __tablename__ = "card_messages"
    __table_args__ = (sa.UniqueConstraint("item_id", "target", name="uq_cards_item_target"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    item_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("items.id", ondelete="CASCADE"), index=True)
    )
    target: str = Field(max_length=320)
    channel: str = Field(max_length=32)
    ts: str = Field(max_length=32)
    slack_user: str | None = Field(default=None, max_length=32)
    rendered: str | None = Field(default=None, max_length=64)
    posted_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class CardPostRow(SQLModel, table=True):
    """A card about to be posted (written before chat.postMessage): after a crash, the channel's
    history tells whether that post happened, instead of posting a second copy."""

    __tablename__ = "card_posts"
    __table_args__ = (sa.UniqueConstraint("item_id", "target", name="uq_card_posts_item_target"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    item_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False)
    )
    target: str = Field(max_length=320)
    channel: str = Field(max_length=32)
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class IdentityRow(SQLModel, table=True):
    """A Slack user linked to a connector. Credentials only ever stored Fernet-encrypted."""

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("slack_user_id", "connector", name="uq_identity_user_connector"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    slack_user_id: str = Field(max_length=32, index=True)
    connector: str = Field(max_length=64, index=True)
    vendor_user_id: str = Field(max_length=255)
    display_name: str = Field(default="", max_length=255)
    email: str | None = Field(default=None, max_length=320)
    credentials_enc: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    linked_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # Set when the vendor said the credentials no longer work; cleared by reconnecting.
    broken_at: datetime | None = _ts()


class DecisionRow(SQLModel, table=True):
    """Append-only audit of every decision attempted from Slack and what the vendor answered."""

    __tablename__ = "decisions"

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    item_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, index=True))
    connector: str = Field(max_length=64)
    external_id: str = Field(max_length=255)
    slack_user_id: str = Field(max_length=32)
    vendor_user_id: str | None = Field(default=None, max_length=255)
    action: str = Field(max_length=16)
    comment: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    outcome: str = Field(max_length=16)  # ok | refused | failed | unknown | already_decided
    vendor_answer: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # The card the click came through ("C…/ts", or the channel of a modal); None from App Home lists.
    via: str | None = Field(default=None, max_length=64)
    # Why the bot itself refused before asking the vendor (not_linked, not_permitted, …); None otherwise.
    reason: str | None = Field(default=None, max_length=64)
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class OutboxRow(SQLModel, table=True):
    """Slack work not yet done: one typed job (bot/outbox/jobs.py), `kind` naming its class and
    `payload` its fields as JSON. `key` coalesces repeats: one pending "make this card true" per copy.

    Card work stores no blocks: the deliverer renders the item as it is when it delivers, so a
    card never shows an older state than the store. Lower `priority` goes first.
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_priority_not_before", "priority", "not_before"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    key: str = Field(sa_column=sa.Column(sa.String(400), nullable=False, unique=True))
    kind: str = Field(max_length=32)
    item_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True, index=True))
    target: str | None = Field(default=None, max_length=320)
    payload: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    priority: int = Field(default=1, sa_column=sa.Column(sa.SmallInteger, nullable=False, server_default="1"))
    not_before: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # Bumped each time the same work is asked for again, so a delivery that raced with a newer
    # request does not delete it (see Store.outbox_done).
    enqueued_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ConnectorStateRow(SQLModel, table=True):
    """Health of each connector's sync, for /healthz, /approvals status and App Home."""

    __tablename__ = "connector_state"

    name: str = Field(primary_key=True, max_length=64)
    last_sync_at: datetime | None = _ts()
    last_success_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    failures: int = Field(default=0)
    pending: int = Field(default=0)


class ProcessedEventRow(SQLModel, table=True):
    """Events API ids already handled, so Slack's retries cause no second side effect."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class ReminderRow(SQLModel, table=True):
    """Reminders sent for one item to one approver. Updated with a compare-and-set on `sent`, so a
    restart or a second replica never sends the same reminder twice."""

    __tablename__ = "reminders"
    __table_args__ = (sa.UniqueConstraint("item_id", "slack_user", name="uq_reminders_item_user"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    item_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("items.id", ondelete="CASCADE"), index=True)
    )
    slack_user: str = Field(max_length=32)
    # The card this reminds of (its thread gets the reminder).
    target: str | None = Field(default=None, max_length=320)
    sent: int = Field(default=0)
    last_sent_at: datetime | None = _ts()
    escalated_at: datetime | None = _ts()
    # When to look at this reminder next (a lower bound: the pass re-checks the rules); None: never.
    next_at: datetime | None = _ts(index=True)


class UserPrefRow(SQLModel, table=True):
    """Per-person settings and what the bot learned of them (time zone from users.info)."""

    __tablename__ = "user_prefs"

    slack_user_id: str = Field(primary_key=True, max_length=32)
    digest: bool | None = Field(default=None)
    tz: str | None = Field(default=None, max_length=64)
    tz_fetched_at: datetime | None = _ts()
    last_digest_on: str | None = Field(default=None, max_length=10)  # the approver's local date, YYYY-MM-DD


class SubscriptionRow(SQLModel, table=True):
    """A channel following how a connector's flows end (/approvals subscribe NAME #channel)."""

    __tablename__ = "subscriptions"
    __table_args__ = (sa.UniqueConstraint("connector", "channel", name="uq_subscriptions_connector_channel"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    connector: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=32)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class FlowMessageRow(SQLModel, table=True):
    """The one status message per flow per subscribed channel, updated in place; decisions go in its thread."""

    __tablename__ = "flow_messages"
    __table_args__ = (sa.UniqueConstraint("item_id", "channel", name="uq_flow_messages_item_channel"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    item_id: int = Field(
        sa_column=sa.Column(BigId, sa.ForeignKey("items.id", ondelete="CASCADE"), index=True)
    )
    channel: str = Field(max_length=32)
    ts: str = Field(max_length=32)
    rendered: str | None = Field(default=None, max_length=64)
    # The newest decision (DecisionRow.id) already replied in the thread.
    last_decision_id: int | None = Field(default=None, sa_column=sa.Column(BigId, nullable=True))
    posted_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
