"""The core loop end to end on FlexDeploy: poll → card → click as the clicker → vendor → every card true.

Real HTTP everywhere: the FlexDeploy sandbox and the Slack sandbox on 127.0.0.1, signed requests into
the real Bolt app, a real database (SQLite, and PostgreSQL when DATABASE_URL points at one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox, StoredMessage
from connectors.base import Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import stopping

CHANNEL = "C0DEPLOYS"


@pytest.fixture
def fd(fd: FlexDeploySandbox) -> FlexDeploySandbox:
    fd.slow_seconds = 1.5  # well past the connector's 0.75 s timeout
    return fd


async def _start(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> Bot:
    return await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, timeout=0.75
    )


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    running = await _start(db_url, secret_key, slack, fd)
    async with stopping(running):
        yield running


def _puts(fd: FlexDeploySandbox) -> list[str]:
    return [r for r in fd.served if r.startswith("PUT")]


def _gate(bot: Bot) -> StoredMessage:
    return bot.card(CHANNEL, "Retail Web")


async def test_poll_posts_a_card_per_task_with_what_the_vendor_allows(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await bot.poll()
    cards = bot.cards(CHANNEL)
    assert len(cards) == 3
    gate = _gate(bot).render()
    assert "[Approve]" in gate
    assert "[Reject]" in gate
    assert "Open in FlexDeploy" in gate
    assert "Production" in gate
    jira = bot.card(CHANNEL, "Inventory Service").render()
    assert "OPS-1234" in jira
    assert "[Approve]" not in jira, "a task approved in Jira gets no buttons here"


async def test_alice_links_approves_as_herself_and_the_card_says_so(bot: Bot, fd: FlexDeploySandbox) -> None:
    await bot.poll()
    gate = _gate(bot)
    await bot.click("alice", gate, "Approve")
    text = await bot.wait_private("alice", "link your own FlexDeploy account")
    assert "Nothing was changed" in text
    assert not _puts(fd), "no vendor call without a linked identity"

    # The private answer carries a Connect button that opens the linking modal.
    await bot.slack.click_ephemeral(bot.url, user="alice", label="Connect FlexDeploy")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the connect modal")
    credentials = fd.credentials("alice", token=True)
    result = await bot.slack.submit_view(
        bot.url, user="alice", values={"Username": "alice", "Password or API token": credentials["secret"]}
    )
    assert result.closed
    await bot.wait_private("alice", "Linked")

    await bot.click("alice", gate, "Approve")
    final = await bot.wait_card(gate, "Approved")
    assert "alice" in final.lower()
    assert "[Approve]" not in final
    assert [d[1:] for d in fd.decisions] == [("approve", "alice")], (
        "the sandbox saw Alice, not the service account"
    )
    assert len(_puts(fd)) == 1


async def test_wrong_credentials_are_refused_in_the_modal_and_not_stored(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await bot.command("bob", "connect deploys")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("bob"), what="the connect modal")
    result = await bot.slack.submit_view(
        bot.url, user="bob", values={"Username": "bob", "Password or API token": "not-his-password"}
    )
    assert not result.closed
    assert "did not accept" in result.text
    assert await bot.runtime.store.identity(slack_user_id="U0BOB", connector="deploys") is None


async def test_two_concurrent_clicks_make_one_vendor_call(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await link_flexdeploy(bot, fd, "bob", token=False)
    await bot.poll()
    gate = _gate(bot)
    await asyncio.gather(bot.click("alice", gate, "Approve"), bot.click("bob", gate, "Approve"))
    await bot.wait_card(gate, "Approved")
    await bot.settle()
    assert len(fd.decisions) == 1
    assert len(_puts(fd)) == 1
    loser = "bob" if fd.decisions[0][2] == "alice" else "alice"
    text = await bot.wait_private(loser, "changed nothing")
    assert "already deciding" in text or "already" in text


async def test_reject_asks_for_notes_in_a_modal_and_sends_them(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = _gate(bot)
    await bot.click("alice", gate, "Reject")
    await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="the reject modal")
    assert not _puts(fd), "nothing is sent before the modal is submitted"
    result = await bot.slack.submit_view(bot.url, user="alice", values={"Reason": "Not during the freeze"})
    assert result.closed
    final = await bot.wait_card(gate, "Rejected")
    assert "Not during the freeze" in final
    assert [d[1:] for d in fd.decisions] == [("reject", "alice")]
    put = _puts(fd)[0]
    assert "/reject/" in put
    assert "Not+during+the+freeze" in put or "Not%20during%20the%20freeze" in put


async def test_decided_elsewhere_updates_the_card_on_the_next_poll(bot: Bot, fd: FlexDeploySandbox) -> None:
    await bot.poll()
    gate = _gate(bot)
    task_id = next(t for t, task in fd.tasks.items() if task.attributes.get("pipelineName") == "Retail Web")
    fd.decide(task_id, Status.APPROVED, "Approved by the CAB in the FlexDeploy UI")
    await bot.poll()
    final = await bot.wait_card(gate, "Approved")
    assert "in FlexDeploy" in final
    assert "Approved by the CAB" in final
    assert "[Approve]" not in final


async def test_a_vendor_error_tells_the_user_and_a_later_click_works_once(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = _gate(bot)
    fd.fail_next("500", method="PUT")
    await bot.click("alice", gate, "Approve")
    text = await bot.wait_private("alice", "did not answer")
    assert "nothing was changed" in text.lower()
    await bot.settle()
    after = bot.slack.messages[(gate.channel, gate.ts)].render()
    assert "Approved" not in after
    assert "[Approve]" in after, "the buttons come back"
    assert fd.decisions == []

    await bot.click("alice", gate, "Approve")
    await bot.wait_card(gate, "Approved")
    assert len(fd.decisions) == 1


async def test_a_timeout_that_took_effect_is_found_by_rereading_not_resending(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = _gate(bot)
    fd.fail_next("timeout", method="PUT")  # FlexDeploy applies it, but answers after our timeout
    await bot.click("alice", gate, "Approve")
    await bot.wait_card(gate, "Approved", timeout=8)
    assert len(fd.decisions) == 1
    assert len(_puts(fd)) == 1, "an approval is never sent twice"


async def test_a_dropped_connection_leaves_the_task_pending(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    gate = _gate(bot)
    fd.fail_next("drop", method="PUT")
    await bot.click("alice", gate, "Approve")
    await bot.wait_private("alice", "did not answer")
    await bot.settle()
    assert "Approved" not in bot.slack.messages[(gate.channel, gate.ts)].render()
    assert fd.decisions == []


async def test_expired_credentials_ask_to_reconnect(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice", token=False)
    await bot.poll()
    fd.user("alice").password = "rotated-by-the-admin"
    await bot.click("alice", _gate(bot), "Approve")
    text = await bot.wait_private("alice", "no longer work")
    assert "Connect FlexDeploy" in text
    assert fd.decisions == []


async def test_someone_outside_the_approval_group_is_told_so(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "dave")  # Dave is a FlexDeploy user, but not in the Change Advisory Board
    await bot.poll()
    gate = _gate(bot)
    await bot.click("dave", gate, "Approve")
    text = await bot.wait_private("dave", "not an approver")
    assert "nothing was changed" in text
    await bot.settle()
    assert "[Approve]" in bot.slack.messages[(gate.channel, gate.ts)].render()
    assert fd.decisions == []


async def test_a_restart_on_the_same_database_posts_no_duplicate_cards(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    first = await _start(db_url, secret_key, slack, fd)
    await first.poll()
    await first.stop()
    posts = len(slack.calls_to("chat.postMessage"))
    assert posts == 3
    second = await _start(db_url, secret_key, slack, fd)
    try:
        await second.poll()
        await second.poll()
        assert len(slack.calls_to("chat.postMessage")) == posts
        assert len(second.cards(CHANNEL)) == 3
    finally:
        await second.stop()


async def test_a_no_change_poll_makes_no_slack_calls(bot: Bot, fd: FlexDeploySandbox) -> None:
    await bot.poll()
    before = len(bot.slack.calls)
    await bot.poll()
    assert len(bot.slack.calls) == before


async def test_slack_rate_limits_are_waited_out_and_nothing_is_lost(bot: Bot, fd: FlexDeploySandbox) -> None:
    bot.slack.rate_limit("chat.postMessage", times=2, retry_after=1)
    await bot.poll()
    await bot.settle(timeout=10)
    assert len(bot.cards(CHANNEL)) == 3


async def test_list_shows_the_callers_pending_tasks_privately(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    await bot.command("alice", "list")
    text = await bot.wait_private("alice", "waiting on you")
    assert "3 approvals waiting on you" in text
    assert "CAB approval" in text
    assert "Payments API" in text
    assert "[Approve]" in text


async def test_a_failing_vendor_is_logged_once_and_its_recovery_once(
    bot: Bot, fd: FlexDeploySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="bot.coordinator")
    fd.fail_next("500", count=40)  # every read and its retries, for three cycles
    for _ in range(3):
        await bot.runtime.poll_once()
    failing = [r for r in caplog.records if "is failing" in r.getMessage()]
    assert len(failing) == 1
    await bot.command("alice", "status")
    status = await bot.wait_private("alice", "failing")
    assert "deploys" in status
    fd.kit.clear()
    await bot.runtime.poll_once()
    await bot.runtime.poll_once()
    assert len([r for r in caplog.records if "recovered" in r.getMessage()]) == 1
    await bot.settle()
    assert len(bot.cards(CHANNEL)) == 3


async def test_disconnect_forgets_the_credentials(bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(bot, fd, "alice")
    await bot.command("alice", "disconnect deploys")
    await bot.wait_private("alice", "Disconnected")
    assert await bot.runtime.store.identity(slack_user_id="U0ALICE", connector="deploys") is None
    await bot.poll()
    await bot.click("alice", _gate(bot), "Approve")
    await bot.wait_private("alice", "link your own FlexDeploy account")
    assert fd.decisions == []


async def test_a_busy_channel_hitting_slacks_limit_gets_every_card_once(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    """Cards go out several in flight at a time; when Slack answers 429 mid-stream, the calls already
    made are recorded and the rest wait their turn: no card lost, none posted twice."""
    fd.add_group("Bench approvers", ["alice"])
    for n in range(9):
        fd.add_project_task(
            project=f"Service {n}", version="1.0.0", group="Bench approvers", requestor_path="x"
        )
    bot.slack.enforce_rates(per_channel_per_second=10, burst=3)
    await bot.poll()
    await bot.settle(timeout=20)
    assert bot.slack.rate_limited_count > 0, "the bot (paced for 1000/s here) met Slack's limit"
    titles = [m.render().splitlines()[0] for m in bot.cards(CHANNEL)]
    assert len(titles) == 12 == len(set(titles))
    posted = [c for c in bot.slack.calls_to("chat.postMessage") if c.status == 200 and not c.error]
    assert len(posted) == 12
    await bot.poll()
    await bot.settle()
    assert len([c for c in bot.slack.calls_to("chat.postMessage") if not c.error]) == 12, "recorded"


async def test_a_click_before_its_card_is_recorded_still_updates_the_card(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    """Posted cards are recorded a moment later, with others; a click in between finds no card to
    redraw. The record notices the item moved since the card was drawn, and draws it again."""
    from bot.ids import ItemRef
    from connectors.base import Action
    from connectors.people import ALICE

    gate_id = next(str(i) for i, t in fd.tasks.items() if "Retail Web" in str(t.wire()))
    clicked: list[str] = []

    async def click_at_once(channel: str, ts: str, message: object, kind: str) -> None:
        if kind == "post" and not clicked and "CAB approval" in str(getattr(message, "text", "")):
            clicked.append(ts)
            await bot.runtime.services.decide(
                ref=ItemRef("deploys", gate_id), action=Action.APPROVE, slack_user=ALICE.slack_id
            )

    bot.runtime.delivery.on_card = click_at_once
    await link_flexdeploy(bot, fd, "alice")
    await bot.poll()
    assert clicked, "the click came between the post and its record"
    await bot.wait_card(_gate(bot), "Approved")
    assert [d[1:] for d in fd.decisions] == [("approve", "alice")]
