"""`approvals-bot run` as an admin starts it: a real process, HTTP mode and Socket Mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str) -> dict[str, str]:
    settings = fd.connector_settings()
    config = tmp_path / "approvals.toml"
    config.write_text(
        f"""
[[connectors]]
name = "deploys"
type = "flexdeploy"
base_url = "{settings["base_url"]}"
username = "{settings["username"]}"
password = "${{FD_PASSWORD}}"
poll_interval = "1s"
channel = "C0DEPLOYS"
"""
    )
    return {
        **os.environ,
        "FD_PASSWORD": settings["password"],
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "APPROVALS_SECRET_KEY": secret_key,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'approvals.db'}",
        "APPROVALS_CONFIG": str(config),
    }


async def _healthy(port: int, process: asyncio.subprocess.Process) -> dict[str, object]:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            if process.returncode is not None:
                raise AssertionError(f"the bot exited with {process.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        body: dict[str, object] = await response.json()
                        return body
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the bot never became healthy")


async def _stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_run_in_http_mode_posts_cards_and_approves_as_the_clicker(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str
) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=_env(tmp_path, fd, slack, secret_key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await _healthy(port, process)
        gate = await slack.wait_for(
            lambda: next((m for m in slack.messages_in("C0DEPLOYS") if "CAB approval" in m.render()), None),
            timeout=15,
            what="the release gate card",
        )
        await slack.command(url, user="alice", text="connect deploys")
        await slack.wait_for(lambda: slack.open_modals("alice"), what="the connect modal")
        credentials = fd.credentials("alice", token=True)
        result = await slack.submit_view(
            url, user="alice", values={"Username": "alice", "Password or API token": credentials["secret"]}
        )
        assert result.closed
        await slack.click(url, user="alice", channel=gate.channel, ts=gate.ts, label="Approve")
        await slack.wait_for(
            lambda: "Approved" in slack.messages[(gate.channel, gate.ts)].render(),
            timeout=10,
            what="the approved card",
        )
        assert [d[1:] for d in fd.decisions] == [("approve", "alice")]
    finally:
        code, err = await _stop(process)
    assert code == 0, err
    assert credentials["secret"] not in err, "credentials never reach the log"


async def test_run_in_socket_mode_answers_over_the_websocket(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str
) -> None:
    port = _free_port()
    env = _env(tmp_path, fd, slack, secret_key)
    env["SLACK_APP_TOKEN"] = slack.app_token
    del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        health = await _healthy(port, process)
        assert health["store"] == "ok"
        await slack.wait_for(lambda: slack.socket_connected, timeout=15, what="a Socket Mode connection")
        reply = await slack.socket_command(user="alice", text="help")
        assert reply.status == 200
        await slack.wait_for(
            lambda: any("/approvals connect NAME" in e.render() for e in slack.ephemerals_for("U0ALICE")),
            what="the help answer",
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/slack/events", data="x") as response,
        ):
            assert response.status in (404, 405), "no HTTP endpoint for Slack in Socket Mode"
    finally:
        code, err = await _stop(process)
    assert code == 0, err


async def test_run_refuses_to_start_without_its_secrets(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox
) -> None:
    env = _env(tmp_path, fd, slack, "")
    for name in ("SLACK_SIGNING_SECRET", "APPROVALS_SECRET_KEY"):
        env.pop(name)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--port",
        str(_free_port()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert any("SLACK_SIGNING_SECRET" in line for line in lines)
    assert any("APPROVALS_SECRET_KEY" in line for line in lines)
