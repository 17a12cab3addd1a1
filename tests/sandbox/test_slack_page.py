"""The Slack sandbox's page, at the HTTP level: what a browser reads, and what it is told live.

The browser tests (tests/browser) drive the same endpoints through Chromium; these run in the quick
suite and pin the protocol: state per viewer, change events, refusal banners, signed forwarding.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_api import SlackSandbox

CARD: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Deploy <web> & more"}},
    {
        "type": "actions",
        "block_id": "act",
        "elements": [
            {
                "type": "button",
                "action_id": "card.approve",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "overflow",
                "action_id": "more",
                "options": [
                    {"text": {"type": "plain_text", "text": "Snooze"}, "value": "snooze"},
                    {"text": {"type": "plain_text", "text": "Open"}, "value": "open"},
                ],
            },
        ],
    },
]


@pytest.fixture
def sandbox(slack: SlackSandbox) -> SlackSandbox:
    """The Slack sandbox of tests/conftest.py, under the name these tests use."""
    return slack


@pytest.fixture
async def api(sandbox: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=sandbox.token, base_url=sandbox.api_url)


async def test_the_page_and_its_assets_are_served(sandbox: SlackSandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sandbox.url}/") as page:
            assert page.status == 200
            html = await page.text()
        assert '<script src="/assets/app.js">' in html and "http" not in html.split("<body>")[1]
        for asset in ("app.js", "app.css"):
            async with http.get(f"{sandbox.url}/assets/{asset}") as answer:
                assert answer.status == 200
        async with http.get(f"{sandbox.url}/assets/..%2Fslack_api.py") as answer:
            assert answer.status == 404


async def test_state_is_per_viewer_with_unread_marks_and_private_messages(
    sandbox: SlackSandbox, api: AsyncWebClient
) -> None:
    card = await api.chat_postMessage(channel="C0DEPLOYS", text="card", blocks=CARD)
    await api.chat_postEphemeral(channel="C0DEPLOYS", user="U0ALICE", text="only for alice")
    await api.chat_postMessage(channel="C0DEPLOYS", thread_ts=card["ts"], text="quiet reply")
    await api.chat_postMessage(channel="C0DEPLOYS", thread_ts=card["ts"], text="loud", reply_broadcast=True)
    alice = sandbox.page_state(sandbox.person("alice"))
    bob = sandbox.page_state(sandbox.person("bob"))
    deploys = next(c for c in alice["conversations"] if c["id"] == "C0DEPLOYS")
    assert deploys["unread"] == 3  # the card, the private message, the reply also sent to the channel
    shown = alice["messages"]["C0DEPLOYS"]
    assert [m["text"] for m in shown] == ["card", "only for alice", "quiet reply", "loud"]
    assert [(m["replies"], m["broadcast"]) for m in shown] == [(2, False), (0, False), (0, False), (0, True)]
    assert [m["text"] for m in bob["messages"]["C0DEPLOYS"]] == ["card", "quiet reply", "loud"]
    assert alice["names"]["U0ALICE"] == "alice"  # mentions read "@alice", as the README says
    assert any(c["kind"] == "dm" and c["id"] == sandbox.dm_channel("alice") for c in alice["conversations"])


async def test_a_refused_post_becomes_a_banner_and_every_change_is_announced(
    sandbox: SlackSandbox, api: AsyncWebClient
) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox.url}/app/events") as stream:
        assert (await stream.content.readline()).startswith(b"event: hello")
        await stream.content.readline()
        await stream.content.readline()
        with pytest.raises(SlackApiError):
            await api.chat_postMessage(
                channel="C0DEPLOYS",
                text="t",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            )
        assert await asyncio.wait_for(stream.content.readline(), 5) == b"event: change\n"
    [banner] = sandbox.page_state(sandbox.person("alice"))["banners"]
    assert banner["method"] == "chat.postMessage" and banner["error"] == "invalid_blocks"
    assert any("3000" in line for line in banner["detail"])


async def test_an_overflow_choice_reaches_the_app_signed_and_shaped_like_slack(
    sandbox: SlackSandbox, api: AsyncWebClient
) -> None:
    received: list[dict[str, Any]] = []

    async def slack_events(request: web.Request) -> web.Response:
        body = await request.text()
        assert SignatureVerifier(sandbox.signing_secret).is_valid_request(body, dict(request.headers))
        form = await request.post()
        received.append(json.loads(str(form["payload"])))
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sandbox.bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        posted = await api.chat_postMessage(channel="C0DEPLOYS", text="card", blocks=CARD)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{sandbox.url}/app/action",
                json={
                    "user": "U0BOB",
                    "where": "message",
                    "channel": "C0DEPLOYS",
                    "ts": posted["ts"],
                    "block_id": "act",
                    "action_id": "more",
                    "selected": "snooze",
                },
            ) as answer:
                assert (await answer.json())["problem"] is None
            async with http.post(
                f"{sandbox.url}/app/action",
                json={
                    "user": "U0BOB",
                    "where": "message",
                    "channel": "C0DEPLOYS",
                    "ts": posted["ts"],
                    "block_id": "act",
                    "action_id": "gone",
                },
            ) as answer:
                assert answer.status == 400
                assert "nothing 'gone'" in (await answer.json())["problem"]
    finally:
        await runner.cleanup()
    [payload] = received
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB"
    [action] = payload["actions"]
    assert action["selected_option"]["value"] == "snooze"
    assert payload["container"]["message_ts"] == posted["ts"]
    assert str(payload["response_url"]).startswith(f"{sandbox.url}/response/")
