"""Reminders for due approvals, the escalation after the last one, and the daily digest.

Why recorded before sending: `reminders.sent` is advanced with a compare-and-set, and only the
process whose update won sends. A restart or a second replica therefore never sends the same
reminder twice; the price is that a crash between the record and the post loses that one reminder
(the next one still comes), which is the better failure for a nudge.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select

from bot import blocks
from bot.reminder_rules import digest_due, reminder_due
from store.models import CardRow, IdentityRow, ReminderRow, UserPrefRow
from store.repo import Store, StoredItem, now_utc

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

TZ_TTL = timedelta(hours=24)


def setup(runtime: Runtime) -> None:
    nudges = Nudges(runtime)
    runtime.nudges = nudges  # type: ignore[attr-defined]

    async def remind_job() -> None:
        await nudges.remind(runtime.clock())

    async def digest_job() -> None:
        await nudges.digest(runtime.clock())

    runtime.add_job("reminders", 60, remind_job)
    runtime.add_job("digest", 300, digest_job)


class Nudges:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # ---- time zones ------------------------------------------------------------------------------

    async def tz(self, slack_user: str, now: datetime) -> str:
        store = self.runtime.store
        async with store.db.session() as s:
            pref = await s.get(UserPrefRow, slack_user)
        if pref is not None and pref.tz and pref.tz_fetched_at and now - pref.tz_fetched_at < TZ_TTL:
            return pref.tz
        try:
            tz = (await self.runtime.notifier.user_profile(slack_user)).get("tz") or "UTC"
        except SlackApiError:
            return pref.tz if pref is not None and pref.tz else "UTC"
        async with store.db.transaction() as s:
            row = await s.get(UserPrefRow, slack_user)
            if row is None:
                s.add(UserPrefRow(slack_user_id=slack_user, tz=tz, tz_fetched_at=now))
            else:
                row.tz, row.tz_fetched_at = tz, now
        return tz

    # ---- reminders -------------------------------------------------------------------------------

    async def remind(self, now: datetime) -> int:
        """Send every reminder due at `now`; returns how many were sent."""
        sent = 0
        store = self.runtime.store
        configs = {c.name: c for c in self.runtime.config.connectors}
        for stored in await store.pending_items(connectors=list(configs)):
            if stored.row.claim_by:
                continue
            config = configs[stored.item.connector]
            for card in await store.cards(item_id=stored.id):
                if not await self._still_due(stored, card):
                    continue
                key = card.slack_user or card.target
                tz = await self.tz(card.slack_user, now) if card.slack_user else "UTC"
                row = await self._reminder_row(stored.id, key)
                due_since = stored.item.due_since or stored.row.first_seen_at
                rules = config.reminders
                if row.sent >= rules.max:
                    if row.escalated_at is None and await self._claim_escalation(row, now):
                        await self._escalate(stored, card, config.channel)
                    continue
                if not reminder_due(
                    now=now,
                    due_since=due_since,
                    sent=row.sent,
                    last_sent_at=row.last_sent_at,
                    tz=tz,
                    rules=rules,
                    vendor_reminded_at=stored.item.vendor_reminded_at,
                ):
                    continue
                if not await self._claim(row, now):
                    continue  # another replica (or an earlier run) took this one
                await self._send(stored, card, row.sent + 1, rules.max)
                sent += 1
        return sent

    async def _still_due(self, stored: StoredItem, card: CardRow) -> bool:
        """A person's copy is reminded only while the item still waits on them."""
        recipients = stored.item.recipients
        if not card.slack_user or not recipients:
            return True
        identity = await self.runtime.store.identity(
            slack_user_id=card.slack_user, connector=stored.item.connector
        )
        if identity is not None:
            return any(p.id == identity.vendor_user_id for p in recipients)
        email = card.target.removeprefix("email:")
        return any((p.email or "").lower() == email for p in recipients)

    async def _reminder_row(self, item_id: int, key: str) -> ReminderRow:
        store = self.runtime.store
        async with store.db.transaction() as s:
            row = (
                await s.exec(
                    select(ReminderRow).where(ReminderRow.item_id == item_id, ReminderRow.slack_user == key)
                )
            ).first()
            if row is None:
                row = ReminderRow(item_id=item_id, slack_user=key[:32], sent=0)
                s.add(row)
                await s.flush()
        return row

    async def _claim(self, row: ReminderRow, now: datetime) -> bool:
        async with self.runtime.store.db.transaction() as s:
            result = await s.exec(
                sa.update(ReminderRow)
                .where(col(ReminderRow.id) == row.id, col(ReminderRow.sent) == row.sent)
                .values(sent=row.sent + 1, last_sent_at=now)
            )
            return bool(result.rowcount)

    async def _claim_escalation(self, row: ReminderRow, now: datetime) -> bool:
        async with self.runtime.store.db.transaction() as s:
            result = await s.exec(
                sa.update(ReminderRow)
                .where(col(ReminderRow.id) == row.id, col(ReminderRow.escalated_at).is_(None))
                .values(escalated_at=now)
            )
            return bool(result.rowcount)

    async def _send(self, stored: StoredItem, card: CardRow, number: int, total: int) -> None:
        who = f"<@{card.slack_user}>, this" if card.slack_user else "This"
        text = (
            f":alarm_clock: {who} still waits for a decision: *{blocks.cut(blocks.escape(stored.item.title), 300)}* "
            f"(reminder {number} of {total})."
        )
        notifier = self.runtime.notifier
        try:
            await notifier.pacer.wait(card.channel)
            # In the card's thread, so the context is one tap away; broadcast so it surfaces in the DM.
            await notifier.client.chat_postMessage(
                channel=card.channel, thread_ts=card.ts, text=text, reply_broadcast=bool(card.slack_user)
            )
        except SlackApiError as exc:
            log.warning("reminder for %s not sent: %s", stored.item.external_id, exc.response.get("error"))

    async def _escalate(self, stored: StoredItem, card: CardRow, channel: str | None) -> None:
        if not channel or not card.slack_user:
            return  # a channel card was reminded in the channel already; nobody else to tell
        config = self.runtime.config.connector(stored.item.connector)
        count = config.reminders.max if config else 0
        title = blocks.cut(blocks.escape(stored.item.title), 300)
        text = f":rotating_light: <@{card.slack_user}> has not acted on *{title}* after {count} reminders."
        try:
            await self.runtime.notifier.pacer.wait(channel)
            await self.runtime.notifier.client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            log.warning("escalation for %s not sent: %s", stored.item.external_id, exc.response.get("error"))

    # ---- digest ----------------------------------------------------------------------------------

    async def digest(self, now: datetime) -> int:
        """At the start of each approver's working day, one DM listing what waits on them."""
        store = self.runtime.store
        default = self.runtime.config.reminders.digest
        async with store.db.session() as s:
            users = sorted(set((await s.exec(select(IdentityRow.slack_user_id))).all()))
            prefs = {p.slack_user_id: p for p in (await s.exec(select(UserPrefRow))).all()}
        sent = 0
        for user in users:
            pref = prefs.get(user)
            enabled = pref.digest if pref is not None and pref.digest is not None else default
            if not enabled:
                continue
            tz = await self.tz(user, now)
            day = digest_due(
                now=now,
                tz=tz,
                rules=self.runtime.config.reminders,
                last_sent_on=pref.last_digest_on if pref else None,
            )
            if day is None:
                continue
            async with store.db.transaction() as s:
                result = await s.exec(
                    sa.update(UserPrefRow)
                    .where(
                        col(UserPrefRow.slack_user_id) == user,
                        sa.or_(
                            col(UserPrefRow.last_digest_on).is_(None),
                            col(UserPrefRow.last_digest_on) != day.isoformat(),
                        ),
                    )
                    .values(last_digest_on=day.isoformat())
                )
            if not result.rowcount:
                continue
            states = await self.runtime.services.pending_for(slack_user=user)
            if not states:
                continue
            count = len(states)
            message = await asyncio.to_thread(
                blocks.list_message,
                states,
                title=f"Good morning: {count} approval{'s' if count != 1 else ''} waiting on you, oldest first",
                empty="",
            )
            try:
                await self.runtime.notifier.client.chat_postMessage(
                    channel=user, text=message.text, blocks=message.blocks
                )
                sent += 1
            except SlackApiError as exc:
                log.warning("digest for %s not sent: %s", user, exc.response.get("error"))
        return sent


async def set_digest(store: Store, user: str, enabled: bool) -> None:
    async with store.db.transaction() as s:
        row = await s.get(UserPrefRow, user)
        if row is None:
            s.add(UserPrefRow(slack_user_id=user, digest=enabled))
        else:
            row.digest = enabled


__all__ = ["Nudges", "now_utc", "set_digest"]
