"""Keeps each person's App Home true: republished when an item that concerns them changes.

A change hook enqueues one "home:<user>" job per person concerned (coalesced: many changes in one
sync give one views.publish per person), delivered by the notifier like any other Slack work.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ApprovalItem
from store.models import IdentityRow, ItemRow, OutboxRow

if TYPE_CHECKING:
    from bot.runtime import Runtime


def setup(runtime: Runtime) -> None:
    async def on_change(session: AsyncSession, item_id: int, now: datetime) -> None:
        row = (await session.exec(select(ItemRow).where(col(ItemRow.id) == item_id))).first()
        if row is None:
            return
        item = ApprovalItem.from_json(row.data)
        recipients = {p.id for p in item.recipients}
        linked = await session.exec(select(IdentityRow).where(IdentityRow.connector == item.connector))
        for identity in linked.all():
            if (
                recipients
                and identity.vendor_user_id not in recipients
                and row.claim_by != identity.slack_user_id
            ):
                continue
            await runtime.store.enqueue(
                session,
                key=f"home:{identity.slack_user_id}",
                kind="home",
                target=identity.slack_user_id,
                now=now,
            )

    async def deliver(row: OutboxRow) -> None:
        from bot.listeners.home import publish_home

        if row.target:
            await publish_home(runtime.deps, row.target)

    runtime.store.change_hooks.append(on_change)
    runtime.notifier.handlers["home"] = deliver
