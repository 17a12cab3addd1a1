"""The HTTP surface: Slack's signature is enforced, malformed input never becomes a 5xx,
/healthz and /metrics answer, unknown /approvals input gets help."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from tests.harness import Bot, start_bot
from tests.running import stopping


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox) -> AsyncIterator[Bot]:
    running = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[])
    async with stopping(running):
        yield running


def _command_body(text: str = "help") -> str:
    return urlencode(
        {
            "command": "/approvals",
            "text": text,
            "user_id": "U0ALICE",
            "channel_id": "C0GENERAL",
            "team_id": "T0SANDBOX",
            "response_url": "http://127.0.0.1:9/none",
            "trigger_id": "1.2.3",
        }
    )


async def test_unsigned_stale_and_tampered_requests_are_refused(bot: Bot) -> None:
    body = _command_body()
    unsigned = await bot.slack.send_raw(bot.url, body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert unsigned.status == 401
    stale = await bot.slack.send_raw(
        bot.url, body, bot.slack.signed_headers(body, timestamp=int(time.time()) - 600)
    )
    assert stale.status == 401
    headers = bot.slack.signed_headers(body)
    tampered = await bot.slack.send_raw(bot.url, body.replace("help", "list"), headers)
    assert tampered.status == 401
    assert (await bot.slack.send_raw(bot.url, body, headers)).status == 200


@pytest.mark.parametrize(
    "body",
    [
        "payload=" + quote("{not json"),
        "payload=" + quote(json.dumps({"type": "block_actions"})),
        "payload="
        + quote(
            json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": "U0ALICE"},
                    "actions": [{"action_id": "card.approve", "value": "garbage"}],
                }
            )
        ),
        "payload="
        + quote(
            json.dumps(
                {
                    "type": "view_submission",
                    "user": {"id": "U0ALICE"},
                    "view": {"callback_id": "view.decide", "private_metadata": "%%%"},
                }
            )
        ),
        "\xff\xfe",
        "",
    ],
)
async def test_malformed_payloads_get_a_4xx_or_a_harmless_200(bot: Bot, body: str) -> None:
    reply = await bot.slack.send_raw(bot.url, body, bot.slack.signed_headers(body))
    assert reply.status < 500, reply.text


async def test_a_button_from_an_unknown_card_gets_a_private_explanation(bot: Bot) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "name": "alice"},
        "team": {"id": "T0SANDBOX"},
        "container": {"type": "message", "channel_id": "C0GENERAL", "message_ts": "1.1"},
        "channel": {"id": "C0GENERAL"},
        "trigger_id": bot.slack.issue_trigger("U0ALICE"),
        "actions": [{"action_id": "card.approve", "value": "1|gone|42", "type": "button", "block_id": "b"}],
    }
    body = "payload=" + quote(json.dumps(payload))
    reply = await bot.slack.send_raw(bot.url, body, bot.slack.signed_headers(body))
    assert reply.status == 200
    text = await bot.wait_private("alice", "no longer configured")
    assert "Nothing was changed" in text


async def test_unknown_subcommand_answers_with_help(bot: Bot) -> None:
    await bot.command("alice", "frobnicate now")
    text = await bot.wait_private("alice", "frobnicate")
    assert "/approvals connect NAME" in text


async def test_healthz_and_metrics(bot: Bot) -> None:
    base = bot.url.removesuffix("/slack/events")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["store"] == "ok"
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert "approvals_sync_runs_total" in await response.text()


async def test_healthz_is_503_when_the_store_is_unreachable(
    tmp_path: Path, secret_key: str, slack: SlackSandbox
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    running = await start_bot(
        database_url=f"sqlite+aiosqlite:///{folder / 'approvals.db'}",
        secret_key=secret_key,
        slack=slack,
        connectors=[],
    )
    try:
        await running.runtime.db.engine.dispose()
        shutil.rmtree(folder)
        base = running.url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
            assert response.status == 503
            assert (await response.json())["store"] == "unreachable"
    finally:
        await running.stop()
