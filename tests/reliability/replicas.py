"""Real `approvals-bot run` processes on one PostgreSQL, as an operator runs several replicas.

Each replica is its own Python process with its own port, log file and environment; the vendor
(FlexDeploy sandbox) and Slack (Slack sandbox) run in the test's process, so the test sees every
call either side received.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox

CHANNEL = "C0DEPLOYS"
# Short enough that the suite stays within minutes; the production default is 15 s.
LEASE_SECONDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, fd: FlexDeploySandbox) -> Path:
    settings = fd.connector_settings()
    config = folder / "approvals.toml"
    config.write_text(
        f"""
[[connectors]]
name = "deploys"
type = "flexdeploy"
base_url = "{settings["base_url"]}"
username = "{settings["username"]}"
password = "${{FD_PASSWORD}}"
poll_interval = "1s"
channel = "{CHANNEL}"
"""
    )
    return config


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
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0


@dataclass
class Cluster:
    """Starts replicas sharing one database, one Slack sandbox and one FlexDeploy sandbox."""

    folder: Path
    database_url: str
    fd: FlexDeploySandbox
    slack: SlackSandbox
    secret_key: str
    lease: int = LEASE_SECONDS
    replicas: list[Replica] = field(default_factory=list)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FD_PASSWORD": self.fd.connector_settings()["password"],
            "SLACK_BOT_TOKEN": self.slack.token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "SLACK_API_URL": self.slack.api_url,
            "APPROVALS_SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.database_url,
            "APPROVALS_CONFIG": str(write_config(self.folder, self.fd)),
            "APPROVALS_LEASE": f"{self.lease}s",
        }

    async def start(self, name: str | None = None) -> Replica:
        name = name or f"replica-{next(self._numbers)}"  # taken before any await: starts may overlap
        port = free_port()
        log = self.folder / f"{name}.log"
        with log.open("ab") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                env=self.env(),
                stdout=sink,
                stderr=sink,
            )
        replica = Replica(name, port, log, process)
        self.replicas.append(replica)
        return replica

    async def stop_all(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))


async def wait_until(predicate: Any, *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(every)


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
