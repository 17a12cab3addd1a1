"""Cards about to be posted: the intent written before chat.postMessage, so a crash between the post
and its record can be told apart from a post that never happened (bot/outbox/deliver.py looks in
the channel's history for a row found here, instead of posting a second copy)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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


async def begin_many(
    db: Database, *, posts: Sequence[tuple[int, str, str]]
) -> dict[tuple[int, str], datetime | None]:
    """`begin` for a whole delivery pass in one transaction ((item id, target, channel) each):
    (item id, target) → when an earlier attempt began (None: recorded now, the first attempt)."""
    if not posts:
        return {}
    wanted = {(i, t): c for i, t, c in posts}
    found: dict[tuple[int, str], datetime | None] = {}
    async with db.transaction() as s:
        ids = list({i for i, _ in wanted})
        for start in range(0, len(ids), 500):
            rows = await s.exec(
                select(CardPostRow).where(col(CardPostRow.item_id).in_(ids[start : start + 500]))
            )
            found.update(
                {(r.item_id, r.target): r.started_at for r in rows.all() if (r.item_id, r.target) in wanted}
            )
        now = now_utc()
        fresh = [
            {"item_id": i, "target": t[:320], "channel": c[:32], "started_at": now}
            for (i, t), c in wanted.items()
            if (i, t) not in found
        ]
        table = CardPostRow.__table__  # type: ignore[attr-defined]
        stmt = outbox.insert(s, table).on_conflict_do_nothing(index_elements=["item_id", "target"])
        for start in range(0, len(fresh), 500):
            await s.exec(stmt, params=fresh[start : start + 500])
    return {key: found.get(key) for key in wanted}


async def forget(db: Database, *, posts: Sequence[tuple[int, str]]) -> None:
    """Drop intents whose post certainly never happened (the pass never reached it, or its pace
    held it back before the call), so their next attempt need not search the history."""
    if not posts:
        return
    async with db.transaction() as s:
        for item_id, target in posts:
            await s.exec(
                sa.delete(CardPostRow).where(
                    col(CardPostRow.item_id) == item_id, col(CardPostRow.target) == target
                )
            )


async def forget_recorded(db: Database) -> int:
    """Drop intents whose card is recorded (they served their purpose); returns how many.

    Looked at first: the table is empty unless a crash cut a post short, and a sync that changed
    nothing writes nothing (the sync-cost benchmark counts every write statement)."""
    async with db.transaction() as s:
        if (await s.exec(select(CardPostRow.id).limit(1))).first() is None:
            return 0
        recorded = select(CardRow.id).where(
            col(CardRow.item_id) == col(CardPostRow.item_id), col(CardRow.target) == col(CardPostRow.target)
        )
        result = await s.exec(sa.delete(CardPostRow).where(recorded.exists()))
        return int(result.rowcount or 0)


async def pending(db: Database) -> list[CardPostRow]:
    async with db.session() as s:
        return list((await s.exec(select(CardPostRow).order_by(col(CardPostRow.id)))).all())
