"""Reminders per card, each with the instant it is next due, and people's reminder preferences.

Why `next_at` in the table (indexed): the schedule wakes at the earliest one and a pass reads only
the due rows in one query, so its cost follows the reminders due, not the items pending. `sent`
and `escalated_at` are advanced with a compare-and-set in the transaction that queues the Slack
job: a restart or a second replica never sends the same reminder twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from connectors.base import ApprovalItem, Status
from store.db import Database
from store.models import CardRow, IdentityRow, ItemRow, ReminderRow, UserPrefRow
from store.outbox import Entry, enqueue, now_utc


@dataclass(frozen=True)
class DueReminder:
    """A reminder due now, with what deciding about it needs (read in the pass's one query)."""

    id: int
    item_id: int
    sent: int
    last_sent_at: datetime | None
    escalated_at: datetime | None
    item: ApprovalItem
    first_seen_at: datetime
    target: str
    channel: str
    ts: str
    slack_user: str | None  # the person whose DM copy this is (None: a channel card)
    vendor_user_id: str | None  # their linked identity on the item's connector, if any
    tz: str | None
    tz_fetched_at: datetime | None


def _pending() -> sa.ColumnElement[bool]:
    """The reminder's item is pending and nobody is acting on it.

    A correlated EXISTS on the item's primary key rather than a filter on the joined items: with
    the filter, SQLite's planner drives the query from the items' status index (every pending item,
    100,000 in the reminders benchmark) instead of from the reminders' next_at index (the due ones):
    0.27 s against 0.02 s for a pass, 0.18 s against 0.2 ms for `earliest`."""
    item = aliased(ItemRow)
    return sa.exists().where(
        col(item.id) == col(ReminderRow.item_id),
        col(item.status) == Status.PENDING.value,
        col(item.claim_by).is_(None),
    )


async def due(db: Database, *, now: datetime, limit: int = 1000) -> list[DueReminder]:
    stmt = (
        sa.select(
            # Columns, not the ORM entity: a pass reads up to `limit` rows, and loading each as an
            # object was a fifth of the pass's CPU (the reminders benchmark).
            col(ReminderRow.id),
            col(ReminderRow.item_id),
            col(ReminderRow.sent),
            col(ReminderRow.last_sent_at),
            col(ReminderRow.escalated_at),
            col(ReminderRow.target),
            col(ItemRow.data),
            col(ItemRow.first_seen_at),
            col(CardRow.channel),
            col(CardRow.ts),
            col(CardRow.slack_user),
            col(IdentityRow.vendor_user_id),
            col(UserPrefRow.tz),
            col(UserPrefRow.tz_fetched_at),
        )
        .join(ItemRow, col(ItemRow.id) == col(ReminderRow.item_id))
        .join(
            CardRow,
            sa.and_(
                col(CardRow.item_id) == col(ReminderRow.item_id),
                col(CardRow.target) == col(ReminderRow.target),
            ),
        )
        .outerjoin(
            IdentityRow,
            sa.and_(
                col(IdentityRow.slack_user_id) == col(CardRow.slack_user),
                col(IdentityRow.connector) == col(ItemRow.connector),
            ),
        )
        .outerjoin(UserPrefRow, col(UserPrefRow.slack_user_id) == col(CardRow.slack_user))
        .where(col(ReminderRow.next_at) <= now, _pending())
        .order_by(col(ReminderRow.next_at))
        .limit(limit)
    )
    async with db.session() as s:
        rows = (await s.exec(stmt)).all()  # type: ignore[call-overload]  # sqlmodel types at most 4 columns
    return [
        DueReminder(
            id=int(rid),
            item_id=item_id,
            sent=sent,
            last_sent_at=last_sent_at,
            escalated_at=escalated_at,
            item=ApprovalItem.from_json(data),
            first_seen_at=first_seen,
            target=str(target),
            channel=channel,
            ts=ts,
            slack_user=slack_user,
            vendor_user_id=vendor_user_id,
            tz=tz,
            tz_fetched_at=tz_at,
        )
        for (
            rid,
            item_id,
            sent,
            last_sent_at,
            escalated_at,
            target,
            data,
            first_seen,
            channel,
            ts,
            slack_user,
            vendor_user_id,
            tz,
            tz_at,
        ) in rows
    ]


async def earliest(db: Database) -> datetime | None:
    """When the next reminder of a pending, unclaimed item is due (None: none is). Walks the
    next_at index from the front; `forget_closed` keeps rows of ended items from piling up there."""
    stmt = (
        select(ReminderRow.next_at)
        .where(col(ReminderRow.next_at).is_not(None), _pending())
        .order_by(col(ReminderRow.next_at))
        .limit(1)
    )
    async with db.session() as s:
        return (await s.exec(stmt)).first()


async def forget_closed(db: Database, *, now: datetime) -> None:
    """Due reminders of items no longer pending will never be sent: they stop being due.
    (From the next_at index, each due row's item looked up by key: no scan of the items.)"""
    item = aliased(ItemRow)
    closed = sa.exists().where(
        col(item.id) == col(ReminderRow.item_id), col(item.status) != Status.PENDING.value
    )
    async with db.transaction() as s:
        await s.exec(
            sa.update(ReminderRow).where(col(ReminderRow.next_at) <= now, closed).values(next_at=None)
        )


@dataclass(frozen=True)
class Sent:
    """A reminder the pass sends: counted `sent + 1` unless another pass already did."""

    reminder_id: int
    sent: int  # the count the pass read (compare-and-set)
    next_at: datetime | None
    entries: Sequence[Entry]


@dataclass(frozen=True)
class Escalated:
    """A reminder whose escalation the pass sends, unless another pass already did."""

    reminder_id: int
    entries: Sequence[Entry]


async def record_pass(
    db: Database,
    *,
    now: datetime,
    sent: Sequence[Sent] = (),
    escalated: Sequence[Escalated] = (),
    moved: Sequence[tuple[int, datetime | None]] = (),
) -> int:
    """What one pass decided, in one transaction and a few statements: reminders counted as sent
    and escalations marked (each a compare-and-set, so a restart or a second replica never sends
    one twice), the jobs of those this pass won queued, the others moved to their next instant
    (None: never again). Returns how many reminders and escalations were queued.

    Why batched: a transaction per reminder cost about 6 ms of CPU each on SQLite (the reminders
    benchmark: 6.4 s for 1,000 due at 100,000 pending, against a floor of 0.2 s)."""
    table = ReminderRow.__table__  # type: ignore[attr-defined]
    won: set[int] = set()
    queued = 0
    async with db.transaction() as s:
        groups: dict[tuple[int, datetime | None], list[int]] = {}
        for x in sent:
            groups.setdefault((x.sent, x.next_at), []).append(x.reminder_id)
        for (count, next_at), ids in groups.items():
            for start in range(0, len(ids), 500):
                result = await s.exec(
                    sa.update(table)
                    .where(table.c.id.in_(ids[start : start + 500]), table.c.sent == count)
                    .values(sent=count + 1, last_sent_at=now, next_at=next_at)
                    .returning(table.c.id)
                )
                won.update(int(i) for i in result.scalars())
        escalating = [x.reminder_id for x in escalated]
        for start in range(0, len(escalating), 500):
            result = await s.exec(
                sa.update(table)
                .where(table.c.id.in_(escalating[start : start + 500]), table.c.escalated_at.is_(None))
                .values(escalated_at=now, next_at=None)
                .returning(table.c.id)
            )
            won.update(int(i) for i in result.scalars())
        entries: list[Entry] = []
        decided: list[Sent | Escalated] = [*sent, *escalated]
        for one in decided:
            if one.reminder_id in won and one.entries:
                entries.extend(one.entries)
                queued += 1
        await enqueue(s, entries=entries, now=now_utc())  # due now, whatever instant the pass reasoned about
        if moved:
            stmt = (
                sa.update(table).where(table.c.id == sa.bindparam("rid")).values(next_at=sa.bindparam("at"))
            )
            await s.exec(stmt, params=[{"rid": i, "at": at} for i, at in moved])
    return queued


# ---- preferences -----------------------------------------------------------------------------------


async def pref(db: Database, *, slack_user: str) -> UserPrefRow | None:
    async with db.session() as s:
        return await s.get(UserPrefRow, slack_user)


async def prefs(db: Database) -> dict[str, UserPrefRow]:
    async with db.session() as s:
        return {p.slack_user_id: p for p in (await s.exec(select(UserPrefRow))).all()}


async def save_tz(db: Database, *, slack_user: str, tz: str, now: datetime) -> None:
    async with db.transaction() as s:
        row = await s.get(UserPrefRow, slack_user)
        if row is None:
            s.add(UserPrefRow(slack_user_id=slack_user, tz=tz, tz_fetched_at=now))
        else:
            row.tz, row.tz_fetched_at = tz, now


async def set_digest(db: Database, *, slack_user: str, enabled: bool) -> None:
    async with db.transaction() as s:
        row = await s.get(UserPrefRow, slack_user)
        if row is None:
            s.add(UserPrefRow(slack_user_id=slack_user, digest=enabled))
        else:
            row.digest = enabled


async def claim_digest_day(
    db: Database, *, slack_user: str, day: str, entries: Sequence[Entry], now: datetime
) -> bool:
    """Record today's digest as sent and queue it, unless it already was (another pass, a replica)."""
    async with db.transaction() as s:
        result = await s.exec(
            sa.update(UserPrefRow)
            .where(
                col(UserPrefRow.slack_user_id) == slack_user,
                sa.or_(col(UserPrefRow.last_digest_on).is_(None), col(UserPrefRow.last_digest_on) != day),
            )
            .values(last_digest_on=day)
        )
        if not result.rowcount:
            return False
        await enqueue(s, entries=entries, now=now_utc())  # due now, whatever instant the pass reasoned about
        return True
