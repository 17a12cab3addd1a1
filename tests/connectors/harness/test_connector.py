"""Harness: several approvers, approver inputs through a Slack modal, expiry, auto-reject, refusals in
plain words, 429 without Retry-After, the execution-id fallback, and quiet projects polled less."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.base import Action, Status
from connectors.errors import AlreadyDecided, Conflict, NotAllowed
from connectors.people import ALICE, BOB
from tests.contract.kits.harness import HarnessKit
from tests.harness import start_kit_bot, submit_harness_key
from tests.running import started


@pytest.fixture
async def kit() -> AsyncIterator[HarnessKit]:
    k = HarnessKit()
    k.sandbox.add_group("leads", [ALICE, BOB])
    async with started(k):
        yield k


async def test_two_approvers_needed_and_the_same_person_twice(kit: HarnessKit) -> None:
    instance = kit.sandbox.add_waiting(groups=["leads"], minimum=2)
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending()
        after = await connector.act(item, Action.APPROVE, kit.actor(ALICE))
        assert after.status is Status.PENDING
        assert len(after.groups[0].approved_by) == 1
        assert after.groups[0].required == 2
        with pytest.raises(NotAllowed) as twice:
            await connector.act(after, Action.APPROVE, kit.actor(ALICE))
        assert twice.value.reason == "already_acted"
        final = await connector.act(after, Action.APPROVE, kit.actor(BOB))
        assert final.status is Status.APPROVED
        assert [d[0] for d in kit.sandbox.decisions] == [instance, instance]
    finally:
        await connector.aclose()


async def test_expiry_auto_reject_and_self_approval(kit: HarnessKit) -> None:
    expired = kit.sandbox.add_waiting(groups=["leads"], deadline_ms=int((time.time() - 1) * 1000))
    older = kit.sandbox.add_waiting(pipeline="deploy_web", groups=["leads"])
    newer = kit.sandbox.add_waiting(pipeline="deploy_web", groups=["leads"], auto_reject=True)
    mine = kit.sandbox.add_waiting(groups=["leads"], disallow_executor=True, triggered_by=ALICE.email)
    connector = kit.build()
    try:
        items = {i.external_id: i for i in await connector.fetch_pending()}
        assert expired not in items
        assert "older runs" in items[newer].notices[0]
        with pytest.raises(NotAllowed) as own:
            await connector.act(items[mine], Action.APPROVE, kit.actor(ALICE))
        assert own.value.reason == "self_approval"
        blocked = kit.sandbox.add_waiting(groups=["leads"], disallowed=[BOB.email])
        blocked_item = next(i for i in await connector.fetch_pending() if i.external_id == blocked)
        with pytest.raises(NotAllowed) as listed:
            await connector.act(blocked_item, Action.APPROVE, kit.actor(BOB))
        assert listed.value.reason == "disallowed_user"
        await connector.act(items[newer], Action.APPROVE, kit.actor(ALICE))
        assert (await connector.refresh(items[older])).status is Status.REJECTED, (
            "auto-reject took the older run"
        )
        with pytest.raises(AlreadyDecided):
            await connector.act(items[older], Action.APPROVE, kit.actor(BOB))
    finally:
        await connector.aclose()


async def test_service_account_keys_and_other_accounts_are_refused(kit: HarnessKit) -> None:
    connector = kit.build()
    try:
        with pytest.raises(NotAllowed) as sat:
            await connector.verify({"api_key": "sat.acct1.bot.viewonly"})
        assert sat.value.reason == "service_account"
        with pytest.raises(NotAllowed) as other:
            await connector.verify({"api_key": "pat.otheracct.alice.s3cr3t"})
        assert other.value.reason == "wrong_account"
        me = await connector.verify({"api_key": kit.sandbox.key("alice")})
        assert (me.display_name, me.email) == ("Alice Approver", ALICE.email)
    finally:
        await connector.aclose()


async def test_429_without_retry_after_is_backed_off(kit: HarnessKit) -> None:
    kit.sandbox.add_waiting(groups=["leads"])
    kit.sandbox.rate_limit_next = 3
    connector = kit.build()
    try:
        assert len(await connector.fetch_pending()) == 1
        assert kit.sandbox.rate_limit_next == 0
    finally:
        await connector.aclose()


async def test_execution_route_fallback_and_its_errors(kit: HarnessKit) -> None:
    first = kit.sandbox.add_waiting(groups=["leads"], callback_id="cb-1")
    connector = kit.build(act_by="execution")
    try:
        (item,) = await connector.fetch_pending()
        after = await connector.act(item, Action.APPROVE, kit.actor(ALICE))
        assert after.status is Status.APPROVED
        assert any("callback_id=cb-1" in r for r in kit.sandbox.served)
        second = kit.sandbox.add_waiting(groups=["leads"])
        execution = kit.sandbox.instances[second].execution
        kit.sandbox.add_waiting(groups=["leads"])
        kit.sandbox.instances[list(kit.sandbox.instances)[-1]].execution = execution
        items = [i for i in await connector.fetch_pending() if i.ref["execution"] == execution.id]
        with pytest.raises(Conflict):
            await connector.act(items[0], Action.APPROVE, kit.actor(ALICE))
        assert first
    finally:
        await connector.aclose()


async def test_quiet_projects_are_polled_less_often(kit: HarnessKit) -> None:
    kit.sandbox.add_waiting(groups=["leads"])  # payments has something waiting, "empty" never does
    connector = kit.build(projects=["default/payments", "default/empty"], quiet_every=3)
    try:
        for _ in range(6):
            await connector.fetch_pending()
        summaries = [r for r in kit.sandbox.served if "/execution/summary" in r]
        empty = [r for r in summaries if "projectIdentifier=empty" in r]
        payments = [r for r in summaries if "projectIdentifier=payments" in r]
        assert len(payments) == 6
        assert len(empty) == 2
    finally:
        await connector.aclose()


async def test_inputs_through_slack_and_a_refusal_in_plain_words(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HarnessKit
) -> None:
    instance = kit.sandbox.add_waiting(
        groups=["approvers"],
        inputs=[{"name": "risk", "defaultValue": "low", "allowedValues": ["low", "high"], "required": True}],
    )
    # The service token may not read the group: the step is carded in the channel, where Bob sees it.
    kit.sandbox.unviewable.add("approvers")
    bot = await start_kit_bot(
        kit, "pipelines", channel="C0DEPLOYS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        for user in ("alice", "bob"):
            await bot.command(user, "connect pipelines")
            await submit_harness_key(bot, user, kit.sandbox.key(user))
        await bot.poll()
        card = bot.card("C0DEPLOYS", "approval")
        await bot.click("bob", card, "Approve")  # Bob is not in the step's group
        await slack.wait_for(lambda: slack.open_modals("bob"), what="the approve modal")
        await slack.submit_view(bot.url, user="bob", values={"risk": "high"})
        text = await bot.wait_private("bob", "not an approver")
        assert "nothing was changed" in text
        await bot.wait_card(card, "[Approve]")  # the buttons are back once Bob's attempt is over
        await bot.click("alice", card, "Approve")
        modal = await slack.wait_for(lambda: slack.open_modals("alice"), what="the approve modal")
        assert "low" in modal[-1].render(), "the default is filled in"
        await slack.submit_view(bot.url, user="alice", values={"risk": "high", "Comment": "ship it"})
        await bot.wait_card(card, "Approved")
        activity = kit.sandbox.instances[instance].activities[-1]
        assert activity["approverInputs"] == [{"name": "risk", "value": "high"}]
        assert activity["comments"] == "ship it"
    finally:
        await bot.stop()


async def test_a_decision_made_in_harness_updates_the_card(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HarnessKit
) -> None:
    instance = kit.sandbox.add_waiting(groups=["leads"], message="Ship it?")
    bot = await start_kit_bot(
        kit, "pipelines", channel="C0DEPLOYS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        await bot.poll()
        # The group's members are named: the card reaches Alice (and Bob) by email, in their DMs.
        card = bot.card("U0ALICE", "Ship it?")
        assert bot.card("U0BOB", "Ship it?")
        assert "Expires in" in card.render()
        kit.sandbox.decide(instance, "REJECTED", by="carol@example.com")
        await bot.poll()
        text = await bot.wait_card(card, "Rejected")
        assert "carol@example.com" in text
        assert "[Approve]" not in text
    finally:
        await bot.stop()
