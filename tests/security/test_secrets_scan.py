"""The secrets scan: every vendor's flows run through Slack against their sandboxes, then every log
line, every recorded Slack call, every database row and /metrics are searched for each credential
used (raw, base64 and url-safe base64): none may appear.

Flows: linking with credentials (a wrong secret first, then the right one), linking by email,
approving and rejecting as the person, a click by someone not linked, and a vendor failing.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.people import ALICE, BOB
from connectors.registry import SandboxSetup, specs
from tests.harness import Bot, connector_config, start_bot
from tests.security.rows import dump_rows

pytestmark = [
    pytest.mark.slow,
    # The vendor sandboxes store plain string keys on requests; aiohttp warns about that (not the bot).
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

SECRET_KEYS = {"token", "password", "api_key", "client_secret", "jira_token", "webhook_secret", "secret"}
WRONG = "typed-wrong-secret-7Q4z"


@pytest.fixture
async def sandboxes() -> AsyncIterator[dict[str, SandboxSetup]]:
    started: dict[str, SandboxSetup] = {}
    try:
        for type_name, spec in specs().items():
            if spec.demo is not None:
                started[type_name] = await spec.demo()
        yield started
    finally:
        for setup in started.values():
            await setup.stop()


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def _slack_record(slack: SlackSandbox) -> str:
    parts: list[Any] = [slack.calls, slack.ephemerals, slack.responses]
    parts += [(m.text, m.blocks, [(r.text, r.blocks) for r in m.history]) for m in slack.messages.values()]
    parts += [(v.render(), v.private_metadata) for v in slack.views.values()]
    parts += list(slack.home.values())
    return repr(parts)


async def _modal_submit(bot: Bot, user: str, values: dict[str, Any]) -> None:
    await bot.slack.wait_for(lambda: bot.slack.open_modals(user), what=f"a modal for {user}")
    await bot.slack.submit_view(bot.url, user=user, values=values)


async def test_no_credential_appears_anywhere(
    db_url: str,
    secret_key: str,
    slack: SlackSandbox,
    sandboxes: dict[str, SandboxSetup],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Loggers the CLI quiets (another test in this process may have run it): all of them at DEBUG here.
    for name in ("httpx", "httpcore", "apscheduler", "alembic", "slack_sdk", "slack_bolt", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    # aiohttp at DEBUG warns about every string request key the sandboxes use (their own business).
    caplog.set_level(logging.INFO, logger="aiohttp")
    configs = [
        connector_config(t.replace("_", "-"), t, dict(s.connector), channel="C0APPROVALS")
        for t, s in sandboxes.items()
    ]
    secrets: set[str] = {secret_key, slack.token, slack.signing_secret, WRONG}
    for setup in sandboxes.values():
        secrets |= {str(v) for k, v in setup.connector.items() if k in SECRET_KEYS and v}
    bot = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=configs)
    try:
        linked = 0
        for type_name, setup in sandboxes.items():
            name = type_name.replace("_", "-")
            connector = bot.runtime.connectors[name]
            if connector.capabilities.link_mode == "email":
                await bot.command("alice", f"connect {name}")
                await bot.wait_private("alice", "Linked by email")
                linked += 1
                continue
            secret_fields = [f for f in connector.credential_fields if f.secret]
            for person in (ALICE, BOB):
                mine = dict(setup.people.get(person.email) or {})
                secrets |= {mine[f.key] for f in secret_fields if mine.get(f.key)}
            alice = dict(setup.people[ALICE.email])
            # A wrong secret first: refused in the modal, stored nowhere.
            await bot.command("alice", f"connect {name}")
            wrong = {
                f.label: (WRONG if f.secret else alice.get(f.key, "")) for f in connector.credential_fields
            }
            await _modal_submit(bot, "alice", wrong)
            await bot.slack.wait_for(lambda: not bot.slack.open_modals("alice") or True, what="the answer")
            for view in bot.slack.open_modals("alice"):
                await bot.slack.close_view(bot.url, user="alice", view_id=view.id)
            await bot.command("alice", f"connect {name}")
            right = {f.label: alice.get(f.key, "") for f in connector.credential_fields}
            await _modal_submit(bot, "alice", right)
            await bot.wait_private("alice", f"`{name}` cards are now made")
            linked += 1
        assert linked == len(sandboxes)

        await bot.poll()
        offered = [m for m in bot.cards("U0ALICE") + bot.cards("C0APPROVALS") if "[Approve]" in m.render()]
        assert offered, "some card offers Alice a decision"
        # Someone not linked clicks a channel card first: refused, nothing sent.
        shared = [m for m in offered if m.channel == "C0APPROVALS"]
        if shared:
            await bot.click("carol", shared[0], "Approve")
            await bot.wait_private("carol", "link")
        decided = 0
        for index, card in enumerate(offered[:6]):
            label = "Reject" if index % 2 and "[Reject]" in card.render() else "Approve"
            try:
                await bot.click("alice", card, label)
            except Exception:  # a card Alice cannot see (another person's DM): skip it
                continue
            with contextlib.suppress(TimeoutError):
                (modal,) = await bot.slack.wait_for(lambda: bot.slack.open_modals("alice"), what="a modal")
                text = modal.render()
                values = {k: v for k, v in (("Reason", "not now"), ("Comment", "fine by me")) if k in text}
                await bot.slack.submit_view(bot.url, user="alice", values=values)
            decided += 1
        assert decided >= 2
        await bot.settle(timeout=20)

        # A vendor failing: every sandbox's next answers are errors for one poll.
        for setup in sandboxes.values():
            sandbox = setup.extra.get("sandbox")
            fail = getattr(sandbox, "fail_next", None)
            if callable(fail):
                fail("500", count=5)
        await bot.runtime.poll_once()
        await bot.command("alice", "status")
        await bot.command("alice", "list")
        await bot.settle(timeout=20)

        rows = await dump_rows(bot)
        base = bot.url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as answer:
                metrics = await answer.text()
            async with http.get(f"{base}/healthz") as answer:
                health = await answer.text()
        logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + caplog.text
        places = {
            "log": logged,
            "slack": _slack_record(slack),
            "database": rows,
            "metrics": metrics,
            "healthz": health,
        }
        hits = [
            f"{where}: {secret[:6]}… (as {form[:6]}…)"
            for secret in sorted(secrets)
            if len(secret) >= 8
            for form in _forms(secret)
            for where, text in places.items()
            if form in text
        ]
        assert hits == []
        # The places searched are the real ones, not empty strings.
        assert "HTTP Request" in logged and "chat.postMessage" in places["slack"] and "# HELP" in metrics
        assert len([s for s in secrets if len(s) >= 8]) >= 12, "the scan looked for every credential used"
        assert "identities" in rows and "decisions" in rows
    finally:
        await bot.stop()
