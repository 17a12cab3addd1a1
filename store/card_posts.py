"""Cards about to be posted: the intent written before chat.postMessage, so a crash between the post
and its record can be told apart from a post that never happened (bot/outbox/deliver.py looks in
the channel's history for a row found here, instead of posting a second copy)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from store import outbox
from store.db import Database
from store.models import CardPostRow, CardRow
from store.outbox import now_utc


async def begin(db: Database, *, item_id: int, target: str, channel: str) -> CardPostRow | None:
    """Record the intent to post; returns the intent an earlier attempt left (None: the first)."""
    async with db.transaction() as s:
        earlier = (
            await s.exec(
                select(CardPostRow).where(CardPostRow.item_id == item_id, CardPostRow.target == target)
            )
        ).first()
        if earlier is not None:
            return earlier
        table = CardPostRow.__table__  # type: ignore[attr-defined]
        stmt = outbox.insert(s, table).on_conflict_do_nothing(index_elements=["item_id", "target"])
        await s.exec(
            stmt.values(item_id=item_id, target=target[:320], channel=channel[:32], started_at=now_utc())
        )
        return None


async def forget_recorded(db: Database) -> int:
    """Drop intents whose card is recorded (they served their purpose); returns how many."""
    async with db.transaction() as s:
        recorded = select(CardRow.id).where(
            col(CardRow.item_id) == col(CardPostRow.item_id), col(CardRow.target) == col(CardPostRow.target)
        )
        result = await s.exec(sa.delete(CardPostRow).where(recorded.exists()))
        return int(result.rowcount or 0)


async def pending(db: Database) -> list[CardPostRow]:
    async with db.session() as s:
        return list((await s.exec(select(CardPostRow).order_by(col(CardPostRow.id)))).all())
