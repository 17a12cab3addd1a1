"""`approvals-bot check` names what a real install got wrong in Slack: scopes and channels.

Run as an admin runs it (a subprocess with the env of a real install) against the Slack sandbox,
whose answers carry `x-oauth-scopes` as Slack's do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.processes import cli

pytestmark = pytest.mark.slow


async def _check(config: Path, slack: SlackSandbox) -> tuple[int, str, str]:
    env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": "x", "SLACK_API_URL": slack.api_url}
    return await cli("check", "--config", str(config), env=env)


def _config(tmp_path: Path, fd: FlexDeploySandbox, channel: str) -> Path:
    settings = fd.connector_settings()
    file = tmp_path / "approvals.toml"
    file.write_text(
        f"""
[slack]
notify_channel = "C0APPROVALS"

[[connectors]]
name = "releases"
type = "flexdeploy"
base_url = "{settings["base_url"]}"
username = "{settings["username"]}"
password = "{settings["password"]}"
channel = "{channel}"
"""
    )
    return file


async def test_check_passes_when_every_scope_is_granted_and_the_bot_is_in_its_channels(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox
) -> None:
    code, out, err = await _check(_config(tmp_path, fd, "C0DEPLOYS"), slack)
    assert code == 0, err
    assert "every scope the bot uses is granted" in out
    assert "the bot is in every configured channel (C0APPROVALS, C0DEPLOYS)" in out


async def test_check_names_a_missing_scope_and_a_channel_the_bot_is_not_in(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox
) -> None:
    slack.scopes.discard("users:read.email")
    code, _out, err = await _check(_config(tmp_path, fd, "C0NOTMEMBER"), slack)
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert any("lacks the scope users:read.email" in line for line in errors), err
    assert any("not in #not-member (C0NOTMEMBER)" in line and "/invite" in line for line in errors), err
    assert not any("C0APPROVALS" in line for line in errors), err
    assert slack.token not in err
