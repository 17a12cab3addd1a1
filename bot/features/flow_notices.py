"""Channel notifications of flow status: `[slack] notify_channel` and `/approvals subscribe`.

One message per flow per channel, updated in place as the flow moves; a thread reply per decision
made through the bot, naming who decided and their comment. Work is enqueued by a store change
hook (in the transaction that wrote the snapshot) and delivered by the notifier, so a restart
loses nothing and repeated changes coalesce into one update.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import blocks
from bot.flow_blocks import decision_reply, flow_message
from bot.notifier import digest
from connectors.base import ApprovalItem
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

    async def on_change(self, session: AsyncSession, item_id: int, now: datetime) -> None:
        row = (await session.exec(select(ItemRow).where(col(ItemRow.id) == item_id))).first()
        if row is None:
            return
        connector = row.connector
        channels = await self.channels_for(session, connector)
        # Items whose cards went to people's DMs: the connector's channel still learns how they ended.
        config = self.runtime.config.connector(connector)
        if config is not None and config.channel and config.channel not in channels:
            item = ApprovalItem.from_json(row.data)
            targets = (await session.exec(select(CardRow.target).where(CardRow.item_id == item_id))).all()
            if item.status.final and any(not t.startswith("channel:") for t in targets):
                channels.append(config.channel)
        for channel in channels:
            await self.runtime.store.enqueue(
                session,
                key=f"flow:{item_id}:{channel}",
                kind="flow",
                item_id=item_id,
                target=channel,
                now=now,
            )

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
