"""The Slack sandbox enforces Slack's tiers per method, as the tier benchmarks need it to.

Driven with slack_sdk's real AsyncWebClient over 127.0.0.1, on an injected clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack_api import SlackSandbox


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sandbox(clock: Clock) -> AsyncIterator[SlackSandbox]:
    async with SlackSandbox(clock=clock) as sb:
        yield sb


@pytest.fixture
async def slack(sandbox: SlackSandbox) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=sandbox.token, base_url=sandbox.api_url, session=session)


async def _refused(call: Awaitable[object]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_tier_3_limits_chat_update_for_the_whole_workspace(
    sandbox: SlackSandbox, slack: AsyncWebClient, clock: Clock
) -> None:
    # Tier 3 is 50 a minute; times 1.2 is one a second, with 3 seconds' worth at once.
    sandbox.enforce_tiers(factor=1.2, burst_seconds=3.0)
    posted = [
        (await slack.chat_postMessage(channel=c, text="card"))["ts"] for c in ("C0DEPLOYS", "C0GENERAL")
    ]
    for _ in range(3):
        await slack.chat_update(channel="C0DEPLOYS", ts=posted[0], text="edit")
    error = await _refused(slack.chat_update(channel="C0GENERAL", ts=posted[1], text="another channel"))
    assert error.response.status_code == 429 and error.response.headers["retry-after"] == "1"
    assert sandbox.messages[("C0GENERAL", posted[1])].text == "card", "a refused update changes nothing"
    clock.now += 1.0
    await slack.chat_update(channel="C0GENERAL", ts=posted[1], text="a second later")
    assert sandbox.rate_limited_count == 1


async def test_each_method_has_its_own_bucket_and_posts_are_per_channel(
    sandbox: SlackSandbox, slack: AsyncWebClient, clock: Clock
) -> None:
    sandbox.enforce_tiers(factor=1.2, burst_seconds=1.0)
    ts = (await slack.chat_postMessage(channel="C0DEPLOYS", text="card"))["ts"]
    await slack.chat_update(channel="C0DEPLOYS", ts=ts, text="edit")
    # Tier 4 (users.info) is not spent by Tier 3's chat.update, nor the other way round.
    await slack.users_info(user="U0ALICE")
    await slack.users_info(user="U0ALICE")
    error = await _refused(slack.chat_update(channel="C0DEPLOYS", ts=ts, text="tier 3 spent"))
    assert error.response.status_code == 429
    # chat.postMessage: about one a second per channel (times the factor), bursts of 3.
    for _ in range(2):
        await slack.chat_postMessage(channel="C0DEPLOYS", text="burst")
    error = await _refused(slack.chat_postMessage(channel="C0DEPLOYS", text="too fast"))
    assert error.response.status_code == 429
    await slack.chat_postMessage(channel="C0GENERAL", text="another channel is fine")
    assert sandbox.rate_limited_count == 2
