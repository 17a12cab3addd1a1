"""End to end with an email-linked vendor: cards in the DMs of whoever's turn it is, Reassign
through a modal with a person picker, and the turn moving on."""

from __future__ import annotations

import pytest

from connectors.registry import SandboxSetup
from tests.harness import Bot


@pytest.fixture
def bot(greenhouse_bot: Bot) -> Bot:
    return greenhouse_bot


async def test_due_approvers_get_dm_cards_and_reassign_moves_the_turn(bot: Bot) -> None:
    await bot.command("alice", "connect hiring")
    assert "Linked by email" in await bot.wait_private("alice", "Linked")
    await bot.poll()

    alice_card = bot.card("U0ALICE", "Offer to Jordan Rivera")
    bob_card = bot.card("U0BOB", "Offer to Jordan Rivera")  # Bob never linked: found by his Slack email
    assert "[Reassign]" in alice_card.render()
    assert "[Approve]" not in alice_card.render(), "Greenhouse's API cannot approve: no such button"
    assert not [m for m in bot.cards("U0CAROL") if "Jordan" in m.render()], "Carol's group is not due yet"

    await bot.click("alice", alice_card, "Reassign")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the reassign modal")
    result = await bot.slack.submit_view(
        bot.url,
        user="alice",
        values={"Approver to replace": "Group 1: Alice Approver", "New approver": "U0DAVE"},
    )
    assert result.closed
    await bot.wait_private("alice", "reassigned")
    await bot.settle()

    dave_card = bot.card("U0DAVE", "Offer to Jordan Rivera")  # Dave never linked either
    assert "[Reassign]" in dave_card.render()
    text = await bot.wait_card(alice_card, "no longer waits on you")
    assert "[Reassign]" not in text
    assert "[Reassign]" in bot.slack.messages[(bob_card.channel, bob_card.ts)].render()


async def test_someone_without_a_vendor_account_is_told_why(bot: Bot) -> None:
    await bot.command("mallory", "connect hiring")
    text = await bot.wait_private("mallory", "No Greenhouse user")
    assert "mallory@example.com" in text


async def test_a_flow_approved_in_greenhouse_ends_every_card_and_tells_the_channel(
    bot: Bot, greenhouse: SandboxSetup
) -> None:
    await bot.command("alice", "connect hiring")
    await bot.wait_private("alice", "Linked")
    await bot.poll()
    alice_card = bot.card("U0ALICE", "Offer to Jordan Rivera")
    bob_card = bot.card("U0BOB", "Offer to Jordan Rivera")
    stored = next(s for s in await bot.runtime.store.pending_items() if "Jordan" in s.item.title)
    greenhouse.extra["sandbox"].decide_flow(int(stored.item.external_id), "approved")
    await bot.poll()
    for card in (alice_card, bob_card):
        text = await bot.wait_card(card, "Approved")
        assert "[Reassign]" not in text
    outcome = [m.render() for m in bot.slack.messages_in("C0APPROVALS") if "Jordan Rivera" in m.render()]
    assert len(outcome) == 1
    assert "approved" in outcome[0]
