"""Posting is paced per channel under Slack's rate, with bursts, and channels do not wait on each other."""

from __future__ import annotations

import asyncio

from bot.slack.gateway import Pacer


async def test_pacer_allows_a_burst_then_paces_each_channel() -> None:
    pacer = Pacer(per_second=20.0, burst=2.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(2):
        await pacer.wait("C1")
    assert loop.time() - start < 0.04, "the burst goes at once"
    for _ in range(4):
        await pacer.wait("C1")
    assert loop.time() - start >= 0.18, "then one per 1/20 s"
    other = loop.time()
    await pacer.wait("C2")
    assert loop.time() - other < 0.04, "another channel has its own bucket"
