"""`approvals-bot` as an admin runs it: real `python -m bot` processes, configured by a file and
the environment, against sandboxes on 127.0.0.1.

One harness for every test that starts the bot as a process (tests/bot/test_run.py, tests/bot/test_cli.py
and the replicas of tests/reliability/): the config, the environment, the command line and the way
a process is stopped are written once, so a test of a single run and a test of a cluster start the
bot the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.registry import SandboxSetup

CHANNEL = "C0DEPLOYS"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def greenhouse_block(setup: SandboxSetup, *, poll_interval: str | None = None) -> str:
    """A `hiring` Greenhouse connector (cards in the DMs of whoever's turn it is, a copy in
    C0APPROVALS); its client secret comes from HARVEST_SECRET."""
    c = setup.connector
    poll = f'poll_interval = "{poll_interval}"\n' if poll_interval else ""
    return f"""
[[connectors]]
name = "hiring"
type = "greenhouse"
base_url = "{c["base_url"]}"
auth_url = "{c["auth_url"]}"
client_id = "{c["client_id"]}"
client_secret = "${{HARVEST_SECRET}}"
service_user_id = {c["service_user_id"]}
{poll}channel = "C0APPROVALS"
"""


def flexdeploy_config(
    folder: Path, fd: FlexDeploySandbox, *, poll_interval: str | None = "1s", extra: str = ""
) -> Path:
    """approvals.toml with one FlexDeploy connector `deploys` posting to CHANNEL (its password
    from FD_PASSWORD, as an admin would give it), then `extra` (more connectors)."""
    settings = fd.connector_settings()
    poll = f'poll_interval = "{poll_interval}"\n' if poll_interval else ""
    config = folder / "approvals.toml"
    config.write_text(
        f"""
[[connectors]]
name = "deploys"
type = "flexdeploy"
base_url = "{settings["base_url"]}"
username = "{settings["username"]}"
password = "${{FD_PASSWORD}}"
{poll}channel = "{CHANNEL}"
{extra}"""
    )
    return config


def bot_env(
    *,
    folder: Path,
    fd: FlexDeploySandbox,
    slack: SlackSandbox,
    secret_key: str,
    database_url: str | None = None,
    lease: float | None = None,
    poll_interval: str | None = "1s",
    extra_config: str = "",
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a bot process: this one's, plus the bot's settings (SQLite in
    `folder` unless `database_url`); `extra_config`/`extra_env`: more connectors and their secrets."""
    env = {
        **os.environ,
        "FD_PASSWORD": fd.connector_settings()["password"],
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "APPROVALS_SECRET_KEY": secret_key,
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{folder / 'approvals.db'}",
        "APPROVALS_CONFIG": str(
            flexdeploy_config(folder, fd, poll_interval=poll_interval, extra=extra_config)
        ),
        **(extra_env or {}),
    }
    if lease is not None:
        env["APPROVALS_LEASE"] = f"{lease:g}s"
    return env


async def run_bot(env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    """`approvals-bot run --host 127.0.0.1 --port <port>`, its output appended to `log`."""
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdout=sink,
            stderr=sink,
        )


async def stop(process: asyncio.subprocess.Process) -> int:
    """SIGTERM (after SIGCONT, in case it was frozen), as systemd stops it; killed after 30 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode or 0


async def cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    """`approvals-bot <args>` to its end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


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
