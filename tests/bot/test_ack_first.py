"""Clicks are answered before the work they start (bot/ack_first.py): a slow vendor never keeps the
person waiting, a forged click is still refused, and stopping the bot finishes what was acknowledged.

Real HTTP everywhere: the FlexDeploy and Slack sandboxes on 127.0.0.1, signed requests into the app.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from bot.sandbox.slack_api import SlackSandbox, find_button
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import stopping

CHANNEL = "C0DEPLOYS"
VENDOR_DELAY = 1.0  # the conftest sandbox's "timeout" fault


async def _start(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> Bot:
    """The bot with Alice linked and the cards posted."""
    running = await start_flexdeploy_bot(database_url=db_url, secret_key=secret_key, slack=slack, fd=fd)
    await link_flexdeploy(running, fd, "alice")
    await running.poll()
    return running


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    running = await _start(db_url, secret_key, slack, fd)
    async with stopping(running):
        yield running


async def test_a_slow_vendor_does_not_delay_the_answer_to_the_click(bot: Bot, fd: FlexDeploySandbox) -> None:
    gate = bot.card(CHANNEL, "Retail Web")
    fd.fail_next("timeout", method="PUT")  # FlexDeploy takes VENDOR_DELAY seconds to answer
    started = time.perf_counter()
    await bot.click("alice", gate, "Approve")
    assert time.perf_counter() - started < VENDOR_DELAY / 2, "Slack got its answer before the vendor's"
    final = await bot.wait_card(gate, "Approved")
    assert "alice" in final.lower()
    assert [d[1:] for d in fd.decisions] == [("approve", "alice")]


async def test_a_click_with_a_forged_signature_is_refused_and_changes_nothing(
    bot: Bot, fd: FlexDeploySandbox
) -> None:
    gate = bot.card(CHANNEL, "Retail Web")
    _, button = find_button(gate.blocks, label="Approve", action_id=None, where="the gate card")
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "name": "alice"},
        "team": {"id": "T0SANDBOX"},
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": gate.ts},
        "channel": {"id": CHANNEL},
        "actions": [{"action_id": button["action_id"], "value": button["value"], "type": "button"}],
    }
    body = "payload=" + quote(json.dumps(payload))
    signed_for_another_body = bot.slack.signed_headers(body.replace("U0ALICE", "U0BOB"))
    reply = await bot.slack.send_raw(bot.url, body, signed_for_another_body)
    assert reply.status == 401
    unsigned = await bot.slack.send_raw(bot.url, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status == 401
    await bot.settle()
    assert fd.decisions == []
    assert not [r for r in fd.served if r.startswith("PUT")]
    assert "[Approve]" in bot.slack.messages[(gate.channel, gate.ts)].render()


async def test_stopping_right_after_a_click_still_sends_it_to_the_vendor(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    bot = await _start(db_url, secret_key, slack, fd)
    gate = bot.card(CHANNEL, "Retail Web")
    # The read the connector makes before deciding takes a second, so the stop comes mid-click.
    fd.fail_next("timeout", method="GET")
    await bot.click("alice", gate, "Approve")
    await bot.stop()  # SIGTERM a moment after the click was answered
    assert [d[1:] for d in fd.decisions] == [("approve", "alice")]
