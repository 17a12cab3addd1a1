"""App Home: the queue with buttons, linked accounts, connector health; kept true after a decision;
bulk approve with a per-item result."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.people import BOB
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import started, stopping


@pytest.fixture
async def fd() -> AsyncIterator[FlexDeploySandbox]:
    sandbox = FlexDeploySandbox()
    sandbox.seed_demo()
    # A fourth task in a group Alice is not in: FlexDeploy will refuse her in a bulk approve.
    sandbox.add_group("Auditors", [BOB])
    sandbox.add_project_task(
        project="Ledger",
        version="1.0.0",
        group="Auditors",
        requestor_path="FlexDeploy / Finance / Ledger",
        project_id=10040,
    )
    async with started(sandbox):
        yield sandbox


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    running = await start_flexdeploy_bot(database_url=db_url, secret_key=secret_key, slack=slack, fd=fd)
    async with stopping(running):
        yield running


def _home(bot: Bot, user: str) -> str:
    from bot.sandbox.render import view_to_text

    view = bot.slack.home.get(bot.slack.person(user).slack_id)
    return view_to_text(view) if view else ""


async def test_home_shows_queue_accounts_and_health_and_follows_a_decision(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    await bot.slack.open_home(bot.url, user="alice")
    home = await bot.slack.wait_for(lambda: _home(bot, "alice"), what="Alice's home")
    assert "CAB approval" in home
    assert "[Approve]" in home
    assert "linked as" in home
    assert "Greenhouse" not in home
    assert "deploys" in home and "pending" in home
    card = bot.card("C0DEPLOYS", "CAB approval")
    await bot.click("alice", card, "Approve")
    await bot.wait_card(card, "Approved")
    await bot.settle()
    await bot.slack.wait_for(
        lambda: "CAB approval" not in _home(bot, "alice"), what="home without the approved item"
    )


async def test_bulk_approve_reports_each_item_and_one_refusal_does_not_stop_the_rest(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    await bot.slack.open_home(bot.url, user="alice")
    await bot.slack.wait_for(lambda: "Approve several" in _home(bot, "alice"), what="the bulk button")
    await bot.slack.click_home(bot.url, user="alice", label="Approve several…")
    modal = await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the bulk modal")
    text = modal[-1].render()
    assert "Ledger" in text
    assert "Inventory Service" not in text, "a task decided in Jira cannot be approved here"
    options = [
        o["value"]
        for b in modal[-1].blocks
        if b.get("block_id", "").startswith("bulk|")
        for o in b["element"]["options"]
    ]
    await bot.slack.submit_view(bot.url, user="alice", values={"Approve": options})
    result = await bot.slack.wait_for(
        lambda: next((v.render() for v in bot.slack.views.values() if "of 3 approved" in v.render()), ""),
        timeout=10,
        what="the per-item result",
    )
    assert "2 of 3 approved" in result
    assert "not an approver" in result
    assert sorted(d[2] for d in fd.decisions) == ["alice", "alice"]


async def test_decisions_in_a_row_republish_the_home_once_it_settles(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    bot = await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, home_settle=1.5
    )
    try:
        await link_flexdeploy(bot, fd, "alice")
        await bot.poll()  # waits out the republish the new items asked for, too
        opened = len(bot.slack.calls_to("views.publish"))
        await bot.slack.open_home(bot.url, user="alice")
        await bot.slack.wait_for(lambda: len(bot.slack.calls_to("views.publish")) > opened, what="a home")
        assert "Payments API" in _home(bot, "alice")
        before = len(bot.slack.calls_to("views.publish"))
        for title in ("CAB approval", "Payments API"):
            card = bot.card("C0DEPLOYS", title)
            await bot.click("alice", card, "Approve")
            await bot.wait_card(card, "Approved")
        await bot.settle()
        home = _home(bot, "alice")
        assert "CAB approval" not in home and "Payments API" not in home
        assert len(bot.slack.calls_to("views.publish")) - before == 1, "one publish for both decisions"
    finally:
        await bot.stop()
