"""Posted card messages: where each item's copies are (channel, ts) and what they last showed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import CardRow


async def cards(db: Database, *, item_id: int) -> list[CardRow]:
    async with db.session() as s:
        return list((await s.exec(select(CardRow).where(CardRow.item_id == item_id))).all())


async def cards_of(db: Database, *, item_ids: Sequence[int]) -> dict[int, list[CardRow]]:
    """Every card of these items, by item id (one query per 500 items)."""
    found: dict[int, list[CardRow]] = {i: [] for i in item_ids}
    ids = list(found)
    async with db.session() as s:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for card in (await s.exec(select(CardRow).where(col(CardRow.item_id).in_(chunk)))).all():
                found[card.item_id].append(card)
    return found


async def targets(session: AsyncSession, *, item_ids: Sequence[int]) -> dict[int, list[str]]:
    """Where each item's cards are (targets), inside the caller's transaction."""
    found: dict[int, list[str]] = {i: [] for i in item_ids}
    ids = list(found)
    for start in range(0, len(ids), 500):
        rows = await session.exec(
            select(CardRow.item_id, CardRow.target).where(col(CardRow.item_id).in_(ids[start : start + 500]))
        )
        for item_id, target in rows.all():
            found[item_id].append(target)
    return found


async def targets_now(db: Database, *, item_id: int) -> list[str]:
    async with db.session() as s:
        return (await targets(s, item_ids=[item_id]))[item_id]
