"""Reminders come when they are due, woken by the real schedule (no tick, no test clock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import Reminders
from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.greenhouse.sandbox import demo
from connectors.people import ALICE
from tests.harness import connector_config, start_bot, start_flexdeploy_bot

# Any hour, any day: the test runs whenever it runs.
SOON = Reminders(
    first_after=timedelta(seconds=3),
    every=timedelta(seconds=3),
    max=2,
    working_hours=(time(0, 0), time(23, 59, 59, 999999)),
    working_days=frozenset(range(7)),
)


async def test_a_reminder_set_at_a_few_seconds_arrives_about_when_due(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    bot = await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, reminders=SOON
    )
    try:
        await bot.poll()
        gate = bot.card("C0DEPLOYS", "Retail Web")
        pending = await bot.runtime.store.pending_items()
        cards = await bot.runtime.store.cards_of(item_ids=[s.id for s in pending])
        stored = next(s for s in pending if any(c.ts == gate.ts for c in cards[s.id]))
        first_due = stored.row.first_seen_at + SOON.first_after

        def reminders() -> list[str]:
            return [m.render() for m in slack.messages_in("C0DEPLOYS") if m.thread_ts == gate.ts]

        await slack.wait_for(lambda: reminders(), timeout=10, what="the first reminder")
        calls = [c for c in slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == gate.ts]
        late = calls[0].at - first_due.timestamp()
        assert 0 <= late < 1.5, f"the reminder came {late:.2f}s after it was due"
        assert "reminder 1 of 2" in reminders()[0]

        # The second comes `every` later; then, after the last, nothing more in the thread.
        await slack.wait_for(lambda: len(reminders()) >= 2 or None, timeout=10, what="the second reminder")
        assert "reminder 2 of 2" in reminders()[1]
        calls = [c for c in slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == gate.ts]
        assert calls[1].at - calls[0].at < SOON.every.total_seconds() + 1.5
    finally:
        await bot.stop()
    assert len(reminders()) == 2


async def test_the_digest_arrives_when_the_readers_day_starts(
    db_url: str, secret_key: str, slack: SlackSandbox
) -> None:
    greenhouse = await demo()
    starts = datetime.now(UTC) + timedelta(seconds=4)
    local = starts.astimezone(ZoneInfo(ALICE.tz))  # her own zone, as Slack tells it
    day = Reminders(
        working_hours=(local.time(), time(23, 59, 59, 999999)),
        working_days=frozenset(range(7)),
        digest=True,
    )
    hiring = connector_config("hiring", "greenhouse", dict(greenhouse.connector), channel="C0APPROVALS")
    bot = await start_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, connectors=[hiring], reminders=day
    )
    try:
        await bot.command("alice", "connect hiring")
        await bot.wait_private("alice", "Linked")
        await bot.poll()

        def digests() -> list[float]:
            return [c.at for c in slack.calls_to("chat.postMessage") if "Good morning" in str(c.args)]

        await slack.wait_for(lambda: digests() or None, timeout=12, what="the morning digest")
        late = digests()[0] - starts.timestamp()
        assert 0 <= late < 1.5, f"the digest came {late:.2f}s after her day started"
        await asyncio.sleep(1)  # the schedule now sleeps until her next day: nothing more today
        await bot.settle()
        assert len(digests()) == 1
    finally:
        await bot.stop()
        await greenhouse.stop()
