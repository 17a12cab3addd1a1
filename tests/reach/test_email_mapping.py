"""Acting through an email mapping (Greenhouse, Approval Path) is stricter than being told by
email: a confirmed address of a full member of this workspace, read from Slack at the click; and a
Disconnect is remembered until the person connects again."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.sandbox.render import view_to_text
from connectors.greenhouse.sandbox import GreenhouseSandbox
from connectors.people import BOB
from connectors.registry import SandboxSetup
from tests.harness import Bot

OFFER = "Offer to Jordan Rivera"


@pytest.fixture
def bot(greenhouse_bot: Bot) -> Bot:
    return greenhouse_bot


def _home(bot: Bot, user: str) -> str:
    view = bot.slack.home.get(bot.slack.person(user).slack_id)
    return view_to_text(view) if view else ""


@pytest.mark.parametrize(
    ("account", "why"),
    [
        ({"email_confirmed": False}, "not confirmed"),
        ({"guest": "restricted"}, "guest"),
        ({"guest": "ultra_restricted"}, "guest"),
        ({"team_id": "T0ELSEWHERE"}, "Slack Connect"),
        ({"stranger": True}, "Slack Connect"),
        ({"deleted": True}, "deactivated"),
    ],
)
async def test_an_account_that_may_not_stand_for_its_email_cannot_act(
    bot: Bot, greenhouse: SandboxSetup, account: dict[str, object], why: str
) -> None:
    sandbox: GreenhouseSandbox = greenhouse.extra["sandbox"]
    await bot.poll()
    card = bot.card("U0BOB", OFFER)  # Bob is told: his card came by email, without linking
    assert "[Reassign]" in card.render()
    bot.slack.people[BOB.slack_id] = replace(BOB, **account)  # type: ignore[arg-type]
    await bot.click("bob", card, "Reassign")
    text = await bot.wait_private("bob", "Nothing was changed")
    assert why in text
    assert not bot.slack.open_modals("bob"), "nothing opened"
    assert sandbox.writes == []
    bot.slack.people[BOB.slack_id] = BOB  # the same person as a confirmed full member may
    await bot.click("bob", card, "Reassign")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("bob"), what="the reassign modal")


async def test_the_email_is_read_from_slack_at_the_click_not_from_a_stored_copy(bot: Bot) -> None:
    await bot.command("bob", "connect hiring")
    await bot.wait_private("bob", "Linked by email")
    await bot.poll()
    card = bot.card("U0BOB", OFFER)
    infos, lookups = len(bot.slack.calls_to("users.info")), len(bot.slack.calls_to("users.lookupByEmail"))
    await bot.click("bob", card, "Reassign")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("bob"), what="the reassign modal")
    assert len(bot.slack.calls_to("users.info")) > infos, "the click re-read Bob's account"
    assert len(bot.slack.calls_to("users.lookupByEmail")) == lookups, "no lookup on a click's path"


async def test_disconnect_stays_disconnected_until_connect(bot: Bot) -> None:
    await bot.poll()
    await bot.slack.open_home(bot.url, user="alice")
    home = str(
        await bot.slack.wait_for(
            lambda: (h := _home(bot, "alice")) and "linked as" in h and h, what="Alice mapped by email"
        )
    )
    assert OFFER in home
    await bot.slack.click_home(bot.url, user="alice", label="Disconnect")
    await bot.slack.wait_for(
        lambda: [
            m for m in bot.slack.messages_in(bot.slack.dm_channel("alice")) if "Disconnected" in m.render()
        ],
        what="Alice told she is disconnected",
    )
    await bot.slack.wait_for(
        lambda: (h := _home(bot, "alice")) and "not linked" in h and OFFER not in h,
        what="Alice's Home disconnected, her queue empty",
    )
    await bot.slack.open_home(bot.url, user="alice")  # redrawn: still disconnected
    await bot.command("alice", "list")
    await bot.wait_private("alice", "Nothing waits on you")
    assert "linked as" not in _home(bot, "alice")
    card = bot.card("U0ALICE", OFFER)
    await bot.settle()
    assert "[Connect Greenhouse]" in bot.slack.messages[(card.channel, card.ts)].render()
    await bot.click("alice", card, "Connect Greenhouse")
    await bot.wait_private("alice", "Linked by email")
    await bot.settle()
    assert "[Reassign]" in await bot.wait_card(card, "[Reassign]")
    await bot.command("alice", "list")
    await bot.wait_private("alice", "1 approval waiting on you")
