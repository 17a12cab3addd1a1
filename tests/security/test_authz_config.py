"""`[slack] admins`: read from the config with clear errors, and `approvals-bot check` asks Slack
about each id, one line per id it does not know."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, parse_config
from bot.sandbox.slack_api import SlackSandbox


def test_admins_are_user_or_group_ids() -> None:
    config = parse_config({"slack": {"admins": ["U0ALICE", "S0LEADS", "W0GRID", "U0ALICE"]}}, env={})
    assert config.admins == ("U0ALICE", "S0LEADS", "W0GRID")
    assert parse_config({}, env={}).admins == ()
    with pytest.raises(ConfigError) as bad:
        parse_config({"slack": {"admins": ["@alice", "C0GENERAL", "U0BOB"]}}, env={})
    (line,) = bad.value.problems
    assert (
        line.startswith("slack.admins")
        and "'@alice'" in line
        and "'C0GENERAL'" in line
        and "U0BOB" not in line
    )


async def _check(
    tmp_path: Path,
    slack: SlackSandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    admins: str,
) -> tuple[int, str, str]:
    config = tmp_path / "approvals.toml"
    config.write_text(f"[slack]\nadmins = {admins}\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", slack.signing_secret)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["check", "--config", str(config)])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_check_names_each_unknown_admin(
    tmp_path: Path, slack: SlackSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slack.usergroups["S0LEADS"] = frozenset({"U0DAVE"})
    code, out, err = await _check(tmp_path, slack, monkeypatch, capsys, '["U0ALICE", "S0LEADS"]')
    assert code == 0, err
    assert "admins (2) are known" in out

    code, _, err = await _check(
        tmp_path, slack, monkeypatch, capsys, '["U0ALICE", "U0NOBODY", "S0LEADS", "S0GONE"]'
    )
    assert code == 2
    lines = [line for line in err.splitlines() if "admins" in line]
    assert len(lines) == 2, err
    assert "U0NOBODY" in lines[0] and "user_not_found" in lines[0]
    assert "S0GONE is not a user group" in lines[1]

    slack.scopes.discard("usergroups:read")
    code, _, err = await _check(tmp_path, slack, monkeypatch, capsys, '["S0LEADS", "S0GONE"]')
    assert code == 2
    (line,) = [line for line in err.splitlines() if "admins" in line]
    assert "usergroups:read" in line
