"""One measurement of the bot, in a fresh interpreter, against a peer's sandboxes (bench/peer.py).

`python -m bench.worker KIND N FOLDER PEER_JSON` prints one JSON line. A fresh process per figure
keeps CPU and peak RSS the bot's own: this module imports the bot and nothing of the sandboxes.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bench import reminders
from bench.env import Bench, start
from bot.config import ConnectorConfig, Reminders
from bot.runtime import SlackSettings
from bot.slack.gateway import Tiers
from connectors.flexdeploy import FlexDeploySettings
from connectors.people import ALICE

CHANNEL = "C0DEPLOYS"
BURST = 3  # chat.postMessage's burst per channel, as Slack's sandbox enforces it


def peak_rss_mb() -> float:
    """This process's own peak. Linux's VmHWM, not ru_maxrss: ru_maxrss is carried over from the
    parent across fork and exec, so a worker would report the benchmark driver's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def ask(peer: dict[str, Any], op: str = "report", **args: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(peer["control"], json={"op": op, **args}) as response,
    ):
        answer: dict[str, Any] = await response.json()
        return answer


async def _bot(
    peer: dict[str, Any], folder: Path, channel: str | None, rate: tuple[float, float], **more: Any
) -> Bench:
    return await start(
        folder=folder,
        slack=SlackSettings(**peer["slack"]),
        flexdeploy=peer["flexdeploy"],
        channel=channel,
        rate=rate,
        **more,
    )


class _Writes:
    """Counts the rows the bot writes (INSERT, UPDATE, DELETE), leaving out the connector's own
    poll state (a cursor, a timestamp): what a no-change cycle should write is nothing else."""

    def __init__(self, bench: Bench) -> None:
        self.n = 0
        sa.event.listen(bench.runtime.db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().upper()
        if head.startswith(("INSERT", "UPDATE", "DELETE")) and "CONNECTOR_STATE" not in head[:80]:
            self.n += 1


async def sync_cost(n: int, folder: Path, peer: dict[str, Any]) -> dict[str, Any]:
    """A no-change cycle with n pending items, then (with a channel) a cycle where 1 % changed."""
    channel = CHANNEL if n <= 2_000 else None
    bench = await _bot(peer, folder, channel, (100_000.0, 100_000.0))
    writes = _Writes(bench)
    try:
        await bench.runtime.poll_once()  # the first sync stores everything, unless prepared (not measured)
        await bench.runtime.deliver_all()
        writes.n = 0
        result = {"items": n, **await _no_change_cycle(bench, peer, writes)}
        if channel is not None:
            result |= await _changed_cycle(bench, peer, n)
        result["peak_rss_mb"] = peak_rss_mb()
        return result
    finally:
        await bench.stop()


async def _no_change_cycle(bench: Bench, peer: dict[str, Any], writes: _Writes) -> dict[str, Any]:
    """One cycle where nothing changed: its CPU and wall time, vendor requests (floor: one),
    Slack calls and rows written."""
    before = await ask(peer)
    cpu, wall = time.process_time(), time.perf_counter()
    await bench.runtime.poll_once()
    result: dict[str, Any] = {"cpu_s": time.process_time() - cpu}
    result["wall_s"] = time.perf_counter() - wall
    after = await ask(peer)
    return result | {
        "vendor_requests": after["served"] - before["served"],
        "vendor_requests_floor": 1,
        "slack_calls": after["slack_calls"] - before["slack_calls"],
        "rows_written": writes.n,
    }


async def _changed_cycle(bench: Bench, peer: dict[str, Any], n: int) -> dict[str, Any]:
    """A cycle where 1 % of the items were decided in the vendor: Slack calls per change."""
    changed = max(1, n // 100)
    before = await ask(peer, "decide", count=changed)
    await bench.runtime.poll_once()
    await bench.runtime.deliver_all()
    after = await ask(peer)
    return {
        "changed": changed,
        "slack_calls_per_change": (after["slack_calls"] - before["slack_calls"]) / changed,
    }


async def prepare(n: int, folder: Path, peer: dict[str, Any]) -> dict[str, Any]:
    """Store what the vendor lists, in a process of its own: the measured process then starts with
    n stored items, and its peak is that of the cycles measured, not of a first sync."""
    from store.repo import now_utc

    bench = await _bot(peer, folder, None, (1.0, 1.0))
    try:
        items = await bench.runtime.connectors["deploys"].fetch_pending(())
        async with bench.runtime.db.transaction() as session:
            stored = await bench.runtime.store.insert_items(session, items=items, now=now_utc())
        return {"stored": len(stored)}
    finally:
        await bench.stop()


async def reminder_pass(n: int, folder: Path, peer: dict[str, Any]) -> dict[str, Any]:
    """n pending items with their cards, 1 % due: one real reminder pass (bench/reminders.py)."""
    from store.repo import now_utc

    bench = await _bot(peer, folder, CHANNEL, (1.0, 1.0), background=False)
    try:
        items = await bench.runtime.connectors["deploys"].fetch_pending(())
        async with bench.runtime.db.transaction() as session:
            await bench.runtime.store.insert_items(session, items=items, now=now_utc())
        del items
        return await reminders.one_pass(bench, items=n)
    finally:
        await bench.stop()


async def fanout(n: int, folder: Path, peer: dict[str, Any], rate: float) -> dict[str, Any]:
    """n new items into one channel whose Slack enforces `rate` posts/s (429 + Retry-After above it)."""
    # The bot paces itself a little under the allowed rate: meeting it exactly would let clock
    # jitter turn into 429s, each of which costs a whole Retry-After second.
    bench = await _bot(peer, folder, CHANNEL, (rate * 0.99, 3))
    try:
        started = time.time()
        await bench.runtime.poll_once()
        synced = time.time()
        deadline = time.perf_counter() + 120
        while (report := await ask(peer))["in_channel"] < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {report['in_channel']} of {n} cards posted in 120 s")
            await asyncio.sleep(0.1)
        first, last = report["first_post_at"], report["last_post_at"]
        window = max(last - first, 1e-9)
        posting_rate = (n - 1) / window
        return {
            "items": n,
            "allowed_per_s": rate,
            "achieved_per_s": posting_rate,
            "share": posting_rate / rate,
            "target_share": 0.95,
            "sync_s": synced - started,
            "first_card_s": first - started,
            "end_to_end_per_s": n / (last - started),
            "rate_limited_429": report["rate_limited"],
            "lost": n - report["unique_titles"],
            "duplicated": report["posted_ok"] - n,
        }
    finally:
        await bench.stop()


async def first_sync(n: int, folder: Path, peer: dict[str, Any]) -> dict[str, Any]:
    """The first sync of n cards over the peer's team channels (a connector each), with the Slack
    sandbox enforcing every tier, scaled by `factor`; the bot runs as deployed (background delivery,
    each connector's sync kicking it, all connectors syncing at once as the scheduler starts them).

    Allowed: each channel's burst (3 posts), then `factor` posts a second per channel. The share is
    the rate after the bursts over the rate allowed after them."""
    factor, teams = float(peer["factor"]), peer["teams"]
    settings = FlexDeploySettings.model_validate(peer["flexdeploy"])
    connectors = tuple(
        ConnectorConfig(
            f"team{t:02d}",
            "flexdeploy",
            timedelta(seconds=60),
            team["channel"],
            Reminders(),
            settings.model_copy(update={"username": team["username"], "password": team["password"]}),
        )
        for t, team in enumerate(teams)
    )
    # A little under Slack's pace and burst, as the fan-out does: the time a post takes to reach
    # Slack varies, and that jitter must not turn into 429s.
    pace = factor * 0.99
    bench = await _bot(
        peer, folder, None, (pace, BURST - 1), tiers=Tiers().scaled(pace), connectors=connectors
    )
    channels = [team["channel"] for team in teams]
    try:
        await ask(peer, "enforce_tiers", factor=factor, burst_seconds=3.0)
        started = time.time()

        for c in connectors:  # as poll_once does; each sync's cards are delivered at once
            await bench.runtime.coordinators[c.name].run_once()
            bench.runtime.delivery.kick()
        synced = time.time()
        deadline = time.perf_counter() + 300
        while (report := await ask(peer, channels=channels))["in_channel"] < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {report['in_channel']} of {n} cards posted in 300 s")
            await asyncio.sleep(0.2)
        # Each channel from its first post to its last (its sync may end later than another's):
        # the posts after its burst, over the time Slack allowed them in.
        spans = report["per_channel"].values()
        after_bursts = sum(count - BURST for count, _, _ in spans)
        window = sum(max(last - first, 1e-9) for _, first, last in spans)
        return {
            "items": n,
            "channels": len(channels),
            "allowed_per_s": factor * len(channels),
            "achieved_per_s": after_bursts / window * len(channels),
            "share": after_bursts / (window * factor),
            "target_share": 0.95,
            "sync_s": synced - started,
            "first_card_s": report["first_post_at"] - started,
            "end_to_end_per_s": n / (report["last_post_at"] - started),
            "rate_limited_429": report["rate_limited"],
            "slack_methods": report["slack_methods"],
            "lost": n - report["unique_titles"],
            "duplicated": report["posted_ok"] - n,
        }
    finally:
        await bench.stop()


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


async def serve_bot(folder: Path, peer: dict[str, Any]) -> None:
    """The bot as deployed, in a process of its own: Alice linked, every card posted. Prints how
    to reach it; serves clicks until stdin closes. A line "sync" on stdin runs a sync (and kicks
    delivery, as the scheduler's job does) and is answered with one JSON line.

    With `factor` in `peer`, the bot paces every method by Slack's tiers times that factor, a
    little under them (the Slack sandbox enforces them once the benchmark says so)."""
    factor = peer.get("factor")
    tiers = Tiers().scaled(float(factor) * 0.98) if factor else None
    bench = await _bot(peer, folder, CHANNEL, (10_000.0, 10_000.0), tiers=tiers)
    try:
        await bench.runtime.store.link(
            slack_user_id=ALICE.slack_id,
            connector="deploys",
            vendor_user_id="alice",
            display_name="Alice",
            email=ALICE.email,
            credentials=peer["alice"],
        )
        await bench.runtime.poll_once()
        print(json.dumps({"url": bench.url, "db": str(folder / "bench.db")}), flush=True)
        async for line in _stdin_lines():
            if line.strip() == "sync":
                result = await bench.runtime.coordinators["deploys"].run_once()
                bench.runtime.delivery.kick()
                print(json.dumps({"ok": result.ok}), flush=True)
    finally:
        await bench.stop()


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines from stdin until it closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode()


async def _serve_events(handle: Callable[[web.Request], Awaitable[web.Response]]) -> None:
    """Serve `handle` at /slack/events on a free port; print how to reach it; stop when stdin closes."""
    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(json.dumps({"url": f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"}), flush=True)
    await _until_stdin_closes()
    await runner.cleanup()


async def serve_floor(peer: dict[str, Any]) -> None:
    """The floor for click acks: a bare Bolt AsyncApp that acks the same button, nothing more."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    slack = peer["slack"]
    app = AsyncApp(
        client=AsyncWebClient(token=slack["token"], base_url=slack["api_url"]),
        signing_secret=slack["signing_secret"],
    )

    @app.action("card.approve")
    async def approve(ack: Any) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    await _serve_events(handle)


async def serve_bare_http(peer: dict[str, Any]) -> None:
    """A stricter floor than bare Bolt: an aiohttp handler that checks Slack's signature and answers
    200, which is all the bot does before it answers a click (bot/ack_first.py)."""
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(peer["slack"]["signing_secret"])

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        return web.Response(status=200 if verifier.is_valid_request(body, request.headers) else 401)

    await _serve_events(handle)


def baseline() -> dict[str, Any]:
    """The floor for memory: this interpreter with the bot imported and nothing stored."""
    import bot.runtime  # noqa: F401

    return {"rss_mb": peak_rss_mb()}


def main(argv: list[str]) -> int:
    kind, n, folder, peer = argv[0], int(argv[1]), Path(argv[2]), json.loads(argv[3])
    result: dict[str, Any]
    if kind == "serve":
        asyncio.run(serve_bot(folder, peer))
        return 0
    if kind == "floor":
        asyncio.run(serve_floor(peer))
        return 0
    if kind == "bare-http":
        asyncio.run(serve_bare_http(peer))
        return 0
    if kind == "sync":
        result = asyncio.run(sync_cost(n, folder, peer))
    elif kind == "prepare":
        result = asyncio.run(prepare(n, folder, peer))
    elif kind == "reminders":
        result = asyncio.run(reminder_pass(n, folder, peer))
    elif kind == "fanout":
        result = asyncio.run(fanout(n, folder, peer, rate=float(peer["rate"])))
    elif kind == "first-sync":
        result = asyncio.run(first_sync(n, folder, peer))
    else:
        result = baseline()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
