"""A DM card whose post reached Slack but whose answer was lost (a 5xx after the post took effect,
as after a crash between the post and its record) is found in the DM's history and adopted, not
posted twice; one whose post never happened is posted once. The DM's history is read under its
D… id (conversations.open, im:write) with im:history."""

from __future__ import annotations

import pytest

from tests.harness import Bot

OFFER = "Offer to Jordan Rivera"


@pytest.fixture
def bot(greenhouse_bot: Bot) -> Bot:
    return greenhouse_bot


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
