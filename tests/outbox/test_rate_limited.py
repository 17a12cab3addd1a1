"""Slack answering 429 to any kind of queued work delays it and loses nothing: card posts and
updates, flow notices and their thread replies, reminders, digests, App Home republishes."""

from __future__ import annotations

from datetime import time, timedelta

from bot.config import Reminders
from bot.sandbox.slack_api import SlackSandbox
from connectors.base import Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from store.repo import now_utc
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.reminders.test_reminders import WED_0900_UTC

NOTIFY = "C0APPROVALS"
CARDS = "C0DEPLOYS"


def _refused(slack: SlackSandbox, method: str) -> int:
    return len([c for c in slack.calls_to(method) if c.status == 429])


def _titles(bot: Bot, channel: str) -> list[str]:
    return [m.render().splitlines()[0] for m in bot.cards(channel)]


async def test_a_429_to_each_kind_of_job_delays_it_and_loses_nothing(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    bot = await start_flexdeploy_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        fd=fd,
        notify_channel=NOTIFY,
        reminders=Reminders(
            first_after=timedelta(hours=1),
            working_hours=(time(0, 0), time(23, 59, 59, 999999)),
            working_days=frozenset(range(7)),
        ),
    )
    try:
        await link_flexdeploy(bot, fd, "alice")

        # New cards and their flow notices: chat.postMessage refused twice.
        slack.rate_limit("chat.postMessage", times=2, retry_after=1)
        await bot.poll()
        await bot.settle(timeout=15)
        assert _refused(slack, "chat.postMessage") == 2
        assert len(_titles(bot, CARDS)) == 3 == len(set(_titles(bot, CARDS))), "every card, once"
        assert len(_titles(bot, NOTIFY)) == 3 == len(set(_titles(bot, NOTIFY))), "every flow notice, once"

        # Decided elsewhere: the card and the flow notice are updated, chat.update refused twice.
        slack.rate_limit("chat.update", times=2, retry_after=1)
        payments = next(
            t for t, task in fd.tasks.items() if task.attributes.get("projectName") == "Payments API"
        )
        fd.decide(payments, Status.APPROVED, "ok from the UI")
        await bot.poll()
        await bot.settle(timeout=15)
        assert _refused(slack, "chat.update") == 2
        assert "approved" in bot.card(CARDS, "Payments API").render().lower()
        assert "approved" in bot.card(NOTIFY, "Payments API").render().lower()

        # Alice approves the gate: the thread reply and her App Home are refused once each.
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)
        slack.rate_limit("views.publish", times=1, retry_after=1)
        gate = bot.card(CARDS, "CAB approval")
        await bot.click("alice", gate, "Approve")
        await bot.wait_card(gate, "Approved")
        await bot.settle(timeout=15)
        flow = bot.card(NOTIFY, "CAB approval")
        replies = [m.render() for m in slack.messages_in(NOTIFY) if m.thread_ts == flow.ts]
        assert _refused(slack, "chat.postMessage") == 3
        assert len(replies) == 1 and "approved" in replies[0]
        assert _refused(slack, "views.publish") == 1
        assert slack.home.get("U0ALICE") is not None, "her Home was published after Slack's wait"

        # A reminder, refused once.
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)
        assert await bot.runtime.reminders.remind(now_utc() + timedelta(hours=2)) == 1
        await bot.settle(timeout=15)
        inventory = bot.card(CARDS, "Inventory Service")
        reminders = [m.render() for m in slack.messages_in(CARDS) if m.thread_ts == inventory.ts]
        assert _refused(slack, "chat.postMessage") == 4
        assert len(reminders) == 1 and "still waits" in reminders[0]

        # Alice's morning digest, refused once.
        await bot.command("alice", "digest on")
        await bot.wait_private("alice", "Digest on")
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)
        assert (
            await bot.runtime.reminders.digest(WED_0900_UTC - timedelta(minutes=50)) == 1
        )  # 09:10 in Berlin
        await bot.settle(timeout=15)
        digests = [m.render() for m in bot.cards("U0ALICE") if "Good morning" in m.render()]
        assert _refused(slack, "chat.postMessage") == 5
        assert len(digests) == 1 and "Inventory Service" in digests[0]
    finally:
        await bot.stop()
