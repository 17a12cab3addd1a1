"""The commands an admin runs, as subprocesses against sandboxes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.registry import SandboxSetup
from tests.processes import bot_env, cli, greenhouse_block

pytestmark = pytest.mark.slow


def _config(path: Path, setup: SandboxSetup, api_key: str) -> Path:
    file = path / "approvals.toml"
    file.write_text(greenhouse_block(setup))
    return file


async def test_check_reaches_every_vendor_and_slack(
    tmp_path: Path, greenhouse: SandboxSetup, slack: SlackSandbox, secret_key: str
) -> None:
    config = _config(tmp_path, greenhouse, "ok")
    env = {
        "HARVEST_SECRET": str(greenhouse.connector["client_secret"]),
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": "x",
        "SLACK_API_URL": slack.api_url,
    }
    code, out, err = await cli("check", "--config", str(config), env=env)
    assert code == 0, err
    assert "ok: hiring (Greenhouse)" in out
    assert "ok: Slack" in out

    env["HARVEST_SECRET"] = "wrong-key"
    env["SLACK_BOT_TOKEN"] = "xoxb-wrong"
    code, out, err = await cli("check", "--config", str(config), env=env)
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert any("hiring" in line and "refused" in line for line in lines), err
    assert any("Slack: auth.test failed: invalid_auth" in line for line in lines), err
    assert "wrong-key" not in out + err, "secrets never appear in output"


async def test_check_refuses_a_retired_harvest_v1_table_in_one_line(
    tmp_path: Path, slack: SlackSandbox
) -> None:
    config = tmp_path / "approvals.toml"
    config.write_text(
        """
[[connectors]]
name = "hiring"
type = "greenhouse"
api_key = "${HARVEST_KEY}"
"""
    )
    env = {"HARVEST_KEY": "k", "SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.api_url}
    code, out, err = await cli("check", "--config", str(config), env=env)
    assert code != 0
    lines = [line for line in (out + err).splitlines() if "retired" in line]
    assert len(lines) == 1 and "31 Aug 2026" in lines[0] and "Harvest V3 (OAuth)" in lines[0], out + err


async def test_poll_once_posts_cards_and_a_second_run_posts_none(
    tmp_path: Path, slack: SlackSandbox, secret_key: str, fd: FlexDeploySandbox
) -> None:
    env = bot_env(folder=tmp_path, fd=fd, slack=slack, secret_key=secret_key, poll_interval=None)
    code, out, err = await cli("poll", "--once", env=env)
    assert code == 0, err
    assert "deploys: 3 pending (3 new" in out
    assert len(slack.calls_to("chat.postMessage")) == 3
    code, out, err = await cli("poll", "--once", "--connector", "deploys", env=env)
    assert code == 0, err
    assert "(0 new, 0 changed" in out
    assert len(slack.calls_to("chat.postMessage")) == 3, (
        "a second run on the same database posts nothing again"
    )
    code, out, err = await cli("poll", "--once", "--connector", "nope", env=env)
    assert code == 2
    assert "no such connector" in err
    env["FD_PASSWORD"] = "wrong"
    code, out, err = await cli("poll", "--once", env=env)
    assert code == 1
    assert "deploys: failed" in err
