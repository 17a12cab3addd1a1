"""Slack in trouble answers with HTTP, not with an error code: a 500 with an HTML page, a 502 whose
"JSON" is a proxy's page, a 503 in plain text, or a connection reset. slack_sdk raises a different
shape for each; the gateway must sort every one as retry-later, never let it escape as a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from bot.slack.gateway import Kind, SlackFailure, SlackGateway, Tiers


@pytest.fixture
async def gateway(slack: SlackSandbox) -> AsyncIterator[SlackGateway]:
    # Paced far above Slack's one post a second per channel: these tests are about failures.
    client = SlackGateway(token=slack.token, api_url=slack.api_url, tiers=Tiers().scaled(100))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.mark.parametrize("status", ["500", "502", "503"])
async def test_a_5xx_from_slacks_edge_is_retry_later_and_posts_nothing(
    slack: SlackSandbox, gateway: SlackGateway, status: str
) -> None:
    slack.fail_http("chat.postMessage", status)  # type: ignore[arg-type]
    with pytest.raises(SlackFailure) as failed:
        await gateway.post_message(channel="C0DEPLOYS", text="hello")
    assert failed.value.kind is Kind.RETRY
    assert failed.value.error == f"http_{status}"
    assert slack.messages_in("C0DEPLOYS") == []
    channel, _ = await gateway.post_message(channel="C0DEPLOYS", text="hello")  # the retry goes through
    assert channel == "C0DEPLOYS" and len(slack.messages_in("C0DEPLOYS")) == 1


async def test_connection_resets_are_retry_later(slack: SlackSandbox, gateway: SlackGateway) -> None:
    slack.fail_http("chat.update", "reset", times=5)  # more than slack_sdk's own two reconnects
    channel, ts = await gateway.post_message(channel="C0DEPLOYS", text="hello")
    with pytest.raises(SlackFailure) as failed:
        await gateway.update_message(channel=channel, ts=ts, text="changed", blocks=[])
    assert failed.value.kind is Kind.RETRY
    assert "hello" in slack.messages_in("C0DEPLOYS")[0].render()


async def test_a_5xx_after_the_post_took_effect_loses_only_the_answer(
    slack: SlackSandbox, gateway: SlackGateway
) -> None:
    """What makes a blind retry post twice (bot/outbox/deliver.py looks in the history first)."""
    slack.fail_http("chat.postMessage", "503", applied=True)
    with pytest.raises(SlackFailure) as failed:
        await gateway.post_message(channel="C0DEPLOYS", text="hello")
    assert failed.value.kind is Kind.RETRY
    assert len(slack.messages_in("C0DEPLOYS")) == 1


async def test_a_reset_after_the_post_took_effect_is_not_retried_blindly(
    slack: SlackSandbox, gateway: SlackGateway
) -> None:
    """slack_sdk reconnects by itself after a reset; for chat.postMessage that would post twice."""
    slack.fail_http("chat.postMessage", "reset", applied=True)
    with pytest.raises(SlackFailure) as failed:
        await gateway.post_message(channel="C0DEPLOYS", text="hello")
    assert failed.value.kind is Kind.RETRY
    assert len(slack.messages_in("C0DEPLOYS")) == 1, "the client posted the message again by itself"


async def test_a_fault_rate_fails_a_share_of_calls_and_stops_when_cleared(
    slack: SlackSandbox, gateway: SlackGateway
) -> None:
    slack.fault_rate(0.5, ["500", "503"], methods=["chat.postMessage"], seed=3)
    outcomes = []
    for n in range(20):
        try:
            await gateway.post_message(channel="C0DEPLOYS", text=f"m{n}")
            outcomes.append("ok")
        except SlackFailure as exc:
            outcomes.append(exc.error if exc.kind is Kind.RETRY else f"not retry: {exc.error}")
    assert set(outcomes) <= {"ok", "http_500", "http_503"}, outcomes
    assert 4 <= outcomes.count("ok") <= 16, outcomes
    assert len(slack.messages_in("C0DEPLOYS")) == outcomes.count("ok"), "a failed call was not applied"
    slack.clear_faults()
    await gateway.post_message(channel="C0DEPLOYS", text="after")
