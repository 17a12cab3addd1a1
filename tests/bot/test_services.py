"""What a person is told when the vendor does not answer a click: only what is known.

Real HTTP: the FlexDeploy and Slack sandboxes on 127.0.0.1, signed clicks into the real Bolt app, a
real database. The connector's request timeout is 0.75 s here, so a click's deadline is 6.5 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from store import audit
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import stopping

CHANNEL = "C0DEPLOYS"


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    fd.slow_seconds = 1.5  # past the connector's 0.75 s timeout
    running = await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, timeout=0.75
    )
    async with stopping(running):
        yield running


async def test_a_click_that_never_reached_the_vendor_says_not_sent(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = bot.card(CHANNEL, "Retail Web")
    await fd.stop()  # connection refused from now on
    await bot.click("alice", gate, "Approve")
    text = await bot.wait_private("alice", "not sent")
    assert "nothing was changed" in text.lower()
    assert "could not confirm" not in text.lower()
    await bot.settle()
    assert "[Approve]" in bot.slack.messages[(gate.channel, gate.ts)].render(), "the buttons come back"
    rows = await audit.decisions(bot.runtime.db)
    assert [r.outcome for r in rows if r.action == "approve"] == ["attempt", "not_sent"]


@pytest.mark.slow
async def test_a_sent_click_left_unanswered_is_checked_and_the_clicker_told(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = bot.card(CHANNEL, "Retail Web")
    fd.fail_next("timeout", method="PUT")  # applied, answered too late
    await bot.click("alice", gate, "Approve")
    await bot.slack.wait_for(lambda: fd.decisions, 5, what="the vendor applying the approve")
    fd.fail_next("500", count=4, method="GET")  # and the re-read (with its retries) fails too
    text = await bot.wait_private("alice", "I will check", timeout=15)
    assert "not sent" not in text
    alice = bot.slack.person("alice").slack_id
    dm = bot.slack.dm_channel(alice)

    async def told() -> bool:
        await bot.poll()  # the leader's sync settles claims past their deadline
        return any("went through" in m.render() for m in bot.slack.messages_in(dm))

    for _ in range(60):
        if await told():
            break
        await asyncio.sleep(0.5)
    assert any("went through" in m.render() for m in bot.slack.messages_in(dm)), "alice was told in a DM"
    card = bot.slack.messages[(gate.channel, gate.ts)].render()
    assert "Approved" in card
    assert len(fd.decisions) == 1
    assert len([r for r in fd.served if r.startswith("PUT")]) == 1, "never sent twice"
    outcomes = [(r.outcome, r.reason) for r in await audit.decisions(bot.runtime.db) if r.action == "approve"]
    assert outcomes == [("attempt", None), ("unknown", None), ("ok", "reconciled")], outcomes
