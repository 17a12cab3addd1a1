"""Channels following flows: one message per flow updated in place, a thread reply per decision,
and a clear answer when the bot cannot post where it was asked to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.flow_blocks import phase
from bot.sandbox.slack_api import SlackSandbox, StoredMessage
from connectors.base import ApprovalItem, ApproverGroup, GroupState, Person, Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import stopping

NOTIFY = "C0APPROVALS"


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    running = await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, notify_channel=NOTIFY
    )
    async with stopping(running):
        yield running


def _flow(bot: Bot, channel: str, contains: str) -> StoredMessage:
    return bot.card(channel, contains)


async def test_one_message_per_flow_updated_in_place_with_a_reply_per_decision(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    flow = _flow(bot, NOTIFY, "CAB approval")
    assert "requested" in flow.render()
    card = bot.card("C0DEPLOYS", "CAB approval")
    await bot.click("alice", card, "Reject")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the reject modal")
    await bot.slack.submit_view(bot.url, user="alice", values={"Reason": "Freeze until Monday"})
    text = await bot.wait_card(flow, "rejected")
    assert "@Alice" in text or "alice" in text.lower()
    await bot.settle()
    replies = [m for m in bot.slack.messages_in(NOTIFY) if m.thread_ts == flow.ts]
    assert len(replies) == 1
    assert "rejected" in replies[0].render()
    assert "Freeze until Monday" in replies[0].render()
    assert len([m for m in bot.cards(NOTIFY) if "CAB approval" in m.render()]) == 1, (
        "updated in place, not reposted"
    )
    await bot.poll()
    assert len([m for m in bot.slack.messages_in(NOTIFY) if m.thread_ts == flow.ts]) == 1, (
        "no duplicate reply"
    )


async def test_a_flow_decided_elsewhere_updates_the_channel_message(bot: Bot, fd: FlexDeploySandbox) -> None:
    await bot.poll()
    flow = _flow(bot, NOTIFY, "Payments API")
    task = next(t for t, task in fd.tasks.items() if task.attributes.get("projectName") == "Payments API")
    fd.decide(task, Status.APPROVED, "ok from the UI")
    await bot.poll()
    text = await bot.wait_card(flow, "approved")
    assert "FlexDeploy" in text


async def test_subscribe_posts_for_the_channel_and_refuses_a_channel_without_the_bot(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")  # only someone with an identity for the connector may subscribe
    await bot.command("alice", "subscribe deploys <#C0NOTMEMBER|secret>")
    text = await bot.wait_private("alice", "cannot post")
    assert "/invite @approvals-bot" in text
    await bot.command("alice", "subscribe deploys <#C0GENERAL|general>")
    await bot.wait_private("alice", "now follows")
    assert any("subscribed by" in m.render() for m in bot.slack.messages_in("C0GENERAL"))
    await bot.poll()
    assert _flow(bot, "C0GENERAL", "CAB approval")
    await bot.command("alice", "unsubscribe deploys <#C0GENERAL>")
    await bot.wait_private("alice", "no longer follows")
    await bot.command("alice", "subscribe deploys #general")
    await bot.wait_private("alice", "autocomplete")


def test_phases_of_a_flow() -> None:
    base = ApprovalItem(
        connector="c", external_id="1", kind="k", title="t", groups=(ApproverGroup("g1", GroupState.DUE, 2),)
    )
    assert phase(base)[1] == "requested"
    partly = ApprovalItem(
        connector="c",
        external_id="1",
        kind="k",
        title="t",
        groups=(ApproverGroup("g1", GroupState.DUE, 2, (), (Person("a"),)),),
    )
    assert phase(partly)[1] == "partly approved"
    for status in (Status.APPROVED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED):
        assert phase(base.with_status(status))[1] == status.value
