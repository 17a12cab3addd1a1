"""Items: the latest vendor snapshot of each approval plus the bot's own state (a click's claim,
the local decision). Keyword-only functions over the database; a few take the caller's
transaction (`session`) so a sync or a click writes everything it causes at once."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ApprovalItem, Status
from store import heartbeats, outbox
from store.db import Database
from store.models import DecisionRow, ItemRow
from store.outbox import Entry, now_utc
from store.sliced import decode_sliced


@dataclass(frozen=True)
class StoredItem:
    """An item row decoded: the vendor snapshot plus the bot's own state."""

    row: ItemRow
    item: ApprovalItem

    @property
    def id(self) -> int:
        assert self.row.id is not None
        return self.row.id


def decode(row: ItemRow) -> StoredItem:
    return StoredItem(row=row, item=ApprovalItem.from_json(row.data))


async def item(db: Database, *, connector: str, external_id: str) -> StoredItem | None:
    async with db.session() as s:
        row = (
            await s.exec(
                select(ItemRow).where(ItemRow.connector == connector, ItemRow.external_id == external_id)
            )
        ).first()
        return decode(row) if row else None


async def item_by_id(db: Database, *, item_id: int) -> StoredItem | None:
    async with db.session() as s:
        row = await s.get(ItemRow, item_id)
        return decode(row) if row else None


async def item_rows(session: AsyncSession, *, item_ids: Sequence[int]) -> list[ItemRow]:
    """Rows by id inside the caller's transaction (chunked: databases cap bound parameters)."""
    rows: list[ItemRow] = []
    ids = list(dict.fromkeys(item_ids))
    for start in range(0, len(ids), 500):
        found = await session.exec(select(ItemRow).where(col(ItemRow.id).in_(ids[start : start + 500])))
        rows.extend(found.all())
    return rows


async def versions(db: Database, *, connector: str) -> dict[str, tuple[str, str, int]]:
    """external id → (version, status, row id) of every open item of a connector (for the diff)."""
    stmt = select(ItemRow.external_id, ItemRow.version, ItemRow.status, ItemRow.id).where(
        ItemRow.connector == connector, col(ItemRow.closed_at).is_(None)
    )
    found: dict[str, tuple[str, str, int]] = {}
    async with db.session() as s:
        # Streamed in partitions: at 100k items a fully buffered result is a second copy.
        result = await s.stream(stmt)
        async for partition in result.partitions(2000):
            found.update(
                (ext, (ver, sys.intern(status), int(rid or 0))) for ext, ver, status, rid in partition
            )
    return found


async def pending_items(db: Database, *, connectors: Iterable[str] | None = None) -> list[StoredItem]:
    async with db.session() as s:
        stmt = select(ItemRow).where(ItemRow.status == Status.PENDING.value)
        if connectors is not None:
            stmt = stmt.where(col(ItemRow.connector).in_(list(connectors)))
        rows = (await s.exec(stmt.order_by(col(ItemRow.first_seen_at)))).all()
    return await decode_sliced(rows, decode)


async def stale_claims(db: Database, *, older_than: timedelta) -> list[StoredItem]:
    cutoff = now_utc() - older_than
    async with db.session() as s:
        rows = (
            await s.exec(
                select(ItemRow).where(col(ItemRow.claim_by).is_not(None), col(ItemRow.claim_at) < cutoff)
            )
        ).all()
        return [decode(r) for r in rows]


async def save_item(
    session: AsyncSession,
    *,
    item: ApprovalItem,
    now: datetime,
    existing_id: int | None = None,
    closed: bool = False,
    if_older_than: datetime | None = None,
) -> int | None:
    """Insert or update the snapshot (inside the caller's transaction); returns the row id.

    `if_older_than`: a sync passes the time its fetch started, so a snapshot fetched before a
    click finished (or during one) never overwrites what the click learned. Returns None when
    the write was skipped for that reason.
    """
    values: dict[str, Any] = {
        "status": item.status.value,
        "version": item.fingerprint(),
        "data": item.to_json(),
        "updated_at": now,
        "closed_at": now if closed else None,
    }
    table = ItemRow.__table__  # type: ignore[attr-defined]
    guard = None
    if if_older_than is not None:
        guard = sa.and_(table.c.updated_at < if_older_than, table.c.claim_by.is_(None))
    if existing_id is not None:
        stmt = sa.update(table).where(table.c.id == existing_id).values(**values)
        if guard is not None:
            stmt = stmt.where(guard)
        result = await session.exec(stmt)
        return existing_id if result.rowcount else None
    insert_values = {
        "connector": item.connector,
        "external_id": item.external_id,
        "first_seen_at": now,
        **values,
    }
    stmt = outbox.insert(session, table).values(**insert_values)
    stmt = stmt.on_conflict_do_update(index_elements=["connector", "external_id"], set_=values, where=guard)
    result = await session.exec(stmt)
    if not result.rowcount:
        return None
    row_id = (
        await session.exec(
            select(ItemRow.id).where(
                ItemRow.connector == item.connector, ItemRow.external_id == item.external_id
            )
        )
    ).one()
    assert row_id is not None
    return int(row_id)


async def insert_items(
    session: AsyncSession, *, items: Sequence[ApprovalItem], now: datetime
) -> dict[tuple[str, str], int]:
    """Store new items in a few multi-row statements; (connector, external id) → row id.

    An item some other writer stored meanwhile is left out (not overwritten): the next cycle
    sees it as known and compares versions as usual.
    """
    table = ItemRow.__table__  # type: ignore[attr-defined]
    ids: dict[tuple[str, str], int] = {}
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        stmt = (
            outbox.insert(session, table)
            .on_conflict_do_nothing(index_elements=["connector", "external_id"])
            .returning(table.c.id, table.c.connector, table.c.external_id)
        )
        rows = [
            {
                "connector": i.connector,
                "external_id": i.external_id,
                "status": i.status.value,
                "version": i.fingerprint(),
                "data": i.to_json(),
                "first_seen_at": now,
                "updated_at": now,
                "closed_at": now if i.status.final else None,
            }
            for i in chunk
        ]
        result = await session.exec(stmt, params=rows)
        ids.update({(c, e): int(i) for i, c, e in result.all()})
    return ids


@dataclass(frozen=True)
class Intent:
    """What a click means to do, recorded with its claim before the vendor is called: who (in Slack
    and at the vendor), which action, with which comment, from which card, and until when the
    clicking process itself settles it (after that, reconciliation does)."""

    slack_user: str
    action: str
    vendor_user: str | None = None
    comment: str | None = None
    via: str | None = None
    deadline: timedelta = timedelta(seconds=60)
    # The clicking process's instance id, given only while it knows its heartbeat is live.
    process: str | None = None


async def claim(
    db: Database,
    *,
    item_id: int,
    slack_user: str,
    action: str,
    entries: Sequence[Entry] = (),
    intent: Intent | None = None,
    audit: Sequence[DecisionRow] = (),
) -> datetime | None:
    """pending → acting, atomically: only one click wins, on any replica. `entries` (the
    "Working…" redraw of every copy) and `audit` (the attempt) are written in the same
    transaction, only by the winner. Returns the claim's time (its identity for `finish_claim`),
    None when another click holds it or the item is no longer pending."""
    now = now_utc()
    intent = intent or Intent(slack_user=slack_user, action=action)
    async with db.transaction() as s:
        result = await s.exec(
            sa.update(ItemRow)
            .where(
                col(ItemRow.id) == item_id,
                col(ItemRow.claim_by).is_(None),
                col(ItemRow.status) == Status.PENDING.value,
            )
            .values(
                claim_by=slack_user,
                claim_action=action,
                claim_at=now,
                claim_vendor_user=intent.vendor_user,
                claim_comment=intent.comment,
                claim_via=intent.via,
                claim_deadline=now + intent.deadline,
                claim_process=intent.process,
                last_error=None,
            )
        )
        if not result.rowcount:
            return None
        s.add_all(audit)
        await outbox.enqueue(s, entries=entries, now=now)
        return now


async def overdue_claims(db: Database, *, now: datetime | None = None) -> list[StoredItem]:
    """Claims nobody is working on any more: past their deadline (the clicking process left the
    outcome to be checked, or died), or whose process's heartbeat has lapsed (it died or froze:
    no need to wait for the deadline)."""
    now = now or now_utc()
    async with db.session() as s:
        rows = (
            await s.exec(
                select(ItemRow).where(
                    col(ItemRow.claim_by).is_not(None),
                    sa.or_(
                        heartbeats.gone(col(ItemRow.claim_process), db.dialect),
                        col(ItemRow.claim_deadline) < now,
                        # Claims taken before deadlines were recorded: the old five minutes.
                        sa.and_(
                            col(ItemRow.claim_deadline).is_(None),
                            col(ItemRow.claim_at) < now - timedelta(minutes=5),
                        ),
                    ),
                )
            )
        ).all()
        return [decode(r) for r in rows]


async def finish_claim(
    db: Database,
    *,
    item_id: int,
    item: ApprovalItem | None = None,
    decided_by: str | None = None,
    action: str | None = None,
    comment: str | None = None,
    error: str | None = None,
    audit: Sequence[DecisionRow] = (),
    entries: Sequence[Entry] = (),
    claimed_at: datetime | None = None,
) -> bool:
    """Release the claim; record the vendor's new snapshot and the local decision or failure,
    the audit of the attempt and the Slack work it causes (`entries`), in one transaction.

    `claimed_at`: only that claim is finished (the click's own process and reconciliation may
    both try; the second finds it gone and writes nothing). Returns whether it finished it."""
    now = now_utc()
    async with db.transaction() as s:
        values: dict[str, Any] = {
            "claim_by": None,
            "claim_action": None,
            "claim_at": None,
            "claim_vendor_user": None,
            "claim_comment": None,
            "claim_via": None,
            "claim_deadline": None,
            "claim_process": None,
            "last_error": error,
        }
        if decided_by is not None:
            values.update(
                decided_by=decided_by, decided_action=action, decided_at=now, decided_comment=comment
            )
        stmt = sa.update(ItemRow).where(col(ItemRow.id) == item_id)
        if claimed_at is not None:
            stmt = stmt.where(col(ItemRow.claim_at) == claimed_at)
        result = await s.exec(stmt.values(**values))
        if claimed_at is not None and not result.rowcount:
            return False
        s.add_all(audit)
        if item is not None:
            await save_item(s, item=item, now=now, existing_id=item_id, closed=item.status.final)
        await outbox.enqueue(s, entries=entries, now=now)
        return True


async def items_by_ids(db: Database, *, item_ids: Sequence[int]) -> dict[int, StoredItem]:
    async with db.session() as s:
        return {r.id: decode(r) for r in await item_rows(s, item_ids=item_ids) if r.id is not None}
