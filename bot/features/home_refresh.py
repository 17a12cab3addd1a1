"""Keeps each person's App Home true: republished when an item that concerns them changes.

A change hook enqueues one "home:<user>" job per person concerned, due a moment later
(`Runtime.home_settle`) and coalesced by key: the changes of a sync, or of several clicks in a row,
give one views.publish per person. The notifier delivers it like any other Slack work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ApprovalItem
from store.models import IdentityRow, ItemRow, OutboxRow

if TYPE_CHECKING:
    from bot.runtime import Runtime


def setup(runtime: Runtime) -> None:
    async def on_change(session: AsyncSession, rows: Sequence[ItemRow], now: datetime) -> None:
        linked: dict[str, list[IdentityRow]] = {}
        for connector in {r.connector for r in rows}:
            found = await session.exec(select(IdentityRow).where(IdentityRow.connector == connector))
            linked[connector] = list(found.all())
        homes: set[str] = set()
        for row in rows:
            if not linked[row.connector]:
                continue  # nobody linked: no Home shows this connector's items
            recipients = {p.id for p in ApprovalItem.from_json(row.data).recipients}
            homes.update(
                identity.slack_user_id
                for identity in linked[row.connector]
                if not recipients
                or identity.vendor_user_id in recipients
                or row.claim_by == identity.slack_user_id
            )
        await runtime.store.enqueue_many(
            session,
            work=[{"key": f"home:{user}", "kind": "home", "target": user} for user in sorted(homes)],
            now=now,
            delay=timedelta(seconds=runtime.home_settle),
        )

    async def deliver(row: OutboxRow) -> None:
        from bot.listeners.home import publish_home

        if row.target:
            await publish_home(runtime.deps, row.target)

    runtime.store.change_hooks.append(on_change)
    runtime.notifier.handlers["home"] = deliver
