"""Store operations the bot needs, each one short transaction with keyword-only arguments.

Why a class over the Database: the services get one object that knows both the tables and the
credential box, so nothing outside this module decrypts or writes rows.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ApprovalItem, LinkedUser, Status
from store.crypto import CredentialBox, SecretKeyError
from store.db import Database
from store.models import (
    CardRow,
    ConnectorStateRow,
    DecisionRow,
    IdentityRow,
    ItemRow,
    OutboxRow,
    ProcessedEventRow,
)


def now_utc() -> datetime:
    return datetime.now(UTC)


# Rows decoded between two turns of the event loop (see pending_items).
DECODE_SLICE = 100


@dataclass(frozen=True)
class StoredItem:
    """An item row decoded: the vendor snapshot plus the bot's own state."""

    row: ItemRow
    item: ApprovalItem

    @property
    def id(self) -> int:
        assert self.row.id is not None
        return self.row.id


@dataclass(frozen=True)
class Identity:
    slack_user_id: str
    connector: str
    vendor_user_id: str
    display_name: str
    email: str | None
    credentials: Mapping[str, str] = field(repr=False)  # decrypted: never in a repr or a log line
    broken: bool = False


# Called with the ids of items whose snapshots changed together (a sync passes all of a cycle's).
ChangeHook = Callable[[AsyncSession, Sequence[ItemRow], datetime], Awaitable[None]]


class Store:
    def __init__(self, db: Database, box: CredentialBox) -> None:
        self.db = db
        self.box = box
        # Called inside the transaction that wrote a new vendor snapshot of an item (sync or click),
        # so features (channel notifications, reminders) enqueue their Slack work atomically with it.
        self.change_hooks: list[ChangeHook] = []

    async def item_changed(self, session: AsyncSession, *, item_id: int, now: datetime) -> None:
        await self.items_changed(session, item_ids=[item_id], now=now)

    async def items_changed(self, session: AsyncSession, *, item_ids: Sequence[int], now: datetime) -> None:
        """Hooks get the whole batch, read once, so a sync of thousands of items costs a few
        queries, not a few per item and hook."""
        if not item_ids or not self.change_hooks:
            return
        rows = await self.item_rows(session, item_ids=item_ids)
        for hook in self.change_hooks:
            await hook(session, rows, now)

    # ---- items -------------------------------------------------------------------------------

    async def item(self, *, connector: str, external_id: str) -> StoredItem | None:
        async with self.db.session() as s:
            row = (
                await s.exec(
                    select(ItemRow).where(ItemRow.connector == connector, ItemRow.external_id == external_id)
                )
            ).first()
            return _decode(row) if row else None

    async def item_by_id(self, *, item_id: int) -> StoredItem | None:
        async with self.db.session() as s:
            row = await s.get(ItemRow, item_id)
            return _decode(row) if row else None

    async def item_rows(self, session: AsyncSession, *, item_ids: Sequence[int]) -> list[ItemRow]:
        """Rows by id inside the caller's transaction (chunked: databases cap bound parameters)."""
        rows: list[ItemRow] = []
        ids = list(dict.fromkeys(item_ids))
        for start in range(0, len(ids), 500):
            found = await session.exec(select(ItemRow).where(col(ItemRow.id).in_(ids[start : start + 500])))
            rows.extend(found.all())
        return rows

    async def versions(self, *, connector: str) -> dict[str, tuple[str, str, int]]:
        """external id → (version, status, row id) of every open item of a connector (for the diff)."""
        stmt = select(ItemRow.external_id, ItemRow.version, ItemRow.status, ItemRow.id).where(
            ItemRow.connector == connector, col(ItemRow.closed_at).is_(None)
        )
        found: dict[str, tuple[str, str, int]] = {}
        async with self.db.session() as s:
            # Streamed in partitions: at 100k items a fully buffered result is a second copy.
            result = await s.stream(stmt)
            async for partition in result.partitions(2000):
                found.update(
                    (ext, (ver, sys.intern(status), int(rid or 0))) for ext, ver, status, rid in partition
                )
        return found

    async def pending_items(self, *, connectors: Iterable[str] | None = None) -> list[StoredItem]:
        async with self.db.session() as s:
            stmt = select(ItemRow).where(ItemRow.status == Status.PENDING.value)
            if connectors is not None:
                stmt = stmt.where(col(ItemRow.connector).in_(list(connectors)))
            rows = (await s.exec(stmt.order_by(col(ItemRow.first_seen_at)))).all()
        # Decoded a slice at a time, letting the event loop in between: hundreds of items (a busy
        # person's App Home) would otherwise hold up every click arriving meanwhile.
        items: list[StoredItem] = []
        for start in range(0, len(rows), DECODE_SLICE):
            items.extend(_decode(r) for r in rows[start : start + DECODE_SLICE])
            await asyncio.sleep(0)
        return items

    async def stale_claims(self, *, older_than: timedelta) -> list[StoredItem]:
        cutoff = now_utc() - older_than
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(ItemRow).where(col(ItemRow.claim_by).is_not(None), col(ItemRow.claim_at) < cutoff)
                )
            ).all()
            return [_decode(r) for r in rows]

    async def save_item(
        self,
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
        stmt = _insert(session, table).values(**insert_values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["connector", "external_id"], set_=values, where=guard
        )
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
        self, session: AsyncSession, *, items: Sequence[ApprovalItem], now: datetime
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
                _insert(session, table)
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

    async def claim(self, *, item_id: int, slack_user: str, action: str) -> bool:
        """pending → acting, atomically: only one click wins, on any replica."""
        async with self.db.transaction() as s:
            result = await s.exec(
                sa.update(ItemRow)
                .where(
                    col(ItemRow.id) == item_id,
                    col(ItemRow.claim_by).is_(None),
                    col(ItemRow.status) == Status.PENDING.value,
                )
                .values(claim_by=slack_user, claim_action=action, claim_at=now_utc(), last_error=None)
            )
            if not result.rowcount:
                return False
            await self.enqueue_item_cards(s, item_id=item_id, now=now_utc())  # "Working…" on every copy
            return True

    async def finish_claim(
        self,
        *,
        item_id: int,
        item: ApprovalItem | None = None,
        decided_by: str | None = None,
        action: str | None = None,
        comment: str | None = None,
        error: str | None = None,
        audit: Sequence[DecisionRow] = (),
    ) -> None:
        """Release the claim; record the vendor's new snapshot and the local decision or failure,
        and the audit of the attempt, in one transaction."""
        now = now_utc()
        async with self.db.transaction() as s:
            s.add_all(audit)
            values: dict[str, Any] = {
                "claim_by": None,
                "claim_action": None,
                "claim_at": None,
                "last_error": error,
            }
            if decided_by is not None:
                values.update(
                    decided_by=decided_by, decided_action=action, decided_at=now, decided_comment=comment
                )
            await s.exec(sa.update(ItemRow).where(col(ItemRow.id) == item_id).values(**values))
            if item is not None:
                await self.save_item(s, item=item, now=now, existing_id=item_id, closed=item.status.final)
                await self.item_changed(s, item_id=item_id, now=now)
            await self.enqueue_item_cards(s, item_id=item_id, now=now)

    # ---- cards and outbox --------------------------------------------------------------------

    async def cards(self, *, item_id: int) -> list[CardRow]:
        async with self.db.session() as s:
            return list((await s.exec(select(CardRow).where(CardRow.item_id == item_id))).all())

    async def items_by_ids(self, *, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        async with self.db.session() as s:
            return {r.id: _decode(r) for r in await self.item_rows(s, item_ids=item_ids) if r.id is not None}

    async def cards_of(self, *, item_ids: Sequence[int]) -> dict[int, list[CardRow]]:
        """Every card of these items, by item id (one query per 500 items)."""
        found: dict[int, list[CardRow]] = {i: [] for i in item_ids}
        ids = list(found)
        async with self.db.session() as s:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for card in (await s.exec(select(CardRow).where(col(CardRow.item_id).in_(chunk)))).all():
                    found[card.item_id].append(card)
        return found

    async def settle(
        self,
        *,
        done: Sequence[OutboxRow],
        posted: Sequence[Mapping[str, Any]] = (),
        rendered: Sequence[tuple[int, str]] = (),
    ) -> None:
        """What a delivery pass did, in one transaction: cards posted (recorded with the outbox rows
        that asked for them, so a crash can't leave one without the other), cards updated, work done.

        An outbox row re-enqueued meanwhile (newer enqueued_at) stays: it still has work to do.
        """
        async with self.db.transaction() as s:
            if posted:
                table = CardRow.__table__  # type: ignore[attr-defined]
                stmt = _insert(s, table).on_conflict_do_nothing(index_elements=["item_id", "target"])
                cards = [{k: v for k, v in p.items() if not k.startswith("seen_")} for p in posted]
                await s.exec(stmt, params=[{**c, "posted_at": now_utc()} for c in cards])
                await self._redraw_if_moved(s, posted)
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

    async def _redraw_if_moved(self, session: AsyncSession, posted: Sequence[Mapping[str, Any]]) -> None:
        """A card posted but not yet recorded is invisible to a click that came meanwhile (its
        redraw finds no card to update). Each posted card carries the item's state it was drawn
        from (`seen_updated_at`, `seen_claim_by`); when the item has moved since, the card is
        drawn again."""
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
            p
            for p in posted
            if "seen_updated_at" in p
            and now_state.get(int(p["item_id"]), (p["seen_updated_at"], p["seen_claim_by"]))
            != (p["seen_updated_at"], p["seen_claim_by"])
        ]
        await self.enqueue_many(
            session,
            work=[
                {
                    "key": f"card:{p['item_id']}:{p['target']}",
                    "kind": "card",
                    "item_id": p["item_id"],
                    "target": p["target"],
                }
                for p in moved
            ],
            now=now_utc(),
        )

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        key: str,
        kind: str,
        item_id: int | None = None,
        target: str | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Add Slack work unless the same key already waits (then it is the same work)."""
        work = {"key": key, "kind": kind, "item_id": item_id, "target": target, "payload": payload}
        await self.enqueue_many(session, work=[work], now=now or now_utc())

    async def enqueue_many(
        self,
        session: AsyncSession,
        *,
        work: Sequence[Mapping[str, Any]],
        now: datetime,
        delay: timedelta = timedelta(0),
    ) -> None:
        """`enqueue` for many rows at once (each a mapping of key, kind, item_id, target).

        `delay`: due that much later. Work already waiting keeps its own due time, so repeats
        coalesce into it instead of postponing it."""
        if not work:
            return
        stmt = _enqueue_statement(_dialect(session))
        rows = [
            {
                "key": w["key"],
                "kind": w["kind"],
                "item_id": w.get("item_id"),
                "target": w.get("target"),
                "payload": json.dumps(w["payload"]) if w.get("payload") is not None else None,
                "not_before": now + delay,
                "attempts": 0,
                "enqueued_at": now,
                "last_error": None,
            }
            for w in {
                w["key"]: w for w in work
            }.values()  # one row per key: a statement may not touch a row twice
        ]
        for start in range(0, len(rows), 500):
            await session.exec(stmt, params=rows[start : start + 500])

    async def enqueue_card(self, session: AsyncSession, *, item_id: int, target: str, now: datetime) -> None:
        await self.enqueue(
            session, key=f"card:{item_id}:{target}", kind="card", item_id=item_id, target=target, now=now
        )

    async def enqueue_item_cards(self, session: AsyncSession, *, item_id: int, now: datetime) -> None:
        targets = (await session.exec(select(CardRow.target).where(CardRow.item_id == item_id))).all()
        for target in targets:
            await self.enqueue_card(session, item_id=item_id, target=target, now=now)

    async def refresh_cards(self, *, item_id: int) -> None:
        async with self.db.transaction() as s:
            await self.enqueue_item_cards(s, item_id=item_id, now=now_utc())

    async def due_outbox(self, *, limit: int = 100, now: datetime | None = None) -> list[OutboxRow]:
        async with self.db.session() as s:
            rows = await s.exec(
                select(OutboxRow)
                .where(col(OutboxRow.not_before) <= (now or now_utc()))
                .order_by(col(OutboxRow.id))
                .limit(limit)
            )
            return list(rows.all())

    async def outbox_size(self) -> int:
        async with self.db.session() as s:
            return int((await s.exec(select(sa.func.count()).select_from(OutboxRow))).one())

    async def outbox_done(self, *, row: OutboxRow) -> None:
        """Delete the row unless it was re-enqueued meanwhile (a newer state still to deliver)."""
        async with self.db.transaction() as s:
            await s.exec(
                sa.delete(OutboxRow).where(
                    col(OutboxRow.id) == row.id, col(OutboxRow.enqueued_at) == row.enqueued_at
                )
            )

    async def outbox_retry(self, *, row: OutboxRow, error: str, delay: timedelta) -> None:
        async with self.db.transaction() as s:
            await s.exec(
                sa.update(OutboxRow)
                .where(col(OutboxRow.id) == row.id)
                .values(attempts=row.attempts + 1, last_error=error[:500], not_before=now_utc() + delay)
            )

    # ---- identities --------------------------------------------------------------------------

    async def link(
        self,
        *,
        slack_user_id: str,
        connector: str,
        vendor_user_id: str,
        display_name: str,
        email: str | None,
        credentials: Mapping[str, str] | None,
    ) -> None:
        sealed = self.box.seal(credentials) if credentials else None
        async with self.db.transaction() as s:
            await s.exec(
                sa.delete(IdentityRow).where(
                    col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector
                )
            )
            s.add(
                IdentityRow(
                    slack_user_id=slack_user_id,
                    connector=connector,
                    vendor_user_id=vendor_user_id,
                    display_name=display_name,
                    email=email,
                    credentials_enc=sealed,
                    linked_at=now_utc(),
                )
            )

    async def unlink(self, *, slack_user_id: str, connector: str) -> bool:
        async with self.db.transaction() as s:
            result = await s.exec(
                sa.delete(IdentityRow).where(
                    col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector
                )
            )
            return bool(result.rowcount)

    async def mark_broken(self, *, slack_user_id: str, connector: str) -> None:
        async with self.db.transaction() as s:
            await s.exec(
                sa.update(IdentityRow)
                .where(
                    col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector
                )
                .values(broken_at=now_utc())
            )

    async def identity(self, *, slack_user_id: str, connector: str) -> Identity | None:
        async with self.db.session() as s:
            row = (
                await s.exec(
                    select(IdentityRow).where(
                        IdentityRow.slack_user_id == slack_user_id, IdentityRow.connector == connector
                    )
                )
            ).first()
        return self._identity(row) if row else None

    async def identities(
        self, *, connector: str | None = None, slack_user_id: str | None = None
    ) -> list[Identity]:
        async with self.db.session() as s:
            stmt = select(IdentityRow)
            if connector is not None:
                stmt = stmt.where(IdentityRow.connector == connector)
            if slack_user_id is not None:
                stmt = stmt.where(IdentityRow.slack_user_id == slack_user_id)
            rows = (await s.exec(stmt.order_by(col(IdentityRow.id)))).all()
        return [self._identity(r) for r in rows]

    async def linked_users(self, *, connector: str) -> list[LinkedUser]:
        return [
            LinkedUser(i.slack_user_id, i.vendor_user_id, i.email, i.credentials)
            for i in await self.identities(connector=connector)
            if not i.broken
        ]

    def _identity(self, row: IdentityRow) -> Identity:
        credentials: Mapping[str, str] = {}
        broken = row.broken_at is not None
        if row.credentials_enc:
            try:
                credentials = self.box.open(row.credentials_enc)
            except SecretKeyError:
                broken = True
        return Identity(
            row.slack_user_id,
            row.connector,
            row.vendor_user_id,
            row.display_name,
            row.email,
            credentials,
            broken,
        )

    # ---- audit, health, events ---------------------------------------------------------------

    async def decisions(self, *, item_id: int | None = None) -> list[DecisionRow]:
        async with self.db.session() as s:
            stmt = select(DecisionRow)
            if item_id is not None:
                stmt = stmt.where(DecisionRow.item_id == item_id)
            return list((await s.exec(stmt.order_by(col(DecisionRow.id)))).all())

    async def connector_states(self) -> dict[str, ConnectorStateRow]:
        async with self.db.session() as s:
            return {r.name: r for r in (await s.exec(select(ConnectorStateRow))).all()}

    async def record_sync(
        self, session: AsyncSession, *, name: str, ok: bool, error: str | None, pending: int | None
    ) -> None:
        now = now_utc()
        row = await session.get(ConnectorStateRow, name)
        if row is None:
            row = ConnectorStateRow(name=name)
            session.add(row)
        row.last_sync_at = now
        if ok:
            row.last_success_at = now
            row.failures = 0
            row.last_error = None
        else:
            row.failures += 1
            row.last_error = error
        if pending is not None:
            row.pending = pending

    async def first_time_event(self, *, event_id: str) -> bool:
        """True once per event id (Slack retries an event up to three times)."""
        async with self.db.transaction() as s:
            stmt = _insert(s, ProcessedEventRow.__table__).values(event_id=event_id, at=now_utc())  # type: ignore[attr-defined]
            result = await s.exec(stmt.on_conflict_do_nothing(index_elements=["event_id"]))
            return bool(result.rowcount)

    async def forget_events(self, *, older_than: timedelta) -> None:
        async with self.db.transaction() as s:
            await s.exec(
                sa.delete(ProcessedEventRow).where(col(ProcessedEventRow.at) < now_utc() - older_than)
            )


def _decode(row: ItemRow) -> StoredItem:
    return StoredItem(row=row, item=ApprovalItem.from_json(row.data))


def decision_row(
    *,
    item_id: int | None,
    connector: str,
    external_id: str,
    slack_user_id: str,
    vendor_user_id: str | None,
    action: str,
    comment: str | None,
    outcome: str,
    vendor_answer: str | None,
) -> DecisionRow:
    """One audit line: who tried what on which item, and what the vendor answered."""
    return DecisionRow(
        item_id=item_id,
        connector=connector,
        external_id=external_id,
        slack_user_id=slack_user_id,
        vendor_user_id=vendor_user_id,
        action=action,
        comment=comment,
        outcome=outcome,
        vendor_answer=(vendor_answer or "")[:1000] or None,
        at=now_utc(),
    )


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _insert(session: AsyncSession, table: Any) -> Any:
    return pg_insert(table) if _dialect(session) == "postgresql" else sqlite_insert(table)


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """Built once: the upsert's `excluded` is a new alias of the whole table each time it is built,
    a web of reference cycles that only a garbage collection frees (pauses under a burst of clicks)."""
    table = OutboxRow.__table__  # type: ignore[attr-defined]
    stmt = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return stmt.on_conflict_do_update(index_elements=["key"], set_={"enqueued_at": stmt.excluded.enqueued_at})


def targets_of(cards: Sequence[CardRow]) -> set[str]:
    return {c.target for c in cards}
