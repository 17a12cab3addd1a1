"""Greenhouse end to end on Harvest v3: due approvers carded without linking, approvers outside
Slack carded in the channel, Reassign refused for someone else's slot, and webhooks that end cards
before the next poll (and are refused unsigned)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.greenhouse.sandbox import sign
from tests.contract.kits.greenhouse import GreenhouseKit
from tests.harness import Bot, start_bot
from tests.running import stopping

HOOK_SECRET = "hook-secret-5c2e"


@pytest.fixture
def kit(greenhouse_kit: GreenhouseKit) -> GreenhouseKit:
    return greenhouse_kit


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, kit: GreenhouseKit) -> AsyncIterator[Bot]:
    config = kit.bot_config(webhook_secret=HOOK_SECRET)
    running = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[config])
    async with stopping(running):
        yield running


def hook_url(bot: Bot) -> str:
    return bot.url.replace("/slack/events", "/greenhouse/webhook/hiring")


async def test_an_approver_who_never_linked_gets_the_card_and_one_outside_slack_is_named_in_the_channel(
    bot: Bot, kit: GreenhouseKit
) -> None:
    nora = kit.sandbox.add_user("Nora Outside", "nora@elsewhere.example")
    job = kit.new_job("Staff Data Engineer")
    kit.sandbox.add_flow(job, [([kit.ids["alice"], nora], 1)], requested_by=kit.recruiter)
    await bot.poll()  # nobody ever typed /approvals connect
    alice_card = bot.card("U0ALICE", "Open job: Staff Data Engineer")
    assert "[Reassign]" in alice_card.render()
    channel = [
        m.render() for m in bot.slack.messages_in("C0APPROVALS") if "Staff Data Engineer" in m.render()
    ]
    assert len(channel) == 1, "Nora has no Slack account: her card goes to the connector's channel"
    assert "Nora Outside" in channel[0]


async def test_reassigning_someone_elses_slot_is_refused_with_no_call(bot: Bot, kit: GreenhouseKit) -> None:
    ids = kit.ids
    job = kit.new_job("Product Designer")
    kit.sandbox.add_flow(
        job, [([ids["carol"]], 1), ([ids["dave"]], 1)], sequential=False, requested_by=kit.recruiter
    )
    await bot.poll()
    carol_card = bot.card("U0CAROL", "Product Designer")
    await bot.click("carol", carol_card, "Reassign")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("carol"), what="the reassign modal")
    await bot.slack.submit_view(
        bot.url,
        user="carol",
        values={"Approver to replace": "Group 2: Dave Deployer", "New approver": "U0BOB"},
    )
    text = await bot.wait_private("carol", "Nothing was changed")
    assert "the approver whose slot it is or the flow's requester" in text
    assert kit.sandbox.writes == [], "nothing reached Greenhouse"


async def test_a_webhook_ends_the_cards_before_the_next_poll(bot: Bot, kit: GreenhouseKit) -> None:
    kit.sandbox.webhook_url, kit.sandbox.webhook_secret = hook_url(bot), HOOK_SECRET
    ids = kit.ids
    job = kit.new_job("Platform Lead")
    flow = kit.sandbox.add_flow(job, [([ids["alice"], ids["bob"]], 1)], requested_by=kit.recruiter)
    await bot.poll()
    alice_card = bot.card("U0ALICE", "Platform Lead")
    bob_card = bot.card("U0BOB", "Platform Lead")
    kit.sandbox.decide_flow(flow, "approved", by=kit.recruiter)  # Greenhouse then delivers job_approved
    for card in (alice_card, bob_card):
        text = await bot.wait_card(card, "Approved")  # no bot.poll() in between
        assert "[Reassign]" not in text
    assert [status for _, status in kit.sandbox.deliveries] == [200]


async def test_unsigned_or_badly_signed_webhooks_are_refused_and_change_nothing(
    bot: Bot, kit: GreenhouseKit
) -> None:
    kit.sandbox.webhook_url = hook_url(bot)
    ids = kit.ids
    job = kit.new_job("Security Engineer")
    flow = kit.sandbox.add_flow(job, [([ids["alice"]], 1)], requested_by=kit.recruiter)
    await bot.poll()
    alice_card = bot.card("U0ALICE", "Security Engineer")
    kit.sandbox.flows[flow].status = "approved"  # decided, but only a delivery may tell the bot now
    grouped = kit.sandbox.flows[flow]
    assert await kit.sandbox.deliver(grouped, secret="") == 401, "unsigned"
    assert await kit.sandbox.deliver(grouped, secret="not-the-secret") == 401, "badly signed"
    await bot.settle()
    assert "Approved" not in bot.slack.messages[(alice_card.channel, alice_card.ts)].render()

    body = json.dumps({"action": "job_approved", "payload": {"approval_flow": {"id": flow}}}).encode()
    headers = {
        "Signature": sign(HOOK_SECRET, body),
        "Greenhouse-Event-ID": "evt-1",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient() as http:
        first = await http.post(hook_url(bot), content=body, headers=headers)
        again = await http.post(hook_url(bot), content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {"ok": True}
    assert again.status_code == 200 and again.json().get("duplicate") is True
    await bot.wait_card(alice_card, "Approved")


async def test_an_admin_may_reassign_someone_elses_slot_with_their_own_token(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: GreenhouseKit
) -> None:
    running = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[kit.bot_config()],
        admins=["U0CAROL"],
    )
    try:
        ids = kit.ids
        job = kit.new_job("Support Lead", access=[ids["alice"]])
        kit.sandbox.add_flow(
            job, [([ids["carol"]], 1), ([ids["dave"]], 1)], sequential=False, requested_by=kit.recruiter
        )
        await running.poll()
        carol_card = running.card("U0CAROL", "Support Lead")
        await running.click("carol", carol_card, "Reassign")
        await running.slack.wait_for(lambda: running.slack.open_modals("carol"), what="the reassign modal")
        await running.slack.submit_view(
            running.url,
            user="carol",
            values={"Approver to replace": "Group 2: Dave Deployer", "New approver": "U0ALICE"},
        )
        await running.slack.wait_for(lambda: kit.sandbox.writes, what="the replace_approver call")
        (write,) = kit.sandbox.writes
        assert write.path.endswith("/replace_approver")
        assert write.sub == ids["carol"], "the admin acts with their own token, not a shared one"
        assert write.status == 200
    finally:
        await running.stop()
