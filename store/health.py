"""Connector health (for /healthz, /approvals status and App Home) and the Events API ids
already handled (Slack retries an event up to three times)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import outbox
from store.db import Database
from store.models import ConnectorStateRow, ProcessedEventRow
from store.outbox import now_utc


async def connector_states(db: Database) -> dict[str, ConnectorStateRow]:
    async with db.session() as s:
        return {r.name: r for r in (await s.exec(select(ConnectorStateRow))).all()}


async def record_sync(
    session: AsyncSession, *, name: str, ok: bool, error: str | None, pending: int | None
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


async def first_time_event(db: Database, *, event_id: str) -> bool:
    """True once per event id (Slack retries an event up to three times)."""
    async with db.transaction() as s:
        stmt = outbox.insert(s, ProcessedEventRow.__table__).values(event_id=event_id, at=now_utc())  # type: ignore[attr-defined]
        result = await s.exec(stmt.on_conflict_do_nothing(index_elements=["event_id"]))
        return bool(result.rowcount)


async def forget_events(db: Database, *, older_than: timedelta) -> None:
    async with db.transaction() as s:
        await s.exec(sa.delete(ProcessedEventRow).where(col(ProcessedEventRow.at) < now_utc() - older_than))
