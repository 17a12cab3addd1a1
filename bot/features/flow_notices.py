"""Channel notifications of flow status: `[slack] notify_channel` and `/approvals subscribe`.

One message per flow per channel, updated in place as the flow moves; a thread reply per decision
made through the bot, naming who decided and their comment. Work is enqueued by a store change
hook (in the transaction that wrote the snapshot) and delivered by the notifier, so a restart
loses nothing and repeated changes coalesce into one update.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import blocks
from bot.flow_blocks import decision_reply, flow_message
from bot.notifier import digest
from connectors.base import Status
from store.models import CardRow, DecisionRow, FlowMessageRow, ItemRow, OutboxRow, SubscriptionRow
from store.repo import now_utc

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def setup(runtime: Runtime) -> None:
    feature = FlowNotices(runtime)
    runtime.store.change_hooks.append(feature.on_change)
    runtime.notifier.handlers["flow"] = feature.deliver
    runtime.flow_notices = feature  # type: ignore[attr-defined]


class FlowNotices:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def channels_for(self, session: AsyncSession, connector: str) -> list[str]:
        rows = await session.exec(
            select(SubscriptionRow.channel).where(SubscriptionRow.connector == connector)
        )
        channels = list(rows.all())
        default = self.runtime.config.notify_channel
        if default and default not in channels:
            channels.insert(0, default)
        return channels

    async def on_change(self, session: AsyncSession, rows: Sequence[ItemRow], now: datetime) -> None:
        channels_of: dict[str, list[str]] = {}
        for connector in {r.connector for r in rows}:
            channels_of[connector] = await self.channels_for(session, connector)
        # Items whose cards went to people's DMs: the connector's channel still learns how they ended.
        ended = [
            r.id
            for r in rows
            if r.id is not None
            and Status(r.status).final
            and (config := self.runtime.config.connector(r.connector)) is not None
            and config.channel
            and config.channel not in channels_of[r.connector]
        ]
        dm_cards: set[int] = set()
        if ended:
            cards = await session.exec(
                select(CardRow.item_id, CardRow.target).where(col(CardRow.item_id).in_(ended))
            )
            dm_cards = {item_id for item_id, target in cards.all() if not target.startswith("channel:")}
        work: list[dict[str, object]] = []
        for row in rows:
            channels = list(channels_of[row.connector])
            config = self.runtime.config.connector(row.connector)
            if row.id in dm_cards and config is not None and config.channel:
                channels.append(config.channel)
            work.extend(
                {"key": f"flow:{row.id}:{channel}", "kind": "flow", "item_id": row.id, "target": channel}
                for channel in channels
            )
        await self.runtime.store.enqueue_many(session, work=work, now=now)

    async def deliver(self, row: OutboxRow) -> None:
        assert row.item_id is not None and row.target is not None
        store, notifier = self.runtime.store, self.runtime.notifier
        stored = await store.item_by_id(item_id=row.item_id)
        if stored is None:
            return
        channel = row.target
        view = notifier.connectors.get(stored.item.connector)
        label = view.vendor_label if view else stored.item.connector
        decided_by = stored.row.decided_by if stored.item.status.final else None
        message = flow_message(
            stored.item, vendor_label=label, connector_name=stored.item.connector, decided_by=decided_by
        )
        rendered = digest(message)
        async with store.db.session() as s:
            existing = (
                await s.exec(
                    select(FlowMessageRow).where(
                        FlowMessageRow.item_id == row.item_id, FlowMessageRow.channel == channel
                    )
                )
            ).first()
        try:
            if existing is None:
                await notifier.pace(channel)
                response = await notifier.client.chat_postMessage(
                    channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
                )
                async with store.db.transaction() as s:
                    existing = FlowMessageRow(
                        item_id=row.item_id,
                        channel=str(response["channel"]),
                        ts=str(response["ts"]),
                        rendered=rendered,
                        posted_at=now_utc(),
                    )
                    s.add(existing)
            elif existing.rendered != rendered:
                await notifier.pace(existing.channel)
                await notifier.client.chat_update(
                    channel=existing.channel, ts=existing.ts, text=message.text, blocks=message.blocks
                )
                async with store.db.transaction() as s:
                    await s.exec(
                        sa.update(FlowMessageRow)
                        .where(col(FlowMessageRow.id) == existing.id)
                        .values(rendered=rendered)
                    )
            await self._replies(existing, row.item_id)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in ("not_in_channel", "channel_not_found", "is_archived"):
                await self._cannot_post(stored.item.connector, channel, error)
                return
            raise

    async def _replies(self, message: FlowMessageRow, item_id: int) -> None:
        """A thread reply for each decision made through the bot since the last one replied."""
        store, notifier = self.runtime.store, self.runtime.notifier
        async with store.db.session() as s:
            stmt = select(DecisionRow).where(DecisionRow.item_id == item_id, DecisionRow.outcome == "ok")
            if message.last_decision_id is not None:
                stmt = stmt.where(col(DecisionRow.id) > message.last_decision_id)
            decisions = list((await s.exec(stmt.order_by(col(DecisionRow.id)))).all())
        for decision in decisions:
            reply = decision_reply(
                slack_user=decision.slack_user_id,
                action=decision.action,
                comment=decision.comment,
                at=decision.at,
            )
            await notifier.pace(message.channel)
            await notifier.client.chat_postMessage(
                channel=message.channel, thread_ts=message.ts, text=reply.text, blocks=reply.blocks
            )
            async with store.db.transaction() as s:
                await s.exec(
                    sa.update(FlowMessageRow)
                    .where(col(FlowMessageRow.id) == message.id)
                    .values(last_decision_id=decision.id)
                )

    async def _cannot_post(self, connector: str, channel: str, error: str) -> None:
        """Tell whoever subscribed that channel, once, instead of failing silently; drop the subscription."""
        store, notifier = self.runtime.store, self.runtime.notifier
        async with store.db.transaction() as s:
            subscription = (
                await s.exec(
                    select(SubscriptionRow).where(
                        SubscriptionRow.connector == connector, SubscriptionRow.channel == channel
                    )
                )
            ).first()
            if subscription is not None:
                await s.delete(subscription)
        if subscription is None:
            log.warning("cannot post flow notifications to %s (%s): invite the bot there", channel, error)
            return
        await notifier.tell(
            user=subscription.created_by,
            message=blocks.notice(
                f"I can no longer post `{blocks.escape(connector)}` notifications to <#{channel}> ({error}). "
                f"Invite me there (`/invite @approvals-bot`) and run `/approvals subscribe {connector} <#{channel}>` "
                "again. Until then that channel gets nothing."
            ),
        )
