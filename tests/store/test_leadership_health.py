"""/healthz and /metrics tell an operator who leads, how fresh the lease is, and what waits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import Bot, start_bot, start_flexdeploy_bot
from tests.running import stopping


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox) -> AsyncIterator[Bot]:
    running = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[])
    async with stopping(running):
        yield running


async def test_healthz_and_metrics_name_the_leader(bot: Bot) -> None:
    base = bot.url.removesuffix("/slack/events")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            body = await response.json()
            assert response.status == 200, body
        leader = body["leader"]
        assert leader["this_replica"] is True
        assert leader["holder"] == bot.runtime.leader.holder
        assert leader["fence"] >= 1
        assert 0 <= leader["lease_age_seconds"] < bot.runtime.leader.lease
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
    assert "approvals_leader 1.0" in text
    assert "approvals_leader_present 1.0" in text
    assert "approvals_lease_age_seconds" in text
    assert "approvals_outbox_depth 0.0" in text
    assert "approvals_outbox_oldest_age_seconds 0.0" in text


async def test_healthz_is_503_when_no_replica_leads(bot: Bot) -> None:
    base = bot.url.removesuffix("/slack/events")
    await bot.runtime.leader.stop()  # the only replica gives its lease up and runs no election
    async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
        body = await response.json()
    assert response.status == 503
    assert body["store"] == "ok"
    assert body["leader"]["holder"] is None


async def test_an_unparseable_vendor_answer_is_a_failed_sync_in_healthz(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    running = await start_flexdeploy_bot(database_url=db_url, secret_key=secret_key, slack=slack, fd=fd)
    try:
        fd.kit.fail_rate(1.0, ["garbage"])  # a proxy answering HTML with status 200, every time
        results = await running.runtime.poll_once()
        assert not results["deploys"].ok
        base = running.url.removesuffix("/slack/events")
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as response:
            body = await response.json()
        deploys = body["connectors"]["deploys"]
        assert deploys["ok"] is False and deploys["failures"] == 1
        assert "not JSON" in deploys["error"] or "did not answer" in deploys["error"], deploys
        async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
            text = await response.text()
        assert 'approvals_sync_consecutive_failures{connector="deploys"} 1.0' in text
        assert 'approvals_vendor_errors_total{kind="VendorUnavailable",vendor="127.0.0.1"}' in text
        fd.kit.clear()
        assert (await running.runtime.poll_once())["deploys"].ok
        assert not running.slack.calls_to("chat.update"), "no card ever changed on a garbled answer"
    finally:
        await running.stop()
