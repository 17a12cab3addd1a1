"""The vendor and Slack sandboxes in a process of their own, for the benchmarks.

Why a separate process: in production Slack and the vendor are other machines. Run inside the bot's
process, the sandboxes would spend the bot's CPU (serialising 100k tasks, validating every card's
blocks) and their memory would be counted as the bot's. Here they get the machine's other core.

`python -m bench.peer N [RATE]` seeds N FlexDeploy tasks, enforces RATE posts per second per channel
on the Slack sandbox when given, prints one JSON line (how to reach everything) and serves until
stdin closes. A small control endpoint answers what the benchmark needs to know (requests served,
Slack calls, posts) and decides tasks as someone in FlexDeploy's UI would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from bot.sandbox.slack_api import SlackSandbox
from connectors.base import Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.people import ALICE

GROUP = "Bench approvers"
CHANNEL = "C0DEPLOYS"


def seed(fd: FlexDeploySandbox, n: int) -> list[int]:
    if GROUP not in fd.groups:
        fd.add_group(GROUP, [ALICE])
    return [
        fd.add_project_task(
            project=f"Service {i}",
            version=f"1.{i}.0",
            group=GROUP,
            requestor_path=f"FlexDeploy / Bench / Service {i}",
            project_id=20000 + i,
        )
        for i in range(n)
    ]


def _report(slack: SlackSandbox, fd: FlexDeploySandbox, channel: str) -> dict[str, Any]:
    posts = [c for c in slack.calls_to("chat.postMessage") if c.status == 200 and not c.error]
    titles = {m.render().splitlines()[0] for m in slack.messages_in(channel)}
    return {
        "served": len(fd.served),
        "decisions": len(fd.decisions),
        "slack_calls": len(slack.calls),
        "slack_methods": dict(Counter(c.method for c in slack.calls)),
        "rate_limited": slack.rate_limited_count,
        "posted_ok": len(posts),
        "in_channel": len(slack.messages_in(channel)),
        "unique_titles": len(titles),
        "first_post_at": min((c.at for c in posts), default=None),
        "last_post_at": max((c.at for c in posts), default=None),
    }


class _Timed(list[tuple[str, str, str]]):
    """FlexDeploy's applied decisions, each also noted with the time it was applied."""

    def __init__(self, at: dict[str, float]) -> None:
        super().__init__()
        self.at = at

    def append(self, decision: tuple[str, str, str]) -> None:
        super().append(decision)
        self.at.setdefault(str(decision[0]), time.time())


async def serve(n: int, rate: float | None) -> None:
    decided_at: dict[str, float] = {}
    approved_at: dict[str, float] = {}

    def on_post(channel: str, ts: str, text: str, blocks: Any, kind: str) -> None:
        if kind == "update" and "(approved)" in text:
            approved_at.setdefault(ts, time.time())

    slack, fd = SlackSandbox(on_post=on_post), FlexDeploySandbox()
    fd.decisions = _Timed(decided_at)
    ids = seed(fd, n)
    if rate is not None:
        slack.enforce_rates(per_channel_per_second=rate, burst=5, global_per_minute=rate * 60 * 1.5)
    await slack.start()
    await fd.start()

    async def control(request: web.Request) -> web.Response:
        ask = await request.json()
        if ask.get("op") == "decide":
            for task in ids[: int(ask["count"])]:
                fd.decide(task, Status.APPROVED, "decided in the bench")
        if ask.get("op") == "timeline":
            return web.json_response(
                {
                    "decided_at": decided_at.get(str(ask["task"])),
                    "approved_at": approved_at.get(str(ask["ts"])),
                }
            )
        return web.json_response(_report(slack, fd, str(ask.get("channel", CHANNEL))))

    app = web.Application()
    app.router.add_post("/control", control)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    info = {
        "control": f"http://127.0.0.1:{runner.addresses[0][1]}/control",
        "slack": {"token": slack.token, "api_url": slack.api_url, "signing_secret": slack.signing_secret},
        "flexdeploy": fd.connector_settings(),
        "alice": fd.credentials("alice", token=True),
        "task_ids": [str(i) for i in ids[:5000]],
    }
    print(json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()  # the parent closes stdin (or dies): stop
    await runner.cleanup()
    await fd.stop()
    await slack.stop()


@contextmanager
def running(n: int, rate: float | None = None) -> Iterator[dict[str, Any]]:
    """Start a peer process; yields its JSON line. It stops when the block ends."""
    with process(["-m", "bench.peer", str(n)] + ([str(rate)] if rate is not None else [])) as info:
        yield info


@contextmanager
def process(args: list[str]) -> Iterator[dict[str, Any]]:
    """A Python process that prints one JSON line once it serves, and stops when its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench process {' '.join(args)} did not start")
        yield json.loads(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else None))
