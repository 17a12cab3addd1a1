"""The outbox table: Slack work queued in the transaction that caused it, taken by priority.

Why a table: a restart loses nothing, and `key` coalesces repeats (ten changes of one card while it
waits are one update). The store knows jobs only as `Entry` rows; their meaning is bot/outbox/jobs.py.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import CardPostRow, CardRow, ItemRow, OutboxRow, ReminderRow

# The transaction handle callers pass around: they hold it, only store/ uses it.
Session = AsyncSession


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Entry:
    """One outbox row to write. `payload` is the job's fields as JSON text."""

    key: str
    kind: str
    priority: int
    payload: str
    item_id: int | None = None
    target: str | None = None
    delay: timedelta = timedelta(0)


def dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def insert(session: AsyncSession, table: Any) -> Any:
    return pg_insert(table) if dialect(session) == "postgresql" else sqlite_insert(table)


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """Built once: the upsert's `excluded` is a new alias of the whole table each time it is built,
    a web of reference cycles that only a garbage collection frees (pauses under a burst of clicks).

    A repeat keeps the waiting row's due time (repeats coalesce instead of postponing it) and the
    more urgent of the two priorities (a click on a card whose update already waits moves it up)."""
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    stmt = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    more_urgent = sa.case(
        (stmt.excluded.priority < table.c.priority, stmt.excluded.priority), else_=table.c.priority
    )
    return stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "enqueued_at": stmt.excluded.enqueued_at,
            "priority": more_urgent,
            "payload": stmt.excluded.payload,
        },
    )


async def enqueue(session: AsyncSession, *, entries: Sequence[Entry], now: datetime) -> None:
    """Queue work inside the caller's transaction (one row per key: a statement may not touch a row twice)."""
    if not entries:
        return
    stmt = _enqueue_statement(dialect(session))
    rows = [
        {
            "key": e.key,
            "kind": e.kind,
            "priority": e.priority,
            "item_id": e.item_id,
            "target": e.target,
            "payload": e.payload,
            "not_before": now + e.delay,
            "attempts": 0,
            "enqueued_at": now,
            "last_error": None,
        }
        for e in {e.key: e for e in sorted(entries, key=lambda e: -e.priority)}.values()
    ]
    # Rows per executemany: a reminder pass's whole read (store/reminders.due) in one statement.
    for start in range(0, len(rows), 1000):
        await session.exec(stmt, params=rows[start : start + 1000])


async def enqueue_now(db: Database, *, entries: Sequence[Entry]) -> None:
    async with db.transaction() as s:
        await enqueue(s, entries=entries, now=now_utc())


def lane_of(target: str | None, kind: str) -> str:
    """A row's delivery lane: its channel (a card's "channel:C…" target and a notice's "C…" are one
    lane), person or address; the kind when it has no target. Jobs of one lane go in order."""
    return (target or kind).removeprefix("channel:")


# `lane_of` in SQL, so a delivery pass can ask for the lanes it is not already delivering.
_LANE = sa.case(
    (col(OutboxRow.target).like("channel:%"), sa.func.substr(col(OutboxRow.target), 9)),
    else_=sa.func.coalesce(col(OutboxRow.target), col(OutboxRow.kind)),
)


async def due(
    db: Database,
    *,
    limit: int = 100,
    now: datetime | None = None,
    skip_lanes: Collection[str] = (),
    max_priority: int | None = None,
    lane: str | None = None,
) -> list[OutboxRow]:
    """What is due, most urgent first (then in the order it was asked for); none of `skip_lanes`
    (lanes under way), none less urgent than `max_priority`; only `lane`'s when given."""
    query = select(OutboxRow).where(col(OutboxRow.not_before) <= (now or now_utc()))
    if lane is not None:
        query = query.where(_LANE.in_([lane]))
    if skip_lanes:
        query = query.where(_LANE.not_in(list(skip_lanes)))
    if max_priority is not None:
        query = query.where(col(OutboxRow.priority) <= max_priority)
    async with db.session() as s:
        rows = await s.exec(query.order_by(col(OutboxRow.priority), col(OutboxRow.id)).limit(limit))
        return list(rows.all())


async def size(db: Database) -> int:
    async with db.session() as s:
        return int((await s.exec(select(sa.func.count()).select_from(OutboxRow))).one())


async def retry(db: Database, *, row: OutboxRow, error: str, delay: timedelta) -> None:
    async with db.transaction() as s:
        await s.exec(
            sa.update(OutboxRow)
            .where(col(OutboxRow.id) == row.id)
            .values(attempts=row.attempts + 1, last_error=error[:500], not_before=now_utc() + delay)
        )


async def settle(
    db: Database,
    *,
    done: Sequence[OutboxRow],
    posted: Sequence[Mapping[str, Any]] = (),
    rendered: Sequence[tuple[int, str]] = (),
) -> None:
    """What a delivery pass did, in one transaction: cards posted (recorded with the outbox rows
    that asked for them, so a crash can't leave one without the other) with their first reminder,
    cards updated, work done.

    Each posted card is a mapping of the CardRow columns plus `remind_at` (its first reminder, or
    None), `redraw` (the Entry that redraws it) and `seen_updated_at`/`seen_claim_by` (the item as
    drawn). An outbox row re-enqueued meanwhile (newer enqueued_at) stays: it still has work to do.
    """
    async with db.transaction() as s:
        if posted:
            table = CardRow.__table__  # type: ignore[attr-defined]
            stmt = insert(s, table).on_conflict_do_nothing(index_elements=["item_id", "target"])
            columns = ("item_id", "target", "channel", "ts", "slack_user", "rendered")
            await s.exec(
                stmt, params=[{**{k: p[k] for k in columns}, "posted_at": now_utc()} for p in posted]
            )
            reminders = [
                {
                    "item_id": p["item_id"],
                    "slack_user": str(p["slack_user"] or p["target"])[:32],
                    "target": p["target"],
                    "sent": 0,
                    "next_at": p["remind_at"],
                }
                for p in posted
                if p.get("remind_at") is not None
            ]
            if reminders:
                table = ReminderRow.__table__  # type: ignore[attr-defined]
                stmt = insert(s, table).on_conflict_do_nothing(index_elements=["item_id", "slack_user"])
                await s.exec(stmt, params=reminders)
            # Their intents to post served their purpose: gone with the record, in the same
            # transaction (a later sync then has none to clean up).
            posts = CardPostRow.__table__  # type: ignore[attr-defined]
            await s.exec(
                sa.delete(posts).where(
                    posts.c.item_id == sa.bindparam("post_item"),
                    posts.c.target == sa.bindparam("post_target"),
                ),
                params=[{"post_item": p["item_id"], "post_target": p["target"]} for p in posted],
            )
            await _redraw_if_moved(s, posted)
        if rendered:
            table = CardRow.__table__  # type: ignore[attr-defined]
            stmt = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("card_id"))
                .values(rendered=sa.bindparam("digest"))
            )
            await s.exec(stmt, params=[{"card_id": i, "digest": r} for i, r in rendered])
        if done:
            table = OutboxRow.__table__  # type: ignore[attr-defined]
            stmt = sa.delete(table).where(
                table.c.id == sa.bindparam("row_id"), table.c.enqueued_at == sa.bindparam("at")
            )
            await s.exec(stmt, params=[{"row_id": r.id, "at": r.enqueued_at} for r in done])


async def _redraw_if_moved(session: AsyncSession, posted: Sequence[Mapping[str, Any]]) -> None:
    """A card posted but not yet recorded is invisible to a click that came meanwhile (its redraw
    finds no card to update). When the item has moved since the card was drawn, it is drawn again."""
    ids = list({int(p["item_id"]) for p in posted})
    now_state: dict[int, tuple[Any, Any]] = {}
    for start in range(0, len(ids), 500):
        rows = await session.exec(
            select(ItemRow.id, ItemRow.updated_at, ItemRow.claim_by).where(
                col(ItemRow.id).in_(ids[start : start + 500])
            )
        )
        now_state.update({int(i or 0): (u, c) for i, u, c in rows.all()})
    moved = [
        p["redraw"]
        for p in posted
        if p.get("redraw") is not None
        and now_state.get(int(p["item_id"]), (p["seen_updated_at"], p["seen_claim_by"]))
        != (p["seen_updated_at"], p["seen_claim_by"])
    ]
    await enqueue(session, entries=moved, now=now_utc())
