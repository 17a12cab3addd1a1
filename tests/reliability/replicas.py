"""Real `approvals-bot run` processes on one PostgreSQL, as an operator runs several replicas.

Each replica is its own Python process with its own port, log file and environment (started as
tests/processes.py starts every bot process); the vendor (FlexDeploy sandbox) and Slack (Slack
sandbox) run in the test's process, so the test sees every call either side received. The helpers
both reliability suites use (a cluster, linking a person, a new vendor task, the figures recorded
for the README) live here too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.processes import CHANNEL, bot_env, free_port, run_bot, stop, wait_until

__all__ = ["CHANNEL", "Cluster", "Replica", "wait_until"]

# Short enough that the suite stays within minutes; the production default is 15 s.
LEASE_SECONDS = 3


@dataclass
class Replica:
    name: str
    port: int
    log: Path
    process: asyncio.subprocess.Process
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def health(self) -> tuple[int, dict[str, Any]] | None:
        """(status, body) of /healthz, or None while it does not answer."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(f"http://127.0.0.1:{self.port}/healthz") as response,
            ):
                return response.status, await response.json()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def metric(self, name: str) -> float | None:
        """One sample of /metrics, e.g. 'approvals_outbox_depth' (None when absent or not answering)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
                session.get(f"http://127.0.0.1:{self.port}/metrics") as response,
            ):
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    async def settled(self) -> bool:
        """Nothing left for Slack: every card posted so far is also recorded."""
        return await self.metric("approvals_outbox_depth") == 0

    async def leads(self) -> bool:
        answer = await self.health()
        return bool(answer and answer[1].get("leader", {}).get("this_replica"))

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.kill()

    async def stop(self) -> int:
        return await stop(self.process)


@dataclass
class Cluster:
    """Starts replicas sharing one database, one Slack sandbox and one FlexDeploy sandbox."""

    folder: Path
    database_url: str
    fd: FlexDeploySandbox
    slack: SlackSandbox
    secret_key: str
    lease: int = LEASE_SECONDS
    # More connectors than FlexDeploy's `deploys` (TOML), and the secrets they name.
    extra_config: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def env(self) -> dict[str, str]:
        return bot_env(
            folder=self.folder,
            fd=self.fd,
            slack=self.slack,
            secret_key=self.secret_key,
            database_url=self.database_url,
            lease=self.lease,
            extra_config=self.extra_config,
            extra_env=self.extra_env,
        )

    async def start(self, name: str | None = None) -> Replica:
        name = name or f"replica-{next(self._numbers)}"  # taken before any await: starts may overlap
        port = free_port()
        log = self.folder / f"{name}.log"
        process = await run_bot(self.env(), port, log)
        replica = Replica(name, port, log, process)
        self.replicas.append(replica)
        return replica

    async def stop_all(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))


async def serving(replica: Replica, *, timeout: float = 60) -> None:
    async def up() -> bool:
        if replica.process.returncode is not None:
            raise AssertionError(
                f"{replica.name} exited with {replica.process.returncode}:\n{replica.log_text()}"
            )
        return await replica.health() is not None

    await wait_until(up, timeout=timeout, what=f"{replica.name} answering /healthz")


async def the_leader(replicas: Iterable[Replica], *, timeout: float) -> Replica:
    async def find() -> Replica | None:
        leading = [r for r in replicas if r.process.returncode is None and await r.leads()]
        assert len(leading) <= 1, f"two replicas lead at once: {[r.name for r in leading]}"
        return leading[0] if leading else None

    found: Replica = await wait_until(find, timeout=timeout, what="a replica leading")
    return found


def posts_per_card(slack: SlackSandbox, markers: Iterable[str]) -> Counter[tuple[str, str]]:
    """How many times each (channel, marked item) was posted with chat.postMessage."""
    counts: Counter[tuple[str, str]] = Counter()
    wanted = list(markers)
    for call in slack.calls_to("chat.postMessage"):
        if call.error is not None:
            continue
        text = f"{call.args.get('text', '')} {call.args.get('blocks', '')}"
        for marker in wanted:
            if marker in text:
                counts[(str(call.args.get("channel")), marker)] += 1
    return counts


def card_in_channel(slack: SlackSandbox, marker: str) -> Any:
    return next((m for m in slack.messages_in(CHANNEL) if marker in m.render()), None)


async def started(cluster: Cluster) -> Replica:
    """One more replica, serving and leading (the only one running)."""
    replica = await cluster.start()
    await serving(replica)
    await the_leader([replica], timeout=30)
    return replica


async def link(cluster: Cluster, replica: Replica, user: str) -> None:
    """`user` links their FlexDeploy account through /approvals connect on `replica`."""
    slack = cluster.slack
    await slack.command(replica.url, user=user, text="connect deploys")
    await wait_until(lambda: slack.open_modals(user), timeout=15, what="the connect modal")
    secret = cluster.fd.credentials(user, token=True)["secret"]
    result = await slack.submit_view(
        replica.url, user=user, values={"Username": user, "Password or API token": secret}
    )
    assert result.closed, "the credentials were accepted"


def new_task(fd: FlexDeploySandbox, marker: str) -> int:
    """A new release gate for the Change Advisory Board, named by `marker`."""
    return fd.add_release_task(
        pipeline=f"Pipeline {marker}",
        environment="Production",
        gate=f"Gate {marker}",
        release="2026.12",
        snapshot=f"{marker}-RC1",
        group="Change Advisory Board",
    )


def record(name: str, value: object) -> None:
    """A figure for the README, written to RELIABILITY_REPORT (JSON) when set."""
    target = os.environ.get("RELIABILITY_REPORT")
    if target:
        path = Path(target)
        known = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**known, name: value}, indent=2))
