"""Every approver reached, through Slack: cards in the DMs of the people the vendor names, found by
email whether or not they linked; the channel for those nobody can find; linking only to act."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.people import ALICE, BOB, CAROL, DemoPerson
from store.repo import now_utc
from tests.contract.kits.harness import HarnessKit
from tests.contract.kits.herzum import HerzumKit
from tests.harness import Bot, start_kit_bot, submit_harness_key
from tests.running import started

NORA = DemoPerson("nora", "Nora Newhire", "nora@example.com", "U0NORA", "UTC")


class Clock:
    """The bot's clock for email lookups, moved by the test."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return now_utc() + self.offset


@pytest.fixture
async def harness() -> AsyncIterator[HarnessKit]:
    kit = HarnessKit()
    kit.sandbox.add_group("sre_leads", [ALICE, BOB], display="SRE leads")
    async with started(kit):
        yield kit


async def _harness_bot(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HarnessKit, **options: object
) -> Bot:
    return await start_kit_bot(
        kit,
        "pipelines",
        channel="C0DEPLOYS",
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        **options,
    )


def _lookups(slack: SlackSandbox) -> int:
    return len(slack.calls_to("users.lookupByEmail"))


async def test_a_group_member_who_never_linked_gets_a_dm_card_saying_why_and_a_non_member_nothing(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_waiting(groups=["sre_leads"], message="Roll out the new ingress?")
    bot = await _harness_bot(db_url, secret_key, slack, harness)
    try:
        await bot.command("dave", "connect pipelines")
        await submit_harness_key(bot, "dave", harness.sandbox.key("dave"))
        await bot.poll()
        for member in ("U0ALICE", "U0BOB"):  # neither ever linked
            text = bot.card(member, "Roll out the new ingress?").render()
            assert "You are in SRE leads" in text
            assert "[Connect Harness]" in text and "[Approve]" not in text, "one button: link first"
        assert not [m for m in bot.cards("U0DAVE") if "ingress" in m.render()]
        channel = bot.card("C0DEPLOYS", "Roll out the new ingress?").render()
        assert "[Approve]" in channel and "You are in" not in channel, (
            "the team's copy, for nobody in particular"
        )
        await bot.command("dave", "list")
        assert "deploy prod" not in await bot.wait_private("dave", "Nothing waits on you")
    finally:
        await bot.stop()


async def test_a_step_whose_groups_cannot_be_read_is_in_the_channel_and_nobodys_queue(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_group("auditors", [ALICE], display="Auditors")
    harness.sandbox.unviewable.add("auditors")
    harness.sandbox.add_waiting(groups=["auditors"], message="Close the books?")
    bot = await _harness_bot(db_url, secret_key, slack, harness)
    try:
        await bot.command("alice", "connect pipelines")
        await submit_harness_key(bot, "alice", harness.sandbox.key("alice"))
        await bot.poll()
        assert "[Approve]" in bot.card("C0DEPLOYS", "Close the books?").render()
        assert not [m for m in bot.cards("U0ALICE") if "Close the books?" in m.render()]
        await bot.command("alice", "list")
        await bot.wait_private("alice", "Nothing waits on you")
    finally:
        await bot.stop()


async def test_link_then_act_from_the_same_dm_card(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    instance = harness.sandbox.add_waiting(groups=["sre_leads"], message="Ship the payments API?")
    bot = await _harness_bot(db_url, secret_key, slack, harness)
    try:
        await bot.poll()
        card = bot.card("U0ALICE", "Ship the payments API?")
        await bot.click("alice", card, "Connect Harness")
        await submit_harness_key(bot, "alice", harness.sandbox.key("alice"))
        await bot.wait_private("alice", "Linked")
        await bot.settle()
        text = await bot.wait_card(card, "[Approve]")
        assert "[Connect Harness]" not in text and "You are in SRE leads" in text
        await bot.click("alice", card, "Approve")  # no inputs on this step: no modal
        await bot.wait_card(card, "Approved")
        assert [(i, a, u) for i, a, u in harness.sandbox.decisions] == [(instance, "approve", "u-alice")]
    finally:
        await bot.stop()


async def test_an_approver_not_in_slack_is_named_on_the_channel_card(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_group("dbas", [CAROL, "nora@example.com"], display="DBAs")
    harness.sandbox.add_waiting(groups=["dbas"], message="Migrate the ledger?")
    bot = await _harness_bot(db_url, secret_key, slack, harness, channel_copy="unresolved")
    try:
        await bot.poll()
        assert "You are in DBAs" in bot.card("U0CAROL", "Migrate the ledger?").render()
        channel = bot.card("C0DEPLOYS", "Migrate the ledger?").render()
        assert "Not found in Slack, so carded here: Nora" in channel
        assert "Carol" not in channel.split("Not found in Slack")[1].splitlines()[0]
    finally:
        await bot.stop()


async def test_channel_copy_unresolved_keeps_the_channel_only_for_those_nobody_found(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_waiting(groups=["sre_leads"], message="Everyone found")
    bot = await _harness_bot(db_url, secret_key, slack, harness, channel_copy="unresolved")
    try:
        await bot.poll()
        assert bot.card("U0ALICE", "Everyone found")
        assert not [m for m in bot.cards("C0DEPLOYS") if "Everyone found" in m.render()]
    finally:
        await bot.stop()
    slack.messages.clear()
    always = await _harness_bot(db_url, secret_key, slack, harness)
    try:
        harness.sandbox.add_waiting(groups=["sre_leads"], message="A copy for the team")
        await always.poll()
        assert always.card("U0BOB", "A copy for the team")
        assert always.card("C0DEPLOYS", "A copy for the team"), "channel_copy defaults to always"
    finally:
        await always.stop()


async def test_a_not_found_email_is_asked_again_after_an_hour_never_on_a_click(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_group("dbas", [CAROL, NORA.email], display="DBAs")
    harness.sandbox.add_waiting(groups=["dbas"], message="Rotate the keys?")
    bot = await _harness_bot(db_url, secret_key, slack, harness)
    clock = Clock()
    bot.runtime.reach.clock = clock
    try:
        await bot.poll()
        assert _lookups(slack) == 2, "Carol and Nora, once each"
        card = bot.card("C0DEPLOYS", "Rotate the keys?")
        assert "Nora" in card.render()
        slack.people[NORA.slack_id] = NORA  # Nora joins Slack
        await bot.click("carol", card, "Approve")  # not linked: told how, and no lookup on the way
        await bot.wait_private("carol", "link your own Harness account")
        await bot.poll()
        assert _lookups(slack) == 2, "nothing due: an unchanged sync asks Slack nothing"
        assert not bot.cards("U0NORA")
        clock.offset = timedelta(minutes=61)
        await bot.poll()
        assert _lookups(slack) == 3, "only Nora's not-found answer was due (Carol's lasts a day)"
        text = bot.card("U0NORA", "Rotate the keys?").render()
        assert "You are in DBAs" in text
        await bot.poll()
        assert _lookups(slack) == 3
    finally:
        await bot.stop()


async def test_addresses_a_sync_had_no_time_to_ask_about_are_looked_up_by_delivery(
    db_url: str, secret_key: str, slack: SlackSandbox, harness: HarnessKit
) -> None:
    harness.sandbox.add_waiting(groups=["sre_leads"], message="Scale the cluster?")
    bot = await _harness_bot(db_url, secret_key, slack, harness)
    bot.runtime.coordinators["pipelines"].lookup_budget = 0.0  # as if Slack's pace had used it up
    try:
        await bot.poll()
        assert _lookups(slack) == 2, "delivery asked for Alice and Bob, once each"
        (stored,) = await bot.runtime.store.pending_items()
        targets = sorted(c.target for c in await bot.runtime.store.cards(item_id=stored.id))
        assert targets == ["channel:C0DEPLOYS", "email:alice@example.com", "email:bob@example.com"]
        for member in ("U0ALICE", "U0BOB"):
            assert "You are in SRE leads" in bot.card(member, "Scale the cluster?").render()
        await bot.poll()
        assert _lookups(slack) == 2
    finally:
        await bot.stop()


async def test_an_unlinked_herzum_approvers_item_is_carded_in_the_channel_and_in_nobodys_queue(
    db_url: str, secret_key: str, slack: SlackSandbox
) -> None:
    kit = HerzumKit()
    await kit.start()
    kit.sandbox.add_approval(kit.sandbox.add_issue("FIN-9", "Quarterly accruals"), ["carol"])
    kit.sandbox.add_approval(kit.sandbox.add_issue("OPS-3", "Alice's release"), ["alice"])
    bot = await start_kit_bot(
        kit, "approvals", channel="C0APPROVALS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        await bot.command("alice", "connect approvals")
        await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the connect modal")
        credentials = kit.sandbox.credentials("alice")
        result = await bot.slack.submit_view(
            bot.url,
            user="alice",
            values={
                "Jira username": credentials["username"],
                "Password or personal access token": credentials["secret"],
            },
        )
        assert result.closed, result.text
        await bot.wait_private("alice", "Linked")
        await bot.poll()
        assert "Quarterly accruals" in bot.card("C0APPROVALS", "Quarterly accruals").render()
        assert bot.card("U0ALICE", "Alice's release")
        await bot.command("alice", "list")
        text = await bot.wait_private("alice", "waiting on you")
        assert "Alice's release" in text and "Quarterly accruals" not in text, (
            "Carol's waits on nobody linked"
        )
    finally:
        await bot.stop()
        await kit.stop()
