"""A DM card whose post reached Slack but whose answer was lost (a 5xx after the post took effect,
as after a crash between the post and its record) is found in the DM's history and adopted, not
posted twice; one whose post never happened is posted once. The DM's history is read under its
D… id (conversations.open, im:write) with im:history."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.greenhouse.sandbox import demo
from connectors.registry import SandboxSetup
from tests.harness import Bot, connector_config, start_bot

OFFER = "Offer to Jordan Rivera"


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox) -> AsyncIterator[Bot]:
    greenhouse: SandboxSetup = await demo()
    running = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config("hiring", "greenhouse", dict(greenhouse.connector), channel="C0APPROVALS")
        ],
    )
    try:
        yield running
    finally:
        await running.stop()
        await greenhouse.stop()


async def _carded(bot: Bot) -> None:
    await bot.poll()
    await bot.slack.wait_for(lambda: bot.cards("U0BOB"), timeout=10, what="Bob's DM card")
    await bot.settle(timeout=10)


async def test_a_dm_card_posted_before_its_answer_was_lost_is_adopted(bot: Bot) -> None:
    slack = bot.slack
    slack.fail_http("chat.postMessage", "503", applied=True, to="U0BOB")
    await _carded(bot)
    card = bot.card("U0BOB", OFFER)  # exactly one: not posted again
    dm = slack.dm_channel("U0BOB")
    assert any(c.args.get("users") == "U0BOB" for c in slack.calls_to("conversations.open"))
    assert any(c.args.get("channel") == dm for c in slack.calls_to("conversations.history"))
    assert card.edits >= 1, "adopted: updated in place"
    posts = [c for c in slack.calls_to("chat.postMessage") if c.args.get("channel") in ("U0BOB", dm)]
    assert len(posts) == 1, "the card was never posted a second time"


async def test_a_dm_card_whose_post_never_happened_is_posted_once(bot: Bot) -> None:
    slack = bot.slack
    slack.fail_http("chat.postMessage", "503", to="U0BOB")
    await _carded(bot)
    bot.card("U0BOB", OFFER)
    dm = slack.dm_channel("U0BOB")
    assert any(c.args.get("channel") == dm for c in slack.calls_to("conversations.history")), (
        "the retry looked in the DM's history first"
    )
    posts = [
        c
        for c in slack.calls_to("chat.postMessage")
        if c.args.get("channel") in ("U0BOB", dm) and c.error is None
    ]
    assert len(posts) == 1
