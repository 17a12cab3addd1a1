"""Greenhouse rate limits: stay under X-RateLimit-* (a fixed window), and wait Retry-After after a 429."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from connectors.people import ALICE, BOB, CAROL, DAVE
from tests.contract.kits.greenhouse import GreenhouseKit
from tests.running import started

WINDOW = 0.4


@pytest.fixture
async def kit() -> AsyncIterator[GreenhouseKit]:
    instance = GreenhouseKit(rate_limit=4, rate_window=WINDOW, retry_after=1)
    async with started(instance):
        yield instance


def seed(kit: GreenhouseKit, flows: int) -> list[str]:
    ids = kit.ids
    return [
        str(
            kit.sandbox.add_flow(kit.new_job(), [([ids["alice"], ids["bob"]], 1)], requested_by=kit.recruiter)
        )
        for _ in range(flows)
    ]


async def test_a_poll_spreads_its_calls_instead_of_hitting_the_limit(kit: GreenhouseKit) -> None:
    expected = seed(kit, 3)
    connector = kit.build()
    started = time.monotonic()
    try:
        items = await connector.fetch_pending(kit.link(ALICE, BOB, CAROL, DAVE))
    finally:
        await connector.aclose()
    assert sorted(i.external_id for i in items) == sorted(expected)
    assert len(kit.sandbox.requests) > 4, "more calls than one window allows"
    assert kit.sandbox.throttled == 0, "Greenhouse never had to answer 429"
    assert time.monotonic() - started >= WINDOW


async def test_after_a_429_the_next_call_waits_retry_after(kit: GreenhouseKit) -> None:
    expected = seed(kit, 1)
    kit.sandbox.throttle_next()
    connector = kit.build()
    try:
        items = await connector.fetch_pending(kit.link(ALICE))
    finally:
        await connector.aclose()
    assert [i.external_id for i in items] == expected
    requests = kit.sandbox.requests
    throttled = next(i for i, r in enumerate(requests) if r[3] == 429)
    assert requests[throttled + 1][0] - requests[throttled][0] >= WINDOW * 0.9
    assert kit.sandbox.throttled == 1
