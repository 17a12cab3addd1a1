"""Config validation: every mistake reported at once, one clear line each, with a non-zero exit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, Env, parse_config, parse_days, parse_duration, parse_hours
from connectors.flexdeploy import FlexDeploySettings

GOOD = {
    "slack": {"notify_channel": "C0APPROVALS"},
    "reminders": {"first_after": "4h", "every": "24h", "max": 3, "working_hours": "09:00-18:00"},
    "connectors": [
        {
            "name": "deploys",
            "type": "flexdeploy",
            "base_url": "https://fd.example.com/flexdeploy",
            "poll_interval": "60s",
            "channel": "C0DEPLOYS",
            "username": "${FD_USER}",
            "password": "${FD_PASSWORD}",
        }
    ],
}
ENV = {"FD_USER": "svc", "FD_PASSWORD": "s3cret"}


def _problems(raw: Mapping[str, object], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env=ENV if env is None else env)
    return caught.value.problems


def test_a_good_config_parses_with_env_interpolated() -> None:
    config = parse_config(GOOD, env=ENV)
    (deploys,) = config.connectors
    assert deploys.poll_interval == timedelta(seconds=60)
    assert deploys.settings.base_url == "https://fd.example.com/flexdeploy"
    assert isinstance(deploys.settings, FlexDeploySettings)
    assert deploys.settings.password == "s3cret"
    assert config.reminders.first_after == timedelta(hours=4)
    assert deploys.reminders.max == 3


def test_every_problem_is_reported_on_its_own_line() -> None:
    raw = {
        "connectors": [
            {"name": "a", "type": "nosuchvendor", "base_url": "x"},
            {
                "name": "b",
                "type": "flexdeploy",
                "base_url": "https://x",
                "username": "u",
                "password": "p",
                "poll_interval": "5 minutes",
                "colour": "blue",
            },
            {"name": "b", "type": "flexdeploy", "base_url": "https://x", "username": "u", "password": "p"},
            {
                "name": "c",
                "type": "flexdeploy",
                "base_url": "https://x",
                "username": "${NOPE}",
                "password": "p",
            },
        ],
        "reminders": {"every": "0s", "working_days": "mon-funday"},
    }
    problems = _problems(raw)
    text = "\n".join(problems)
    assert "connectors[0] (a).type: unknown connector type 'nosuchvendor'" in text
    assert "connectors[1] (b).poll_interval: bad duration '5 minutes'" in text
    assert "connectors[1] (b).colour: unknown key" in text
    assert "connectors[2] (b).name: duplicate connector name 'b'" in text
    assert "environment variable NOPE is not set" in text
    assert "reminders.every: bad duration '0s': it must be at least one second" in text
    assert "reminders.working_days" in text
    assert len(problems) == len(set(problems)) >= 7


def test_a_missing_vendor_key_is_named() -> None:
    raw = {"connectors": [{"name": "d", "type": "flexdeploy", "base_url": "https://x"}]}
    assert any("connectors[0] (d)" in p and "username" in p for p in _problems(raw))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "5x", "0s", "-1m", "h"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_days_and_hours() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("sat,sun") == frozenset({5, 6})
    start, end = parse_hours("09:00-18:00")
    assert (start.hour, end.hour) == (9, 18)
    with pytest.raises(ValueError, match="end must come after"):
        parse_hours("18:00-09:00")


def test_run_requires_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "APPROVALS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    problems = Env().problems_for_run()
    assert any("SLACK_BOT_TOKEN" in p for p in problems)
    assert any("SLACK_SIGNING_SECRET" in p for p in problems)
    assert any("APPROVALS_SECRET_KEY" in p for p in problems)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("APPROVALS_SECRET_KEY", "k")
    assert Env().problems_for_run() == [], "Socket Mode needs no signing secret"


def test_cli_exits_non_zero_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "approvals.toml"
    path.write_text(
        '[[connectors]]\nname = "x"\ntype = "nope"\n[[connectors]]\nname = "x"\ntype = "flexdeploy"\n'
    )
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert all(line.startswith("error: ") for line in err)


def test_cli_reports_a_missing_or_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["poll", "--once", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("[[connectors]\n")
    assert main(["check", "--config", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
