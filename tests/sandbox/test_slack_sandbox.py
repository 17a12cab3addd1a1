"""The Slack sandbox behaves like Slack toward an app.

Driven with slack_sdk's real AsyncWebClient (Web API side) and a small real Bolt AsyncApp served by
aiohttp (client side: signed clicks, submissions, commands and events), all over 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.render import blocks_to_text, mrkdwn_to_text
from bot.sandbox.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, Channel, SandboxError, SlackSandbox


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:  # 2023-11-14, CET in Berlin
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[SlackSandbox]:
    async with SlackSandbox(clock=clock) as sb:
        yield sb


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def slack(sandbox: SlackSandbox, session: aiohttp.ClientSession) -> AsyncWebClient:
    return AsyncWebClient(token=sandbox.token, base_url=sandbox.api_url, session=session)


def button(label: str, action_id: str, value: str = "1|deploys|42", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
        **extra,
    }


CARD: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Deploy web-1.2 to prod"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Release gate* requested by Dave"}},
    {
        "type": "actions",
        "block_id": "card|42",
        "elements": [
            button("Approve", "card.approve", style="primary"),
            button("Reject", "card.reject", style="danger"),
            button("Open in FlexDeploy", "card.open", url="https://fd.example.com/tasks/42"),
        ],
    },
]

DECIDE_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "decide",
    "title": {"type": "plain_text", "text": "Reject"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "private_metadata": "1|deploys|42",
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "severity",
            "label": {"type": "plain_text", "text": "Severity"},
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "Low"}, "value": "low"},
                    {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "reviewer",
            "optional": True,
            "label": {"type": "plain_text", "text": "Reviewer"},
            "element": {"type": "users_select", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "flags",
            "optional": True,
            "label": {"type": "plain_text", "text": "Flags"},
            "element": {
                "type": "checkboxes",
                "action_id": "value",
                "options": [{"text": {"type": "plain_text", "text": "Urgent"}, "value": "urgent"}],
            },
        },
    ],
}


@dataclass
class Bot:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return [b for b in self.seen if b.get("type") == kind or b.get("command") == kind]


@pytest.fixture
async def bot(sandbox: SlackSandbox, slack: AsyncWebClient) -> AsyncIterator[Bot]:
    """A small real Bolt app: verifies signatures, calls auth.test and the Web API on the sandbox."""
    app = AsyncApp(client=slack, signing_secret=sandbox.signing_secret)
    harness = Bot(url="")

    @app.action("card.approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        harness.seen.append(body)
        await respond(replace_original=True, text="Approved", blocks=[CARD[0], _section("Approved by Alice")])

    @app.action("card.reject")
    async def reject(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        harness.seen.append(body)
        await client.views_open(trigger_id=body["trigger_id"], view=DECIDE_MODAL)

    @app.action("eph.ok")
    @app.action("home.refresh")
    async def plain(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        harness.seen.append(body)
        if body.get("response_url"):
            await respond(replace_original=True, text="Done")

    @app.view("decide")
    async def decide(ack: Any, body: dict[str, Any]) -> None:
        harness.seen.append(body)
        reason = body["view"]["state"]["values"]["reason"]["value"]["value"]
        if reason == "bad":
            await ack(response_action="errors", errors={"reason": "Say a little more"})
        else:
            await ack()

    @app.command("/approvals")
    async def command(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack("Looking…")
        harness.seen.append(body)
        await respond(
            text="Your approvals", blocks=[_section("Nothing waits"), _actions(button("OK", "eph.ok"))]
        )

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        harness.seen.append(event)
        view = {
            "type": "home",
            "blocks": [_section("Pending: 0"), _actions(button("Refresh", "home.refresh"))],
        }
        await client.views_publish(user_id=event["user"], view=view)

    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    harness.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    sandbox.bot_url = harness.url
    try:
        yield harness
    finally:
        await runner.cleanup()


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


async def _error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


# ---- Web API ---------------------------------------------------------------------------------------------


async def test_auth_test_names_the_bot_and_its_scopes(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    response = await slack.auth_test()
    assert (response["user_id"], response["bot_id"], response["team_id"]) == (BOT_USER_ID, BOT_ID, TEAM_ID)
    assert response["url"] == f"{sandbox.url}/"
    assert "users:read.email" in response.headers["x-oauth-scopes"].split(",")

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=sandbox.api_url, session=slack.session)
    assert (await _error(wrong.auth_test())).response["error"] == "invalid_auth"


async def test_post_and_update_keep_current_state_and_history(
    sandbox: SlackSandbox, slack: AsyncWebClient
) -> None:
    seen: list[tuple[str, str]] = []
    sandbox.on_post = lambda channel, ts, text, blocks, kind: seen.append((kind, blocks_to_text(blocks)))
    posted = await slack.chat_postMessage(channel="C0DEPLOYS", text="Deploy web-1.2", blocks=CARD)
    assert posted["channel"] == "C0DEPLOYS" and posted["message"]["bot_id"] == BOT_ID
    ts = posted["ts"]
    stored = sandbox.messages[("C0DEPLOYS", ts)]
    assert all(b.get("block_id") for b in stored.blocks)  # Slack fills in block ids

    reply = await slack.chat_postMessage(channel="C0DEPLOYS", text="thread reply", thread_ts=ts)
    assert sandbox.messages[("C0DEPLOYS", reply["ts"])].thread_ts == ts

    await slack.chat_update(channel="C0DEPLOYS", ts=ts, text="Approved", blocks=[_section("Approved")])
    await slack.chat_update(channel="C0DEPLOYS", ts=ts, text="Only text now")
    assert stored.text == "Only text now" and stored.blocks == []  # text without blocks drops the old blocks
    assert [r.text for r in stored.history] == ["Deploy web-1.2", "Approved"]
    assert [k for k, _ in seen] == ["post", "post", "update", "update"]
    assert "[Approve] [Reject]" in seen[0][1]
    assert [c.args["channel"] for c in sandbox.calls_to("chat.update")] == ["C0DEPLOYS", "C0DEPLOYS"]


async def test_dm_to_a_user_id_lands_in_a_stable_d_channel(
    sandbox: SlackSandbox, slack: AsyncWebClient
) -> None:
    posted = await slack.chat_postMessage(channel="U0ALICE", text="card", blocks=CARD)
    dm = sandbox.dm_channel("alice")
    assert posted["channel"] == dm and dm.startswith("D")
    sandbox.scopes.discard("im:write")
    error = await _error(slack.conversations_open(users="U0ALICE"))
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "im:write")
    sandbox.scopes.add("im:write")  # the bot asks for it: a DM's id, to read its history after a crash
    assert (await slack.conversations_open(users="U0ALICE"))["channel"]["id"] == dm
    # chat.update needs the D… id, as in Slack; the user id it was posted to does not work.
    error = await _error(slack.chat_update(channel="U0ALICE", ts=posted["ts"], text="x"))
    assert error.response["error"] == "channel_not_found"
    await slack.chat_update(channel=dm, ts=posted["ts"], text="updated")
    assert sandbox.messages_in("U0ALICE")[0].text == "updated"
    assert (await _error(slack.conversations_open(users="U0NOBODY"))).response["error"] == "user_not_found"


@pytest.mark.parametrize(
    ("payload", "error", "detail"),
    [
        ({"channel": "C0NOTMEMBER", "text": "hi"}, "not_in_channel", None),
        ({"channel": "C0NOPE", "text": "hi"}, "channel_not_found", None),
        ({"channel": "C0GENERAL"}, "no_text", None),
        ({"channel": "C0GENERAL", "text": "x" * 40_001}, "msg_too_long", None),
        ({"channel": "C0GENERAL", "text": "t", "blocks": [_section("x")] * 51}, "invalid_blocks", "50 items"),
        ({"channel": "C0GENERAL", "text": "t", "blocks": [_section("x" * 3001)]}, "invalid_blocks", "3000"),
        (
            {"channel": "C0GENERAL", "text": "t", "blocks": [{"type": "section", "text": "bare"}]},
            "invalid_blocks",
            "must be an object",
        ),
        (
            {"channel": "C0GENERAL", "text": "t", "blocks": [{"type": "sparkles"}]},
            "invalid_blocks",
            "unsupported",
        ),
        (
            {"channel": "C0GENERAL", "text": "t", "blocks": [{"type": "divider", "elements": []}]},
            "invalid_blocks",
            "additional property",
        ),
    ],
)
async def test_post_message_is_validated_like_slack(
    sandbox: SlackSandbox,
    session: aiohttp.ClientSession,
    payload: dict[str, Any],
    error: str,
    detail: str | None,
) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    async with session.post(f"{sandbox.api_url}chat.postMessage", json=payload, headers=headers) as response:
        body = await response.json()
    assert body["ok"] is False and body["error"] == error
    if detail:
        assert detail in " ".join(body["errors"])
    assert sandbox.messages == {}


async def test_update_refuses_unknown_and_foreign_messages(
    sandbox: SlackSandbox, slack: AsyncWebClient
) -> None:
    assert (await _error(slack.chat_update(channel="C0GENERAL", ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    theirs = sandbox.post_as_user("C0GENERAL", "bob", "hello")
    error = await _error(slack.chat_update(channel="C0GENERAL", ts=theirs.ts, text="x"))
    assert error.response["error"] == "cant_update_message"
    mine = await slack.chat_postMessage(channel="C0GENERAL", text="short-lived")
    await slack.chat_delete(channel="C0GENERAL", ts=mine["ts"])
    error = await _error(slack.chat_update(channel="C0GENERAL", ts=mine["ts"], text="x"))
    assert error.response["error"] == "message_not_found"


async def test_conversation_scopes_and_joining(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    sandbox.scopes.discard("channels:read")
    error = await _error(slack.conversations_info(channel="C0NOTMEMBER"))
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "channels:read")
    sandbox.scopes |= {"channels:read", "channels:join"}
    assert (await slack.conversations_info(channel="C0NOTMEMBER"))["channel"]["is_member"] is False
    await slack.conversations_join(channel="C0NOTMEMBER")
    assert (await slack.chat_postMessage(channel="#not-member", text="now I can"))["channel"] == "C0NOTMEMBER"


async def test_ephemeral_needs_a_member_and_cannot_be_updated(
    sandbox: SlackSandbox, slack: AsyncWebClient
) -> None:
    sandbox.add_channel(Channel("C0SMALL", "small", members=frozenset({"U0ALICE"})))
    error = await _error(slack.chat_postEphemeral(channel="C0SMALL", user="U0BOB", text="psst"))
    assert error.response["error"] == "user_not_in_channel"
    posted = await slack.chat_postEphemeral(channel="C0SMALL", user="U0ALICE", text="psst")
    [ephemeral] = sandbox.ephemerals_for("alice")
    assert (ephemeral.channel, ephemeral.text, ephemeral.source) == ("C0SMALL", "psst", "api")
    # Slack: ephemerals cannot be edited with chat.update, only through a response_url.
    error = await _error(slack.chat_update(channel="C0SMALL", ts=posted["message_ts"], text="x"))
    assert error.response["error"] == "message_not_found"


async def test_users_info_email_depends_on_scope(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    user = (await slack.users_info(user="U0ALICE"))["user"]
    assert user["profile"]["email"] == "alice@example.com"
    assert (user["tz"], user["tz_label"], user["tz_offset"]) == (
        "Europe/Berlin",
        "Central European Time",
        3600,
    )
    assert (await slack.users_lookupByEmail(email="BOB@example.com"))["user"]["id"] == "U0BOB"
    error = await _error(slack.users_lookupByEmail(email="nobody@example.com"))
    assert error.response["error"] == "users_not_found"

    sandbox.scopes.discard("users:read.email")
    assert "email" not in (await slack.users_info(user="U0ALICE"))["user"]["profile"]
    error = await _error(slack.users_lookupByEmail(email="bob@example.com"))
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "users:read.email")


async def test_form_get_and_unknown_methods(sandbox: SlackSandbox, session: aiohttp.ClientSession) -> None:
    auth = {"Authorization": f"Bearer {sandbox.token}"}
    form = {"channel": "C0GENERAL", "text": "from a form", "blocks": json.dumps([_section("hi")])}
    async with session.post(f"{sandbox.api_url}chat.postMessage", data=form, headers=auth) as response:
        assert (await response.json())["ok"] is True
    async with session.get(
        f"{sandbox.api_url}users.info", params={"user": "U0BOB"}, headers=auth
    ) as response:
        assert (await response.json())["user"]["name"] == "bob"
    async with session.post(
        f"{sandbox.api_url}chat.postMessage", data={**form, "token": "xoxb-nope"}
    ) as response:
        assert (await response.json())["error"] == "invalid_auth"
    async with session.post(f"{sandbox.api_url}chat.fly", headers=auth) as response:
        assert (await response.json())["error"] == "unknown_method"
    assert all("token" not in c.args for c in sandbox.calls)
    assert (
        sandbox.calls_to("chat.postMessage")[0].args["blocks"][0]["text"]["text"] == "hi"
    )  # decoded for tests
    assert sandbox.token not in repr(sandbox) and sandbox.signing_secret not in repr(sandbox)


# ---- views and triggers ---------------------------------------------------------------------------------


async def test_trigger_ids_are_single_use_and_expire(
    sandbox: SlackSandbox, slack: AsyncWebClient, clock: FakeClock
) -> None:
    trigger = sandbox.issue_trigger("alice")
    opened = (await slack.views_open(trigger_id=trigger, view=DECIDE_MODAL))["view"]
    assert (
        sandbox.views[opened["id"]].user == "U0ALICE" and sandbox.open_modals("alice")[0].id == opened["id"]
    )
    assert (await _error(slack.views_open(trigger_id=trigger, view=DECIDE_MODAL))).response[
        "error"
    ] == "exchanged_trigger_id"
    late = sandbox.issue_trigger("alice")
    clock.advance(3.1)
    assert (await _error(slack.views_open(trigger_id=late, view=DECIDE_MODAL))).response[
        "error"
    ] == "expired_trigger_id"
    assert (await _error(slack.views_open(trigger_id="123.456.abc", view=DECIDE_MODAL))).response[
        "error"
    ] == "invalid_trigger_id"
    assert await sandbox.close_view("http://127.0.0.1:9/unused", user="alice") is None  # no notify_on_close
    assert sandbox.views[opened["id"]].closed_by == "user" and sandbox.open_modals("alice") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"blocks": [_section("x")] * 101}, "100 items"),
        ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
        ({"submit": None}, "submit property"),
    ],
)
async def test_modals_are_validated(
    sandbox: SlackSandbox, slack: AsyncWebClient, change: dict[str, Any], message: str
) -> None:
    view = {k: v for k, v in {**DECIDE_MODAL, **change}.items() if v is not None}
    error = await _error(slack.views_open(trigger_id=sandbox.issue_trigger("alice"), view=view))
    assert error.response["error"] == "invalid_arguments"
    assert message in " ".join(error.response["response_metadata"]["messages"])


async def test_push_stack_update_and_home(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    first = (await slack.views_open(trigger_id=sandbox.issue_trigger("bob"), view=DECIDE_MODAL))["view"]
    for _ in range(2):
        await slack.views_push(trigger_id=sandbox.issue_trigger("bob"), view=DECIDE_MODAL)
    error = await _error(slack.views_push(trigger_id=sandbox.issue_trigger("bob"), view=DECIDE_MODAL))
    assert error.response["error"] == "push_limit_reached"

    updated = {**DECIDE_MODAL, "title": {"type": "plain_text", "text": "Reject (2)"}}
    await slack.views_update(view_id=first["id"], hash=first["hash"], view=updated)
    assert sandbox.views[first["id"]].title == "Reject (2)"
    stale = await _error(slack.views_update(view_id=first["id"], hash=first["hash"], view=updated))
    assert stale.response["error"] == "hash_conflict"

    home = {"type": "home", "blocks": [_section("Pending: 2")]}
    one = (await slack.views_publish(user_id="U0BOB", view=home))["view"]
    two = (await slack.views_publish(user_id="U0BOB", view={**home, "blocks": [_section("Pending: 1")]}))[
        "view"
    ]
    assert one["id"] == two["id"] and "Pending: 1" in blocks_to_text(sandbox.home["U0BOB"]["blocks"])
    wrong = await _error(slack.views_publish(user_id="U0BOB", view=DECIDE_MODAL))
    assert wrong.response["error"] == "invalid_arguments"


# ---- rate limits and faults -----------------------------------------------------------------------------


async def test_429_retry_after_is_honoured_by_slack_sdk(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    sandbox.rate_limit("chat.postMessage", times=1, retry_after=1)
    error = await _error(slack.chat_postMessage(channel="C0GENERAL", text="hi"))
    assert error.response.status_code == 429 and error.response["error"] == "ratelimited"
    assert error.response.headers["retry-after"] == "1"

    patient = AsyncWebClient(
        token=sandbox.token,
        base_url=sandbox.api_url,
        session=slack.session,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    sandbox.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    await patient.chat_postMessage(channel="C0GENERAL", text="hi")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in sandbox.calls_to("chat.postMessage")] == [429, 429, 200]
    assert sandbox.rate_limited_count == 2


async def test_injected_failure_then_success(sandbox: SlackSandbox, slack: AsyncWebClient) -> None:
    sandbox.fail("views.publish", "internal_error", times=1)
    view = {"type": "home", "blocks": [_section("x")]}
    assert (await _error(slack.views_publish(user_id="U0BOB", view=view))).response[
        "error"
    ] == "internal_error"
    assert (await slack.views_publish(user_id="U0BOB", view=view))["ok"] is True


async def test_token_bucket_per_channel_and_workspace(
    sandbox: SlackSandbox, slack: AsyncWebClient, clock: FakeClock
) -> None:
    sandbox.enforce_rates(per_channel_per_second=1.0, burst=2)
    for _ in range(2):
        await slack.chat_postMessage(channel="C0DEPLOYS", text="burst")
    error = await _error(slack.chat_postMessage(channel="C0DEPLOYS", text="too fast"))
    assert error.response.status_code == 429 and error.response.headers["retry-after"] == "1"
    await slack.chat_postMessage(channel="C0GENERAL", text="another channel is fine")
    clock.advance(1.0)
    await slack.chat_postMessage(channel="C0DEPLOYS", text="a second later")
    assert sandbox.rate_limited_count == 1

    sandbox.enforce_rates(per_channel_per_second=10, burst=1, global_per_minute=60)
    await slack.chat_postMessage(channel="C0DEPLOYS", text="one")
    error = await _error(slack.chat_postMessage(channel="C0GENERAL", text="workspace limit"))
    assert error.response.status_code == 429 and sandbox.rate_limited_count == 2


# ---- the client side against a real Bolt app ------------------------------------------------------------


async def test_click_reaches_bolt_with_slacks_payload_and_response_url_edits(
    sandbox: SlackSandbox, slack: AsyncWebClient, bot: Bot, session: aiohttp.ClientSession
) -> None:
    ts = (await slack.chat_postMessage(channel="C0DEPLOYS", text="card", blocks=CARD))["ts"]
    reply = await sandbox.click(bot.url, user="alice", channel="C0DEPLOYS", ts=ts, label="Approve")
    assert reply.status == 200
    message = sandbox.messages[("C0DEPLOYS", ts)]
    await sandbox.wait_for(lambda: message.text == "Approved", what="respond() edit")
    assert "Approved by Alice" in message.render() and message.edits == 1
    [body] = bot.bodies("block_actions")
    assert body["user"]["id"] == "U0ALICE" and body["container"]["is_ephemeral"] is False
    assert body["container"]["message_ts"] == ts and body["message"]["blocks"][2]["block_id"] == "card|42"
    assert body["actions"][0]["action_id"] == "card.approve" and body["actions"][0]["value"] == "1|deploys|42"
    assert len(sandbox.calls_to("auth.test")) == 1  # Bolt checks the token once, lazily
    assert sandbox.responses[0].replace_original is True

    # The card no longer shows buttons: a user cannot click what is not there.
    with pytest.raises(SandboxError, match="no buttons at all"):
        await sandbox.click(bot.url, user="alice", channel="C0DEPLOYS", ts=ts, label="Approve")

    # A response_url takes 5 uses (respond() used one), then Slack answers 404.
    url = body["response_url"]
    answers = [
        {"text": "Alice approved the deploy", "response_type": "in_channel"},
        {"text": "only for Alice"},
        {"delete_original": True},
        {"text": "and again"},
        {"text": "one too many"},
    ]
    statuses = []
    for answer in answers:
        async with session.post(url, json=answer) as response:
            statuses.append(response.status)
    assert statuses == [200, 200, 200, 200, 404]
    assert [m.text for m in sandbox.messages_in("C0DEPLOYS")] == ["Alice approved the deploy"]
    assert [m.ts for m in sandbox.deleted] == [ts]
    assert [e.text for e in sandbox.ephemerals_for("alice")] == ["only for Alice", "and again"]


async def test_click_in_a_dm_only_for_its_owner(
    sandbox: SlackSandbox, slack: AsyncWebClient, bot: Bot
) -> None:
    posted = await slack.chat_postMessage(channel="U0BOB", text="card", blocks=CARD)
    with pytest.raises(SandboxError, match="cannot see"):
        await sandbox.click(
            bot.url, user="alice", channel=posted["channel"], ts=posted["ts"], label="Approve"
        )
    with pytest.raises(SandboxError, match=r"shows \[Approve\] \[Reject\] \[Open in FlexDeploy\]"):
        await sandbox.click(bot.url, user="bob", channel="U0BOB", ts=posted["ts"], label="Abstain")


async def test_signatures_are_checked_by_bolt(sandbox: SlackSandbox, bot: Bot) -> None:
    body = urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})})
    tampered = body.replace("block_actions", "block_actionz")
    assert (await sandbox.send_raw(bot.url, tampered, sandbox.signed_headers(body))).status == 401
    stale = sandbox.signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    assert (await sandbox.send_raw(bot.url, body, stale)).status == 401
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await sandbox.send_raw(bot.url, body, unsigned)).status == 401
    assert bot.seen == []


async def test_modal_from_a_click_then_submission(
    sandbox: SlackSandbox, slack: AsyncWebClient, bot: Bot
) -> None:
    ts = (await slack.chat_postMessage(channel="C0DEPLOYS", text="card", blocks=CARD))["ts"]
    await sandbox.click(bot.url, user="bob", channel="C0DEPLOYS", ts=ts, label="reject")
    [modal] = await sandbox.wait_for(
        lambda: sandbox.open_modals("bob"), what="views.open with the click's trigger"
    )
    assert modal.callback_id == "decide" and modal.private_metadata == "1|deploys|42"

    with pytest.raises(SandboxError, match="required"):
        await sandbox.submit_view(bot.url, user="bob", view_id=modal.id, values={"Reason": "no severity"})
    refused = await sandbox.submit_view(bot.url, user="bob", values={"Reason": "bad", "Severity": "Low"})
    assert (refused.closed, refused.response_action) == (False, "errors")
    assert modal.open and modal.errors == {"reason": "Say a little more"}

    values = {"Reason": "Wrong build", "severity": "high", "Reviewer": "carol", "Flags": ["Urgent"]}
    done = await sandbox.submit_view(bot.url, user="bob", view_id=modal.id, values=values)
    assert done.closed and not modal.open and modal.closed_by == "submit"
    state = bot.bodies("view_submission")[-1]["view"]["state"]["values"]
    assert state["reason"]["value"] == {"type": "plain_text_input", "value": "Wrong build"}
    assert state["severity"]["value"]["selected_option"]["value"] == "high"
    assert state["reviewer"]["value"]["selected_user"] == "U0CAROL"
    assert [o["value"] for o in state["flags"]["value"]["selected_options"]] == ["urgent"]


async def test_command_ack_and_ephemeral_click(sandbox: SlackSandbox, bot: Bot) -> None:
    reply = await sandbox.command(bot.url, user="alice", text="list", channel="C0APPROVALS")
    assert reply.status == 200
    [body] = bot.bodies("/approvals")
    assert (body["user_id"], body["channel_id"], body["text"]) == ("U0ALICE", "C0APPROVALS", "list")
    menu = await sandbox.wait_for(
        lambda: [e for e in sandbox.ephemerals_for("alice") if e.source == "response_url"]
    )
    # The ack body is shown to her alone, as Slack shows it.
    assert [e.text for e in sandbox.ephemerals_for("alice") if e.source == "ack"] == ["Looking…"]

    await sandbox.click_ephemeral(
        bot.url, user="alice", index_or_predicate=lambda e: e is menu[0], label="OK"
    )
    await sandbox.wait_for(lambda: menu[0].text == "Done", what="ephemeral replaced through response_url")
    [click] = bot.bodies("block_actions")
    assert click["container"]["is_ephemeral"] is True and "message" not in click


async def test_home_tab_event_and_click(sandbox: SlackSandbox, bot: Bot) -> None:
    assert (await sandbox.open_home(bot.url, user="carol")).status == 200
    home = await sandbox.wait_for(lambda: sandbox.home.get("U0CAROL"), what="views.publish")
    assert "[Refresh]" in blocks_to_text(home["blocks"])
    await sandbox.click_home(bot.url, user="carol", label="Refresh")
    click = await sandbox.wait_for(lambda: bot.bodies("block_actions"))
    assert click[0]["container"] == {"type": "view", "view_id": home["id"]}


async def test_events_carry_retry_headers_and_a_valid_signature(sandbox: SlackSandbox) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/events", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
        event_id = sandbox.new_event_id()
        await sandbox.event(url, {"type": "app_mention", "user": "U0BOB"}, event_id=event_id)
        await sandbox.event(url, {"type": "app_mention", "user": "U0BOB"}, event_id=event_id, retry_num=1)
    finally:
        await runner.cleanup()
    verifier = SignatureVerifier(sandbox.signing_secret)
    for headers, raw in received:
        assert verifier.is_valid_request(raw, headers)
        assert json.loads(raw)["event_id"] == event_id
    assert "X-Slack-Retry-Num" not in received[0][0]
    assert (received[1][0]["X-Slack-Retry-Num"], received[1][0]["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )


# ---- the page for people, and rendering ------------------------------------------------------------------


async def test_sandbox_page_lists_messages_and_clicks(
    sandbox: SlackSandbox, slack: AsyncWebClient, bot: Bot, session: aiohttp.ClientSession
) -> None:
    ts = (await slack.chat_postMessage(channel="C0DEPLOYS", text="card", blocks=CARD))["ts"]
    async with session.get(f"{sandbox.url}/sandbox/messages") as response:
        page = await response.text()
    assert f"#deploys channel=C0DEPLOYS ts={ts}" in page
    assert "[Approve] [Reject] [Open in FlexDeploy] (https://fd.example.com/tasks/42)" in page

    click = {"user": "alice", "channel": "C0DEPLOYS", "ts": ts, "label": "Nope"}
    async with session.post(f"{sandbox.url}/sandbox/click", json=click) as response:
        assert response.status == 400 and "[Approve]" in await response.text()
    # As the demo prints it: curl -d '<json>' (which labels the JSON as a form).
    curl = {"Content-Type": "application/x-www-form-urlencoded"}
    body = json.dumps({**click, "label": "Reject"})
    async with session.post(f"{sandbox.url}/sandbox/click", data=body, headers=curl) as response:
        assert (await response.json())["status"] == 200
    await sandbox.wait_for(lambda: sandbox.open_modals("alice"), what="the Reject modal")
    async with session.get(f"{sandbox.url}/sandbox/views") as response:
        assert "Reason: [" in await response.text()
    values = {"Reason": "Wrong build", "Severity": "High"}
    body = json.dumps({"user": "alice", "values": values})
    async with session.post(f"{sandbox.url}/sandbox/submit", data=body, headers=curl) as response:
        assert (await response.json())["closed"] is True
    assert (
        bot.bodies("view_submission")[0]["view"]["state"]["values"]["severity"]["value"]["selected_option"][
            "value"
        ]
        == "high"
    )


def test_blocks_to_text_reads_like_the_card() -> None:
    blocks = [
        *CARD[:2],
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Environment*\nprod"}]},
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": ":white_check_mark: by <@U0ALICE> <https://fd.example.com/t/42|task 42>",
                }
            ],
        },
        CARD[2],
        DECIDE_MODAL["blocks"][0],
    ]
    text = blocks_to_text(blocks, names={"U0ALICE": "Alice Approver"})
    assert text.splitlines()[:2] == ["Deploy web-1.2 to prod", "=" * len("Deploy web-1.2 to prod")]
    assert "  Environment: prod" in text
    assert "✅ by @Alice Approver task 42 (https://fd.example.com/t/42)" in text
    assert "[Approve] [Reject] [Open in FlexDeploy] (https://fd.example.com/tasks/42)" in text
    assert "Reason: [" in text
    assert (
        mrkdwn_to_text("a &lt;b&gt; &amp;lt; <!date^1700000000^{date}|14 Nov> <!here>")
        == "a <b> &lt; 14 Nov @here"
    )
    header = {"type": "header", "text": {"type": "plain_text", "text": "a <b> &amp;"}}
    assert blocks_to_text([header]).startswith("a <b> &amp;\n")  # plain_text is shown literally
