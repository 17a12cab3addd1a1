"""Herzum with `require_password`: the password typed for one decision passes through Slack, is
sent to Jira for that decision, and is never stored or logged; a mistyped one says so and leaves
the person's link alone."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from tests.contract.kits.herzum import HerzumKit
from tests.harness import connector_config, start_bot
from tests.running import started
from tests.security.rows import dump_rows

TYPED = "alice-jira-password"  # her real Jira password, typed in the decision modal
MISTYPED = "alice-jira-passw0rd-typo"


@pytest.fixture
async def kit() -> AsyncIterator[HerzumKit]:
    k = HerzumKit()
    k.sandbox.require_password = True
    async with started(k):
        yield k


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


async def test_a_mistyped_password_says_so_keeps_the_link_and_no_password_is_stored(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HerzumKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "slack_sdk", "slack_bolt"):  # loggers the CLI quiets
        caplog.set_level(logging.DEBUG, logger=name)
    external_id = await kit.seed_pending()
    bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config(
                "approvals",
                "herzum",
                kit.sandbox.connector_settings(require_password=True),
                channel="C0APPROVALS",
            )
        ],
        instances={"approvals": kit.build(require_password=True)},
    )
    try:
        # Alice links with her personal access token, so her password is nowhere but in her head.
        await bot.command("alice", "connect approvals")
        await slack.wait_for(lambda: slack.open_modals("alice"), what="the connect modal")
        pat = kit.sandbox.credentials("alice", token=True)["secret"]
        result = await slack.submit_view(
            bot.url, user="alice", values={"Jira username": "alice", "Password or personal access token": pat}
        )
        assert result.closed
        await bot.wait_private("alice", "Linked")
        await bot.poll()
        card = bot.card("U0ALICE", "Contract change")

        await bot.click("alice", card, "Approve")
        (modal,) = await slack.wait_for(lambda: slack.open_modals("alice"), what="the password modal")
        text = modal.render()
        assert "passes through Slack" in text and "never stores" in text, text
        assert "cannot hide what you type" in text
        result = await slack.submit_view(bot.url, user="alice", values={"Your Jira password": MISTYPED})
        assert result.closed
        answer = await bot.wait_private("alice", "password you typed")
        assert "Your linked account is unchanged" in answer
        identity = await bot.runtime.store.identity(slack_user_id="U0ALICE", connector="approvals")
        assert identity is not None and not identity.broken, "one typo must not break the link"
        assert kit.sandbox.decisions == []
        await bot.wait_card(card, "[Approve]")  # the buttons are back

        await bot.click("alice", card, "Approve")
        await slack.wait_for(lambda: slack.open_modals("alice"), what="the password modal again")
        result = await slack.submit_view(bot.url, user="alice", values={"Your Jira password": TYPED})
        assert result.closed
        await bot.wait_card(card, "Approved")
        assert kit.sandbox.decisions == [(external_id, "approve", "alice")]
        await bot.settle()

        rows = await dump_rows(bot)
        logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
        stored = [i.credentials for i in await bot.runtime.store.identities(connector="approvals")]
        for secret in (TYPED, MISTYPED):
            for form in forms(secret):
                assert form not in rows, f"{secret!r} found in the database"
                assert form not in logged, f"{secret!r} found in the log"
            assert all(secret not in creds.values() for creds in stored), (
                "not in the encrypted credentials either"
            )
    finally:
        await bot.stop()
