"""Who may do what, as people meet it in Slack: each test fails when its check is removed.

- Approval Path "Cancel path": the vendor checks only the app key, so the bot lets only the path's
  requester or one of its approvers (or an admin) cancel; a stranger's click reaches no vendor.
- /approvals subscribe and unsubscribe: an identity for the connector and membership of the
  channel, or an admin.
- /approvals status detail for admins only; /healthz detail for loopback callers or the token.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.authz import health_detail_allowed
from bot.ids import ViewId
from bot.sandbox.slack_api import Channel, SlackSandbox
from bot.server import build_web
from connectors.approval_path.sandbox import ACCOUNTS, ApprovalPathSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.people import ALICE, BOB, CAROL, DAVE
from store import audit
from store.models import SubscriptionRow
from tests.harness import Bot, connector_config, link_flexdeploy, start_bot, start_flexdeploy_bot
from tests.running import started, stopping

LEADS = "S0LEADS"  # a Slack user group named in [slack] admins; Dave is in it


@pytest.fixture
async def paths() -> AsyncIterator[ApprovalPathSandbox]:
    sandbox = ApprovalPathSandbox()
    # The app key accepts any Jira user as performer: only the bot stands between a click and a delete.
    sandbox.performer_group = None
    sandbox.jira.add_project("OPS")  # before the bot reads connector_settings (its jql names the projects)
    # Jira will not list group members to the bot: a group step's card goes to the channel, where
    # anyone can click it.
    sandbox.jira.browse_users = False
    async with started(sandbox):
        yield sandbox


@pytest.fixture
async def ap_bot(
    db_url: str, secret_key: str, slack: SlackSandbox, paths: ApprovalPathSandbox
) -> AsyncIterator[Bot]:
    slack.usergroups[LEADS] = frozenset({DAVE.slack_id})
    bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config("paths", "approval_path", paths.connector_settings(), channel="C0APPROVALS")
        ],
        admins=[LEADS],
    )
    async with stopping(bot):
        yield bot


def _seed_path(paths: ApprovalPathSandbox, summary: str) -> str:
    """A path on a new issue, started by Bob: Alice and a release group decide in parallel (the
    group step puts a copy of the card in the connector's channel, where everyone sees it)."""
    group = paths.add_group(f"release {summary}", [ALICE])
    definition = paths.add_definition(
        f"Change for {summary}",
        [paths.user_step(ALICE, parallel=1), paths.group_step(group, parallel=1)],
        project="OPS",
    )
    issue = paths.add_issue("OPS", summary)
    return f"{issue}:{paths.start_path(issue, definition, by=BOB)}"


async def _cancel(bot: Bot, user: str, summary: str) -> None:
    card = bot.card("C0APPROVALS", summary)
    await bot.click(user, card, "Cancel path")
    await bot.slack.wait_for(lambda: bot.slack.open_modals(user), what="the cancel modal")
    result = await bot.slack.submit_view(bot.url, user=user, values={})
    assert result.closed, result.text
    await bot.wait_card(card, "Cancelled")


async def test_a_stranger_cannot_cancel_a_path_and_nothing_reaches_the_vendor(
    ap_bot: Bot, paths: ApprovalPathSandbox
) -> None:
    _seed_path(paths, "Deploy payments")
    await ap_bot.poll()
    card = ap_bot.card("C0APPROVALS", "Deploy payments")
    deletes_before = [r for r in paths.requests if r[0] == "DELETE"]
    await ap_bot.click("carol", card, "Cancel path")
    text = await ap_bot.wait_private("carol", "Only")
    assert "the path's requester or one of its approvers" in text
    assert "this bot's admins (@group)" in text, "the refusal names who else may: the admins"
    assert "nothing was sent to Approval Path" in text
    assert not ap_bot.slack.open_modals("carol"), "no form opened for someone who may not cancel"
    assert paths.decisions == []
    assert [r for r in paths.requests if r[0] == "DELETE"] == deletes_before
    assert "[Cancel path]" in ap_bot.slack.messages[(card.channel, card.ts)].render(), "the card is untouched"
    refused = [r async for r in audit.records(ap_bot.runtime.db) if r.outcome == "refused"]
    assert [(r.slack_user, r.action, r.reason, r.via) for r in refused] == [
        (CAROL.slack_id, "cancel", "not_permitted", f"{card.channel}/{card.ts}")
    ]


async def test_the_requester_and_an_approver_may_cancel(ap_bot: Bot, paths: ApprovalPathSandbox) -> None:
    _seed_path(paths, "Rotate keys")
    _seed_path(paths, "Resize cluster")
    await ap_bot.poll()
    await _cancel(ap_bot, "bob", "Rotate keys")  # Bob started the path
    await _cancel(ap_bot, "alice", "Resize cluster")  # Alice is its approver
    assert [(d[1], d[2]) for d in paths.decisions] == [
        ("cancel", ACCOUNTS[BOB.email]),
        ("cancel", ACCOUNTS[ALICE.email]),
    ]


async def test_an_admin_through_a_user_group_may_cancel(ap_bot: Bot, paths: ApprovalPathSandbox) -> None:
    _seed_path(paths, "Drop old tables")
    await ap_bot.poll()
    await _cancel(ap_bot, "dave", "Drop old tables")  # neither requester nor approver, but in S0LEADS
    assert [(d[1], d[2]) for d in paths.decisions] == [("cancel", ACCOUNTS[DAVE.email])]
    assert ap_bot.slack.calls_to("usergroups.users.list"), "the group's members were asked of Slack"


# ---- /approvals subscribe and unsubscribe ------------------------------------------------------------

SECRET = "C0SECRET"  # a public channel Bob is in, Alice is not


@pytest.fixture
async def fd_bot(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> AsyncIterator[Bot]:
    slack.add_channel(Channel(SECRET, "secret", members=frozenset({BOB.slack_id, CAROL.slack_id})))
    bot = await start_flexdeploy_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, fd=fd, admins=[DAVE.slack_id]
    )
    async with stopping(bot):
        yield bot


async def _subscriptions(bot: Bot) -> list[tuple[str, str]]:
    async with bot.runtime.db.session() as s:
        return [(r.connector, r.channel) for r in (await s.exec(select(SubscriptionRow))).all()]


async def test_subscribe_needs_an_identity_for_the_connector(fd_bot: Bot) -> None:
    await fd_bot.command("mallory", "subscribe deploys <#C0GENERAL|general>")
    text = await fd_bot.wait_private("mallory", "Nothing was changed")
    assert "no working FlexDeploy identity" in text
    assert "/approvals connect deploys" in text
    assert "Admins of this bot may always do it" in text, "the refusal names the admins"
    assert await _subscriptions(fd_bot) == []
    assert not [m for m in fd_bot.slack.messages_in("C0GENERAL") if "subscribed by" in m.render()]


async def test_subscribe_needs_membership_of_the_channel(fd_bot: Bot, fd: FlexDeploySandbox) -> None:
    await link_flexdeploy(fd_bot, fd, "alice")
    await fd_bot.command("alice", f"subscribe deploys <#{SECRET}|secret>")
    text = await fd_bot.wait_private("alice", "Nothing was changed")
    assert "You are not a member of" in text
    assert await _subscriptions(fd_bot) == []
    assert fd_bot.slack.calls_to("conversations.members")
    # Bob, linked and in the channel, may.
    await link_flexdeploy(fd_bot, fd, "bob")
    await fd_bot.command("bob", f"subscribe deploys <#{SECRET}|secret>")
    await fd_bot.wait_private("bob", "now follows")
    assert await _subscriptions(fd_bot) == [("deploys", SECRET)]


async def test_unsubscribe_follows_the_same_rule_and_admins_may_always(
    fd_bot: Bot, fd: FlexDeploySandbox
) -> None:
    await link_flexdeploy(fd_bot, fd, "bob")
    await fd_bot.command("bob", f"subscribe deploys <#{SECRET}|secret>")
    await fd_bot.wait_private("bob", "now follows")
    await fd_bot.command("mallory", f"unsubscribe deploys <#{SECRET}>")
    await fd_bot.wait_private("mallory", "no working FlexDeploy identity")
    await link_flexdeploy(fd_bot, fd, "alice")
    await fd_bot.command("alice", f"unsubscribe deploys <#{SECRET}>")
    await fd_bot.wait_private("alice", "not a member")
    assert await _subscriptions(fd_bot) == [("deploys", SECRET)], "refused unsubscribes changed nothing"
    # Dave: an admin, with no FlexDeploy link and not in the channel.
    await fd_bot.command("dave", f"unsubscribe deploys <#{SECRET}>")
    await fd_bot.wait_private("dave", "no longer follows")
    assert await _subscriptions(fd_bot) == []
    await fd_bot.command("dave", f"subscribe deploys <#{SECRET}|secret>")
    await fd_bot.wait_private("dave", "now follows")
    assert await _subscriptions(fd_bot) == [("deploys", SECRET)]
    reasons = sorted([(r.slack_user, r.action, r.reason) async for r in audit.records(fd_bot.runtime.db)])
    assert reasons == [
        (ALICE.slack_id, "unsubscribe", "not_permitted"),
        ("U0MALLORY", "unsubscribe", "not_linked"),
    ]


# ---- /approvals status ---------------------------------------------------------------------------------


async def test_status_detail_only_for_admins(fd_bot: Bot, fd: FlexDeploySandbox) -> None:
    fd.fail_next("500", count=40)
    await fd_bot.runtime.poll_once()
    await fd_bot.command("alice", "status")
    summary = await fd_bot.wait_private("alice", "failing")
    assert "deploys" in summary
    assert "500" not in summary and "sync(s)" not in summary, "no vendor error text for non-admins"
    assert "admins" in summary
    await fd_bot.command("dave", "status")
    detail = await fd_bot.wait_private("dave", "failing for")
    assert "Last good sync" in detail


# ---- /healthz ---------------------------------------------------------------------------------------


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (a caller from there is not loopback)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.255", 9))  # no packet is sent: this only picks the outgoing interface
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.mark.parametrize(
    ("remote", "authorization", "token", "detail"),
    [
        ("127.0.0.1", None, None, True),
        ("::1", None, None, True),
        ("::ffff:127.0.0.1", None, None, True),
        ("127.0.0.1", None, "s3cret", True),  # DESIGN: loopback callers, or callers with the token
        ("203.0.113.9", None, None, False),
        ("203.0.113.9", "Bearer s3cret", None, False),  # no token configured: none accepted
        ("203.0.113.9", "Bearer s3cret", "s3cret", True),
        ("203.0.113.9", "bearer s3cret", "s3cret", True),
        ("203.0.113.9", "Bearer wrong", "s3cret", False),
        ("203.0.113.9", "Basic s3cret", "s3cret", False),
        ("203.0.113.9", "Bearer ", "s3cret", False),
        (None, "Bearer s3cret", "s3cret", True),
        (None, None, "s3cret", False),
        ("not-an-address", None, None, False),
    ],
)
def test_who_sees_health_detail(
    remote: str | None, authorization: str | None, token: str | None, detail: bool
) -> None:
    assert health_detail_allowed(remote=remote, authorization=authorization, token=token) is detail


async def _serve_health(bot: Bot, token: str | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_web(bot.runtime, slack=False, healthz_token=token), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", 0).start()
    return runner, int(runner.addresses[0][1])


async def test_healthz_detail_only_for_loopback_or_the_token(fd_bot: Bot, fd: FlexDeploySandbox) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to call /healthz from")
    fd.fail_next("500", count=40)
    await fd_bot.runtime.poll_once()
    runner, port = await _serve_health(fd_bot, "health-token-123")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                inside = await answer.json()
            async with http.get(f"http://{outside}:{port}/healthz") as answer:
                anyone = await answer.json()
                anyone_status = answer.status
            async with http.get(
                f"http://{outside}:{port}/healthz", headers={"Authorization": "Bearer wrong"}
            ) as answer:
                wrong = await answer.json()
            async with http.get(
                f"http://{outside}:{port}/healthz", headers={"Authorization": "Bearer health-token-123"}
            ) as answer:
                monitor = await answer.json()
    finally:
        await runner.cleanup()
    assert inside["connectors"]["deploys"]["failures"] >= 1
    assert monitor["connectors"]["deploys"]["error"]
    assert anyone == wrong == {"ok": True, "status": "ok"}, "only ok or not ok, no connector detail"
    assert anyone_status == 200
    assert "deploys" not in json.dumps(anyone)


async def test_app_home_shows_connector_detail_only_to_admins(fd_bot: Bot, fd: FlexDeploySandbox) -> None:
    fd.fail_next("500", count=40)
    await fd_bot.runtime.poll_once()
    for user in ("alice", "dave"):
        await fd_bot.slack.open_home(fd_bot.url, user=user)

    def home(user: str) -> str:
        view = fd_bot.slack.home.get(user)
        return json.dumps(view) if view and "failing" in json.dumps(view) else ""

    alice = await fd_bot.slack.wait_for(lambda: home(ALICE.slack_id), what="Alice's Home")
    dave = await fd_bot.slack.wait_for(lambda: home(DAVE.slack_id), what="Dave's Home")
    assert "failing" in alice and "failing for" not in alice
    assert "failing for" in dave


async def test_a_forged_cancel_form_is_refused_too(ap_bot: Bot, paths: ApprovalPathSandbox) -> None:
    """The check sits on the decision path, not only on the button: a signed view_submission for
    the cancel form, sent without the button's modal ever opening, is refused the same way."""
    external_id = _seed_path(paths, "Archive logs")
    await ap_bot.poll()
    person = ap_bot.slack.person("carol")
    payload = {
        "type": "view_submission",
        "user": {
            "id": person.slack_id,
            "username": person.handle,
            "name": person.handle,
            "team_id": "T0SANDBOX",
        },
        "team": {"id": "T0SANDBOX"},
        "api_app_id": "A0APPROVALS",
        "view": {
            "id": "V0FORGED",
            "type": "modal",
            "callback_id": ViewId.DECIDE.value,
            "private_metadata": json.dumps(
                {"c": "paths", "i": external_id, "a": "cancel", "ch": "C0APPROVALS"}
            ),
            "state": {"values": {}},
        },
    }
    body = urlencode({"payload": json.dumps(payload)})
    reply = await ap_bot.slack.send_raw(ap_bot.url, body, ap_bot.slack.signed_headers(body))
    assert reply.status == 200
    text = await ap_bot.wait_private("carol", "Only")
    assert "the path's requester or one of its approvers" in text
    assert paths.decisions == []
    refused = [r async for r in audit.records(ap_bot.runtime.db) if r.reason == "not_permitted"]
    assert [(r.slack_user, r.via) for r in refused] == [(CAROL.slack_id, "C0APPROVALS")]
