"""Read-only figures for /metrics: how much Slack work waits, and since when.

Why its own module: the outbox's owners change how work is queued; what an operator watches (depth,
age of the oldest job) stays the same question, asked here in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, func, select

from store.db import Database
from store.models import OutboxRow


@dataclass(frozen=True)
class OutboxBacklog:
    depth: int
    oldest: datetime | None  # when the longest-waiting job was (last) asked for


async def outbox_backlog(db: Database) -> OutboxBacklog:
    async with db.session() as session:
        row = (await session.exec(select(func.count(), func.min(col(OutboxRow.enqueued_at))))).one()
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands aggregates back naive (UTC)
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return OutboxBacklog(depth=int(row[0]), oldest=oldest)
