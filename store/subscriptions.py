"""Channels following a connector's flows, and the one status message per flow per channel."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import FlowMessageRow, SubscriptionRow
from store.outbox import now_utc


async def channels(session: AsyncSession, *, connectors: Iterable[str]) -> dict[str, list[str]]:
    """Subscribed channels by connector (inside the caller's transaction)."""
    names = sorted(set(connectors))
    found: dict[str, list[str]] = {n: [] for n in names}
    if names:
        rows = await session.exec(
            select(SubscriptionRow.connector, SubscriptionRow.channel)
            .where(col(SubscriptionRow.connector).in_(names))
            .order_by(col(SubscriptionRow.id))
        )
        for connector, channel in rows.all():
            found[connector].append(channel)
    return found


async def subscribe(db: Database, *, connector: str, channel: str, created_by: str) -> None:
    async with db.transaction() as s:
        exists = (
            await s.exec(
                select(SubscriptionRow).where(
                    SubscriptionRow.connector == connector, SubscriptionRow.channel == channel
                )
            )
        ).first()
        if exists is None:
            s.add(
                SubscriptionRow(
                    connector=connector, channel=channel, created_by=created_by, created_at=now_utc()
                )
            )


async def unsubscribe(db: Database, *, connector: str, channel: str) -> bool:
    async with db.transaction() as s:
        result = await s.exec(
            sa.delete(SubscriptionRow).where(
                col(SubscriptionRow.connector) == connector, col(SubscriptionRow.channel) == channel
            )
        )
        return bool(result.rowcount)


async def drop(db: Database, *, connector: str, channel: str) -> str | None:
    """Remove a subscription the bot can no longer serve; returns who made it (None: there was none)."""
    async with db.transaction() as s:
        row = (
            await s.exec(
                select(SubscriptionRow).where(
                    SubscriptionRow.connector == connector, SubscriptionRow.channel == channel
                )
            )
        ).first()
        if row is None:
            return None
        await s.delete(row)
        return row.created_by


async def flow_message(db: Database, *, item_id: int, channel: str) -> FlowMessageRow | None:
    async with db.session() as s:
        return (
            await s.exec(
                select(FlowMessageRow).where(
                    FlowMessageRow.item_id == item_id, FlowMessageRow.channel == channel
                )
            )
        ).first()


async def record_flow_message(db: Database, *, item_id: int, channel: str, ts: str, rendered: str) -> None:
    async with db.transaction() as s:
        s.add(FlowMessageRow(item_id=item_id, channel=channel, ts=ts, rendered=rendered, posted_at=now_utc()))


async def flow_rendered(db: Database, *, message_id: int, rendered: str) -> None:
    async with db.transaction() as s:
        await s.exec(
            sa.update(FlowMessageRow).where(col(FlowMessageRow.id) == message_id).values(rendered=rendered)
        )


async def flow_replied(db: Database, *, message_id: int, decision_id: int) -> None:
    async with db.transaction() as s:
        await s.exec(
            sa.update(FlowMessageRow)
            .where(col(FlowMessageRow.id) == message_id)
            .values(last_decision_id=decision_id)
        )
