"""The vendor and Slack sandboxes in a process of their own, for the benchmarks.

Why a separate process: in production Slack and the vendor are other machines. Run inside the bot's
process, the sandboxes would spend the bot's CPU (serialising 100k tasks, validating every card's
blocks) and their memory would be counted as the bot's. Here they get the machine's other core.

`python -m bench.peer N [RATE] [TEAMS]` seeds N FlexDeploy tasks, enforces RATE posts per second per
channel on the Slack sandbox when given (0: none), prints one JSON line (how to reach everything) and
serves until stdin closes. With TEAMS, the tasks are spread over that many approval groups, each
listed by a service account of its own (one connector each) and carded in a channel of its own.
A small control endpoint answers what the benchmark needs to know (requests served, Slack calls,
posts), decides tasks as someone in FlexDeploy's UI would, and turns on Slack's tiers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from bot.sandbox.slack_api import Channel, SlackSandbox
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


def seed_teams(fd: FlexDeploySandbox, slack: SlackSandbox, n: int, teams: int) -> list[dict[str, str]]:
    """n tasks over `teams` groups, each listed by its own service account and carded in its own
    channel (in turn, so every channel's cards are queued by its own connector's sync)."""
    out = []
    for t in range(teams):
        user, channel = f"svc{t:02d}", f"C0TEAM{t:02d}"
        fd.add_user(user, f"Team {t}", None, password=f"{user}-password")
        fd.add_group(f"Team {t}", [user])
        slack.add_channel(Channel(channel, f"team-{t:02d}"))
        out.append({"username": user, "password": f"{user}-password", "channel": channel})
    for i in range(n):
        fd.add_project_task(
            project=f"Service {i}",
            version=f"1.{i}.0",
            group=f"Team {i % teams}",
            requestor_path=f"FlexDeploy / Team {i % teams} / Service {i}",
            project_id=20000 + i,
        )
    return out


def _report(slack: SlackSandbox, fd: FlexDeploySandbox, channels: list[str]) -> dict[str, Any]:
    posts = [c for c in slack.calls_to("chat.postMessage") if c.status == 200 and not c.error]
    messages = [m for channel in channels for m in slack.messages_in(channel)]
    titles = {m.render().splitlines()[0] for m in messages}
    by_channel: dict[str, list[float]] = {}
    for call in posts:
        by_channel.setdefault(str(call.args.get("channel")), []).append(call.at)
    return {
        # Each channel's posts: how many, the first and the last one's time.
        "per_channel": {c: [len(at), min(at), max(at)] for c, at in by_channel.items() if c in channels},
        "served": len(fd.served),
        "decisions": len(fd.decisions),
        "slack_calls": len(slack.calls),
        "slack_methods": dict(Counter(c.method for c in slack.calls)),
        "rate_limited": slack.rate_limited_count,
        "posted_ok": len(posts),
        "in_channel": len(messages),
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


def _control(
    slack: SlackSandbox,
    fd: FlexDeploySandbox,
    ids: list[int],
    decided_at: dict[str, float],
    approved_at: dict[str, float],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The control endpoint: decides tasks as someone in FlexDeploy's UI would, turns on Slack's
    tiers, tells when a task was decided and its card shown approved, and reports the counts."""

    async def control(request: web.Request) -> web.Response:
        ask = await request.json()
        if ask.get("op") == "decide":
            for task in ids[: int(ask["count"])]:
                fd.decide(task, Status.APPROVED, "decided in the bench")
        if ask.get("op") == "enforce_tiers":
            slack.enforce_tiers(factor=float(ask["factor"]), burst_seconds=float(ask["burst_seconds"]))
        if ask.get("op") == "timeline":
            return web.json_response(
                {
                    "decided_at": decided_at.get(str(ask["task"])),
                    "approved_at": approved_at.get(str(ask["ts"])),
                }
            )
        return web.json_response(_report(slack, fd, list(ask.get("channels", [CHANNEL]))))

    return control


async def _stdin_closed() -> None:
    """Returns when the parent closes our stdin (or dies): the peer's signal to stop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


async def serve(n: int, rate: float | None, teams: int = 0) -> None:
    decided_at: dict[str, float] = {}
    approved_at: dict[str, float] = {}

    def on_post(channel: str, ts: str, text: str, blocks: Any, kind: str) -> None:
        if kind == "update" and "(approved)" in text:
            approved_at.setdefault(ts, time.time())

    slack, fd = SlackSandbox(on_post=on_post), FlexDeploySandbox()
    fd.decisions = _Timed(decided_at)
    ids, team_info = ([], seed_teams(fd, slack, n, teams)) if teams else (seed(fd, n), [])
    if rate:
        slack.enforce_rates(per_channel_per_second=rate, burst=5, global_per_minute=rate * 60 * 1.5)
    await slack.start()
    await fd.start()
    app = web.Application()
    app.router.add_post("/control", _control(slack, fd, ids, decided_at, approved_at))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    info = {
        "control": f"http://127.0.0.1:{runner.addresses[0][1]}/control",
        "slack": {"token": slack.token, "api_url": slack.api_url, "signing_secret": slack.signing_secret},
        "flexdeploy": fd.connector_settings(),
        "alice": fd.credentials("alice", token=True),
        "task_ids": [str(i) for i in ids[:5000]],
        "teams": team_info,
    }
    print(json.dumps(info), flush=True)
    await _stdin_closed()
    await runner.cleanup()
    await fd.stop()
    await slack.stop()


@contextmanager
def running(n: int, rate: float | None = None, teams: int = 0) -> Iterator[dict[str, Any]]:
    """Start a peer process; yields its JSON line. It stops when the block ends."""
    with process(["-m", "bench.peer", str(n), str(rate or 0), str(teams)]) as info:
        yield info


@contextmanager
def process(args: list[str]) -> Iterator[dict[str, Any]]:
    """A Python process that prints one JSON line once it serves, and stops when its stdin closes."""
    with conversing(args) as (info, _):
        yield info


@contextmanager
def conversing(args: list[str]) -> Iterator[tuple[dict[str, Any], Callable[[str], dict[str, Any]]]]:
    """As `process`, with a way to tell it something: a line in, its one-line JSON answer out."""
    process = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )

    def say(line: str) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()
        answer: dict[str, Any] = json.loads(process.stdout.readline())
        return answer

    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench process {' '.join(args)} did not start")
        yield json.loads(line), say
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    args = [*sys.argv[1:], "0", "0"]
    asyncio.run(serve(int(args[0]), float(args[1]) or None, int(args[2])))
