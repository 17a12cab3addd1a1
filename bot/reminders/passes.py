"""One reminder pass: the due reminders (one query) become outbox jobs, each reminder's next
instant is written back; and the morning digest, queued for whoever's day is starting.

Why recorded before sending: `reminders.sent` is advanced with a compare-and-set in the
transaction that queues the job, so a restart or a second replica never sends the same reminder
twice, and the outbox delivers it through any 429.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import Config, ConnectorConfig, Reminders
from bot.outbox.jobs import DigestJob, EscalationJob, ReminderJob
from bot.reminders.rules import (
    digest_due,
    escalation_at,
    next_digest_at,
    next_reminder_at,
    next_working_moment,
    working,
)
from bot.slack.gateway import Deferred, SlackFailure, SlackGateway
from store import reminders as table
from store.outbox import Entry
from store.repo import Store

log = logging.getLogger(__name__)

TZ_TTL = timedelta(hours=24)
DIGEST_RETRY = timedelta(minutes=5)  # as often as the digest job of old looked


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
        # Per person: no digest attempt before this instant (one could not be recorded: no spin).
        self._digest_retry: dict[str, datetime] = {}

    async def tz(self, slack_user: str, known: str | None, fetched_at: datetime | None, now: datetime) -> str:
        """The person's time zone, from users.info at most once a day."""
        if known and fetched_at and now - fetched_at < TZ_TTL:
            return known
        return await self._slack_zone(slack_user, now) or known or "UTC"

    async def _slack_zone(self, slack_user: str, now: datetime) -> str | None:
        """users.info's time zone, remembered; None when Slack could not tell it now."""
        try:
            tz = (await self.gateway.user_profile(slack_user)).get("tz") or "UTC"
        except (SlackFailure, Deferred):
            return None
        await table.save_tz(self.store.db, slack_user=slack_user, tz=tz, now=now)
        return str(tz)

    async def remind(self, now: datetime) -> int:
        """Queue every reminder (and escalation) due at `now`; returns how many were queued.

        Decides over the due rows (one query), then records everything in one transaction
        (`table.record_pass`): the pass's cost follows the reminders due, not the items pending.
        Per due row only its own rules run; what is the same for many rows (a person's time zone,
        whether a zone is inside a connector's working hours now) is worked out once per pass."""
        due = await table.due(self.store.db, now=now)
        plan = _Plan(now, moved=[(i, None) for i in due.ended])
        for one in due.reminders:
            config = self.configs.get(one.connector)
            if config is None or not still_theirs(one):
                plan.moved.append((one.id, None))
            elif one.sent >= config.reminders.max:
                plan.escalate_or_wait(one, config)
            elif (at := plan.not_before(one, config.reminders)) > now:
                plan.moved.append((one.id, at))
            elif (later := plan.off_hours(await self._zone(one, plan), config)) is not None:
                plan.moved.append((one.id, later))
            else:
                plan.send(one, config.reminders)
        return await table.record_pass(
            self.store.db, now=now, sent=plan.sent, escalated=plan.escalated, moved=plan.moved
        )

    async def _zone(self, due: table.DueReminder, plan: _Plan) -> str:
        """The time zone a reminder goes by: its person's (asked of Slack at most once a pass,
        however many of their reminders are due); a channel card's: UTC."""
        if not due.slack_user:
            return "UTC"
        if due.slack_user not in plan.zones:
            plan.zones[due.slack_user] = await self.tz(
                due.slack_user, due.tz, due.tz_fetched_at, now=plan.now
            )
        return plan.zones[due.slack_user]

    async def run(self, now: datetime) -> int:
        """Everything the schedule wakes for: reminders and escalations, then digests due."""
        return await self.remind(now) + await self.digest(now)

    async def next_due(self, now: datetime) -> datetime | None:
        """The earliest instant a reminder or someone's digest is due (None: nothing ever is)."""
        instants = [at for at in (await table.earliest(self.store.db), await self.next_digest(now)) if at]
        return min(instants, default=None)

    async def _readers(self) -> list[table.Reader]:
        return await table.digest_readers(self.store.db, default=self.config.reminders.digest)

    async def next_digest(self, now: datetime) -> datetime | None:
        """When the next digest is due for anyone, from the zones known (no Slack call): the
        schedule wakes then, so a digest comes at the start of its reader's day, not up to a tick
        later. Someone whose zone is not known yet is looked at now (the look learns it); a digest
        that could not be recorded, or a zone Slack could not tell, is looked at again
        `DIGEST_RETRY` later (never a spin)."""
        instants = [
            max(
                next_digest_at(now=now, tz=r.tz, rules=self.config.reminders, last_sent_on=r.last_digest_on)
                if r.tz
                else now,  # their zone not known yet: a look now learns it
                self._digest_retry.get(r.slack_user, now),
            )
            for r in await self._readers()
        ]
        return min(instants, default=None)

    async def digest(self, now: datetime) -> int:
        """At the start of each approver's working day, one DM listing what waits on them."""
        queued = 0
        for reader in await self._readers():
            user = reader.slack_user
            if self._digest_retry.get(user, now) > now:
                continue
            if reader.tz:
                tz = await self.tz(user, reader.tz, reader.tz_fetched_at, now)
            elif (learned := await self._slack_zone(user, now)) is not None:
                tz = learned
            else:  # Slack could not tell their zone: UTC for now, and look again later, not at once
                tz = "UTC"
                self._digest_retry[user] = now + DIGEST_RETRY
            day = digest_due(
                now=now,
                tz=tz,
                rules=self.config.reminders,
                last_sent_on=reader.last_digest_on,
            )
            if day is None:
                continue
            job = DigestJob(slack_user=user, day=day.isoformat())
            if await table.claim_digest_day(
                self.store.db, slack_user=user, day=day.isoformat(), entries=[job.entry()], now=now
            ):
                queued += 1
                self._digest_retry.pop(user, None)
            else:  # sent already (another replica: then due tomorrow), or not recordable yet
                self._digest_retry[user] = now + DIGEST_RETRY
        return queued


@dataclass
class _Plan:
    """What one reminder pass decided, for `table.record_pass`, and what it worked out once."""

    now: datetime
    moved: list[tuple[int, datetime | None]]
    sent: list[table.Sent] = field(default_factory=list)
    escalated: list[table.Escalated] = field(default_factory=list)
    zones: dict[str, str] = field(default_factory=dict)
    hours: dict[tuple[str, str], datetime | None] = field(default_factory=dict)

    def not_before(self, due: table.DueReminder, rules: Reminders) -> datetime:
        """The earliest the next reminder may go: `first_after`/`every` apart, and `every` after
        the vendor's own reminder."""
        at = next_reminder_at(
            due_since=due.item.due_since or due.first_seen_at,
            sent=due.sent,
            last_sent_at=due.last_sent_at,
            rules=rules,
        )
        assert at is not None
        reminded = due.item.vendor_reminded_at
        if at <= self.now and reminded is not None and self.now - reminded < rules.every:
            return reminded + rules.every  # the vendor reminded them recently
        return at

    def off_hours(self, tz: str, config: ConnectorConfig) -> datetime | None:
        """None inside working hours in zone `tz`; else the zone's next working moment."""
        key = (tz, config.name)
        if key not in self.hours:
            rules = config.reminders
            self.hours[key] = (
                None if working(self.now, tz, rules) else next_working_moment(self.now, tz, rules)
            )
        return self.hours[key]

    def send(self, due: table.DueReminder, rules: Reminders) -> None:
        job = ReminderJob(
            item=due.item_id,
            channel=due.channel,
            ts=due.ts,
            slack_user=due.slack_user,
            title=due.item.title,
            number=due.sent + 1,
            total=rules.max,
        )
        self.sent.append(table.Sent(due.id, due.sent, self.now + rules.every, [job.entry()]))

    def escalate_or_wait(self, due: table.DueReminder, config: ConnectorConfig) -> None:
        """After the last reminder: the escalation once it is due, then nothing more."""
        at = escalation_at(sent=due.sent, last_sent_at=due.last_sent_at, rules=config.reminders)
        if due.escalated_at is not None or at is None:
            self.moved.append((due.id, None))
        elif at > self.now:
            self.moved.append((due.id, at))
        else:
            self.escalated.append(table.Escalated(due.id, _escalation(due, config)))


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
