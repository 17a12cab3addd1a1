"""Reminders and the daily digest: each approver's own time zone and working days, DST, the
escalation, never after a decision, never twice (a rerun, a restart)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.config import Reminders
from bot.reminders.rules import digest_due, next_digest_at, reminder_due, working
from bot.sandbox.slack_api import SlackSandbox
from connectors.registry import SandboxSetup
from store import reminders as reminders_table
from tests.harness import Bot, connector_config, start_bot

RULES = Reminders()


def _wednesday_ahead() -> datetime:
    """A Wednesday, 09:00 UTC, in late November, after today.

    The bot stores items as first seen "now", so the times these tests remind at must lie ahead
    of today (a fixed date turned them red once it passed). Whole 52-week steps keep the weekday
    and the season: winter time in Berlin and New York, which the local hours below rely on.
    """
    when = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    while when < datetime.now(UTC) + timedelta(days=1):
        when += timedelta(weeks=52)
    return when


WED_0900_UTC = _wednesday_ahead()  # 10:00 Berlin, 04:00 New York, 18:00 Tokyo


def test_working_hours_are_each_persons_own() -> None:
    assert working(WED_0900_UTC, "Europe/Berlin", RULES)
    assert not working(WED_0900_UTC, "America/New_York", RULES)
    assert not working(WED_0900_UTC, "Asia/Tokyo", RULES), "18:00 is the end of Carol's day"
    assert working(WED_0900_UTC + timedelta(hours=6), "America/New_York", RULES)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert not working(saturday, "Europe/Berlin", RULES)
    assert working(saturday, "Europe/Berlin", replace(RULES, working_days=frozenset(range(7))))


def test_dst_change_moves_the_utc_hour_of_a_working_morning() -> None:
    # Berlin leaves summer time on 2026-10-25: 08:30 UTC is 10:30 before, 09:30 after; 07:30 UTC
    # is 09:30 on the Friday before but only 08:30 on the Monday after.
    friday, monday = datetime(2026, 10, 23, 7, 30, tzinfo=UTC), datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
    assert working(friday, "Europe/Berlin", RULES)
    assert not working(monday, "Europe/Berlin", RULES)
    # New York leaves summer time on 2026-11-01: its digest hour moves from 13:xx to 14:xx UTC.
    assert (
        digest_due(
            now=datetime(2026, 10, 30, 13, 10, tzinfo=UTC),
            tz="America/New_York",
            rules=RULES,
            last_sent_on=None,
        )
        is not None
    )
    assert (
        digest_due(
            now=datetime(2026, 11, 2, 13, 10, tzinfo=UTC),
            tz="America/New_York",
            rules=RULES,
            last_sent_on=None,
        )
        is None
    )
    assert (
        digest_due(
            now=datetime(2026, 11, 2, 14, 10, tzinfo=UTC),
            tz="America/New_York",
            rules=RULES,
            last_sent_on=None,
        )
        is not None
    )


def test_first_after_then_every_then_max() -> None:
    due = WED_0900_UTC - timedelta(hours=5)
    assert reminder_due(now=WED_0900_UTC, due_since=due, sent=0, last_sent_at=None, tz="UTC", rules=RULES)
    assert not reminder_due(
        now=WED_0900_UTC,
        due_since=WED_0900_UTC - timedelta(hours=3),
        sent=0,
        last_sent_at=None,
        tz="UTC",
        rules=RULES,
    )
    assert not reminder_due(
        now=WED_0900_UTC,
        due_since=due,
        sent=1,
        last_sent_at=WED_0900_UTC - timedelta(hours=1),
        tz="UTC",
        rules=RULES,
    )
    assert not reminder_due(now=WED_0900_UTC, due_since=due, sent=3, last_sent_at=due, tz="UTC", rules=RULES)
    assert not reminder_due(
        now=WED_0900_UTC,
        due_since=due,
        sent=0,
        last_sent_at=None,
        tz="UTC",
        rules=RULES,
        vendor_reminded_at=WED_0900_UTC - timedelta(hours=2),
    ), "the vendor just reminded them"


def test_the_next_digest_is_at_the_start_of_the_readers_own_day() -> None:
    berlin_0900 = WED_0900_UTC - timedelta(hours=1)  # winter: Berlin is UTC+1
    early = WED_0900_UTC - timedelta(hours=3)
    assert next_digest_at(now=early, tz="Europe/Berlin", rules=RULES, last_sent_on=None) == berlin_0900
    late = WED_0900_UTC - timedelta(minutes=50)
    assert next_digest_at(now=late, tz="Europe/Berlin", rules=RULES, last_sent_on=None) == late, "due now"
    today = berlin_0900.date().isoformat()
    thursday = berlin_0900 + timedelta(days=1)
    assert next_digest_at(now=late, tz="Europe/Berlin", rules=RULES, last_sent_on=today) == thursday
    friday_evening = WED_0900_UTC + timedelta(days=2, hours=10)
    monday = berlin_0900 + timedelta(days=5)
    assert next_digest_at(now=friday_evening, tz="Europe/Berlin", rules=RULES, last_sent_on=None) == monday


async def _bot(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup, rules: Reminders = RULES
) -> Bot:
    config = replace(
        connector_config("hiring", "greenhouse", dict(greenhouse.connector), channel="C0APPROVALS"),
        reminders=rules,
    )
    bot = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[config])
    for user in ("alice", "bob"):
        await bot.command(user, "connect hiring")
        await bot.wait_private(user, "Linked")
    await bot.poll()
    return bot


def _replies(bot: Bot, user: str) -> list[str]:
    card = bot.card(user, "Offer to Jordan Rivera")
    return [m.render() for m in bot.slack.messages_in(card.channel) if m.thread_ts == card.ts]


async def test_reminders_go_in_the_approvers_own_hours_once(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> None:
    bot = await _bot(db_url, secret_key, slack, greenhouse)
    try:
        reminders = bot.runtime.reminders
        await reminders.remind(WED_0900_UTC)
        await bot.settle()
        assert len(_replies(bot, "U0ALICE")) == 1
        assert "still waits" in _replies(bot, "U0ALICE")[0]
        assert _replies(bot, "U0BOB") == [], "04:00 in New York"
        await reminders.remind(WED_0900_UTC + timedelta(minutes=1))
        await bot.settle()
        assert len(_replies(bot, "U0ALICE")) == 1, "a second run sends nothing new"
        await reminders.remind(WED_0900_UTC + timedelta(hours=6))
        await bot.settle()
        assert len(_replies(bot, "U0BOB")) == 1, "10:00 in New York"
    finally:
        await bot.stop()
    restarted = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config("hiring", "greenhouse", dict(greenhouse.connector), channel="C0APPROVALS")
        ],
    )
    try:
        await restarted.runtime.reminders.remind(WED_0900_UTC + timedelta(hours=6, minutes=5))
        await restarted.settle()
        assert len(_replies(restarted, "U0ALICE")) == 1, "no duplicate after a restart"
        assert len(_replies(restarted, "U0BOB")) == 1
    finally:
        await restarted.stop()


async def test_after_max_one_escalation_then_silence(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> None:
    bot = await _bot(db_url, secret_key, slack, greenhouse, replace(RULES, max=1))
    try:
        reminders = bot.runtime.reminders
        await reminders.remind(WED_0900_UTC)
        await bot.settle()
        for hours in (1, 26, 50):
            await reminders.remind(WED_0900_UTC + timedelta(hours=hours))
            await bot.settle()
        assert len(_replies(bot, "U0ALICE")) == 1
        escalations = [m.render() for m in slack.messages_in("C0APPROVALS") if "has not acted" in m.render()]
        assert len([e for e in escalations if "Alice" in e or "U0ALICE" in e]) == 1
    finally:
        await bot.stop()


async def test_digest_once_at_the_start_of_the_day(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> None:
    bot = await _bot(db_url, secret_key, slack, greenhouse)
    try:
        await bot.command("alice", "digest on")
        await bot.wait_private("alice", "Digest on")
        reminders = bot.runtime.reminders
        morning = WED_0900_UTC - timedelta(minutes=50)  # 09:10 in Berlin
        assert await reminders.digest(morning - timedelta(hours=2)) == 0, "not before her day starts"
        assert await reminders.digest(morning) == 1
        assert await reminders.digest(morning + timedelta(minutes=20)) == 0, "once a day"
        await bot.settle()
        dm = [m.render() for m in bot.cards("U0ALICE") if "Good morning" in m.render()]
        assert len(dm) == 1
        assert "Jordan Rivera" in dm[0]
        assert "[Reassign]" in dm[0], "with buttons"
        await bot.command("alice", "digest off")
        await bot.wait_private("alice", "Digest off")
        assert await reminders.digest(morning + timedelta(days=1)) == 0
    finally:
        await bot.stop()


async def test_a_pass_asks_slack_for_each_persons_time_zone_once(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> None:
    sandbox = greenhouse.extra["sandbox"]
    waiting = next(f for f in sandbox.flows.values() if not f.requested)  # the designer offer: Alice's
    sandbox.request(waiting.id, next(iter(sandbox.can_request)))
    bot = await _bot(db_url, secret_key, slack, greenhouse)
    try:
        asked = len(slack.calls_to("users.info"))
        await bot.runtime.reminders.remind(WED_0900_UTC)
        await bot.settle()
        alice = [
            m for m in slack.messages_in("D0ALICE") if m.thread_ts is not None and "still waits" in m.render()
        ]
        assert len(alice) == 2, "both of Alice's cards are reminded"
        asked_of = [c.args.get("user") for c in slack.calls_to("users.info")[asked:]]
        assert asked_of.count("U0ALICE") == 1, "her time zone asked once for the pass"
    finally:
        await bot.stop()


async def test_no_reminder_while_someone_acts_nor_once_the_flow_is_decided(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> None:
    bot = await _bot(db_url, secret_key, slack, greenhouse)
    try:
        db = bot.runtime.store.db
        stored = next(s for s in await bot.runtime.store.pending_items() if "Jordan" in s.item.title)
        assert await bot.runtime.store.claim(item_id=stored.id, slack_user="U0BOB", action="approve")
        await bot.runtime.reminders.remind(WED_0900_UTC)
        await bot.settle()
        assert _replies(bot, "U0ALICE") == [], "Bob is deciding it right now"

        await bot.runtime.store.finish_claim(item_id=stored.id, error="Greenhouse did not answer")
        await bot.runtime.reminders.remind(WED_0900_UTC + timedelta(minutes=1))
        await bot.settle()
        assert len(_replies(bot, "U0ALICE")) == 1, "the click failed: the item still waits on her"

        greenhouse.extra["sandbox"].decide_flow(int(stored.item.external_id), "approved")
        await bot.poll()
        later = WED_0900_UTC + timedelta(days=2)
        assert (await reminders_table.due(db, now=later)).ended, "its reminders are due, never to go"
        await bot.runtime.reminders.remind(later)
        await bot.settle()
        assert len(_replies(bot, "U0ALICE")) == 1
        assert stored.id not in {d.item_id for d in (await reminders_table.due(db, now=later)).reminders}
        assert (await reminders_table.due(db, now=later)).ended == [], "stopped by the pass that read them"
    finally:
        await bot.stop()
