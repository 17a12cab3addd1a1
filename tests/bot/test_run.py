"""`approvals-bot run` as an admin starts it: a real process, HTTP mode and Socket Mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.processes import bot_env, cli, free_port, run_bot, stop, wait_until

pytestmark = pytest.mark.slow


async def _healthy(port: int, process: asyncio.subprocess.Process) -> dict[str, object]:
    async def answer() -> dict[str, object] | None:
        if process.returncode is not None:
            raise AssertionError(f"the bot exited with {process.returncode}")
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/healthz") as response,
            ):
                return await response.json() if response.status == 200 else None
        except aiohttp.ClientError:
            return None

    found: dict[str, object] = await wait_until(answer, timeout=10, what="the bot healthy", every=0.05)
    return found


async def test_run_in_http_mode_posts_cards_and_approves_as_the_clicker(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str
) -> None:
    port = free_port()
    log = tmp_path / "bot.log"
    process = await run_bot(bot_env(folder=tmp_path, fd=fd, slack=slack, secret_key=secret_key), port, log)
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
        code = await stop(process)
    assert code == 0, log.read_text()
    assert credentials["secret"] not in log.read_text(), "credentials never reach the log"


async def test_run_in_socket_mode_answers_over_the_websocket(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str
) -> None:
    port = free_port()
    env = bot_env(folder=tmp_path, fd=fd, slack=slack, secret_key=secret_key)
    env["SLACK_APP_TOKEN"] = slack.app_token
    del env["SLACK_SIGNING_SECRET"]  # not needed in Socket Mode
    log = tmp_path / "bot.log"
    process = await run_bot(env, port, log)
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
        code = await stop(process)
    assert code == 0, log.read_text()


async def test_run_refuses_to_start_without_its_secrets(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox
) -> None:
    env = bot_env(folder=tmp_path, fd=fd, slack=slack, secret_key="")
    for name in ("SLACK_SIGNING_SECRET", "APPROVALS_SECRET_KEY"):
        env.pop(name)
    code, _, err = await cli("run", "--port", str(free_port()), env=env)
    assert code == 2
    lines = err.strip().splitlines()
    assert any("SLACK_SIGNING_SECRET" in line for line in lines)
    assert any("APPROVALS_SECRET_KEY" in line for line in lines)
