"""One reminder pass: the due reminders (one query) become outbox jobs, each reminder's next
instant is written back; and the morning digest, queued for whoever's day is starting.

Why recorded before sending: `reminders.sent` is advanced with a compare-and-set in the
transaction that queues the job, so a restart or a second replica never sends the same reminder
twice, and the outbox delivers it through any 429.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.config import Config, ConnectorConfig
from bot.outbox.jobs import DigestJob, EscalationJob, ReminderJob
from bot.reminders.rules import digest_due, escalation_at, next_reminder_at, next_working_moment, working
from bot.slack.gateway import Deferred, SlackFailure, SlackGateway
from store import reminders as table
from store.outbox import Entry
from store.repo import Store

log = logging.getLogger(__name__)

TZ_TTL = timedelta(hours=24)


def still_theirs(due: table.DueReminder) -> bool:
    """A person's copy is reminded only while the item still waits on them."""
    recipients = due.item.recipients
    if not due.slack_user or not recipients:
        return True
    if due.vendor_user_id is not None:
        return any(p.id == due.vendor_user_id for p in recipients)
    email = due.target.removeprefix("email:")
    return any((p.email or "").lower() == email for p in recipients)


class ReminderPasses:
    def __init__(self, *, store: Store, gateway: SlackGateway, config: Config) -> None:
        self.store = store
        self.gateway = gateway
        self.config = config
        self.configs: Mapping[str, ConnectorConfig] = {c.name: c for c in config.connectors}

    async def tz(self, slack_user: str, known: str | None, fetched_at: datetime | None, now: datetime) -> str:
        """The person's time zone, from users.info at most once a day."""
        if known and fetched_at and now - fetched_at < TZ_TTL:
            return known
        try:
            tz = (await self.gateway.user_profile(slack_user)).get("tz") or "UTC"
        except (SlackFailure, Deferred):
            return known or "UTC"
        await table.save_tz(self.store.db, slack_user=slack_user, tz=tz, now=now)
        return str(tz)

    async def remind(self, now: datetime) -> int:
        """Queue every reminder (and escalation) due at `now`; returns how many were queued.

        Decides over the due rows (one query), then records everything in one transaction
        (`table.record_pass`): the pass's cost follows the reminders due, not the items pending."""
        moved: list[tuple[int, datetime | None]] = []
        sent: list[table.Sent] = []
        escalated: list[table.Escalated] = []
        await table.forget_closed(self.store.db, now=now)
        for due in await table.due(self.store.db, now=now):
            config = self.configs.get(due.item.connector)
            if config is None or not still_theirs(due):
                moved.append((due.id, None))
                continue
            rules = config.reminders
            if due.sent >= rules.max:
                at = escalation_at(sent=due.sent, last_sent_at=due.last_sent_at, rules=rules)
                if due.escalated_at is not None or at is None:
                    moved.append((due.id, None))
                elif at > now:
                    moved.append((due.id, at))
                else:
                    escalated.append(table.Escalated(due.id, self._escalation(due, config)))
                continue
            at = next_reminder_at(
                due_since=due.item.due_since or due.first_seen_at,
                sent=due.sent,
                last_sent_at=due.last_sent_at,
                rules=rules,
            )
            assert at is not None
            reminded = due.item.vendor_reminded_at
            if at > now:
                moved.append((due.id, at))
                continue
            if reminded is not None and now - reminded < rules.every:
                moved.append((due.id, reminded + rules.every))  # the vendor reminded them recently
                continue
            tz = await self.tz(due.slack_user, due.tz, due.tz_fetched_at, now) if due.slack_user else "UTC"
            if not working(now, tz, rules):
                moved.append((due.id, next_working_moment(now, tz, rules)))
                continue
            job = ReminderJob(
                item=due.item_id,
                channel=due.channel,
                ts=due.ts,
                slack_user=due.slack_user,
                title=due.item.title,
                number=due.sent + 1,
                total=rules.max,
            )
            sent.append(table.Sent(due.id, due.sent, now + rules.every, [job.entry()]))
        return await table.record_pass(self.store.db, now=now, sent=sent, escalated=escalated, moved=moved)

    @staticmethod
    def _escalation(due: table.DueReminder, config: ConnectorConfig) -> list[Entry]:
        """The channel hears who has not acted; a channel card was reminded there already."""
        if not (config.channel and due.slack_user):
            return []
        job = EscalationJob(
            item=due.item_id,
            channel=config.channel,
            slack_user=due.slack_user,
            title=due.item.title,
            reminders=config.reminders.max,
        )
        return [job.entry()]

    async def digest(self, now: datetime) -> int:
        """At the start of each approver's working day, one DM listing what waits on them."""
        default = self.config.reminders.digest
        users = sorted({i.slack_user_id for i in await self.store.identities()})
        prefs = await table.prefs(self.store.db)
        queued = 0
        for user in users:
            pref = prefs.get(user)
            enabled = pref.digest if pref is not None and pref.digest is not None else default
            if not enabled:
                continue
            tz = await self.tz(user, pref.tz if pref else None, pref.tz_fetched_at if pref else None, now)
            day = digest_due(
                now=now,
                tz=tz,
                rules=self.config.reminders,
                last_sent_on=pref.last_digest_on if pref else None,
            )
            if day is None:
                continue
            job = DigestJob(slack_user=user, day=day.isoformat())
            queued += await table.claim_digest_day(
                self.store.db, slack_user=user, day=day.isoformat(), entries=[job.entry()], now=now
            )
        return queued
