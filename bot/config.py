"""The one place that reads the environment and the config file.

Why collect problems instead of raising on the first: an admin fixing a config wants every mistake
at once, one line each, with the key it concerns and what to do. `load_config` returns the parsed
config or raises `ConfigError` carrying all the lines.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.registry import VendorSettings, specs

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./approvals.db"


class Env(BaseSettings):
    """The environment variables of the contract (DESIGN.md section 1)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    approvals_config: str = "./approvals.toml"
    approvals_secret_key: SecretStr | None = None
    approvals_lease: str = "15s"  # how long a leader's lease lasts (several replicas)
    # /healthz shows its per-connector detail to callers presenting this as a bearer token
    # (loopback callers see it anyway).
    approvals_healthz_token: SecretStr | None = None

    @property
    def healthz_token(self) -> str | None:
        token = self.approvals_healthz_token
        return token.get_secret_value().strip() if token is not None and _set(token) else None

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token and self.slack_app_token.get_secret_value())

    def problems_for_run(self) -> list[str]:
        """What `run` cannot start without, one line each."""
        problems = []
        if not _set(self.slack_bot_token):
            problems.append(
                "SLACK_BOT_TOKEN is not set: give the bot token (xoxb-…) from your Slack app's OAuth page"
            )
        elif not self.slack_bot_token.get_secret_value().startswith("xoxb-"):  # type: ignore[union-attr]
            problems.append("SLACK_BOT_TOKEN does not look like a bot token: it should start with xoxb-")
        if not self.socket_mode and not _set(self.slack_signing_secret):
            problems.append(
                "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request from Slack with it "
                "(Basic Information → Signing Secret), or set SLACK_APP_TOKEN for Socket Mode"
            )
        if self.socket_mode and not self.slack_app_token.get_secret_value().startswith("xapp-"):  # type: ignore[union-attr]
            problems.append(
                "SLACK_APP_TOKEN does not look like an app-level token: it should start with xapp-"
            )
        if not _set(self.approvals_secret_key):
            problems.append(
                "APPROVALS_SECRET_KEY is not set: it encrypts stored vendor credentials; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        try:
            parse_duration(self.approvals_lease)
        except ValueError as exc:
            problems.append(f"APPROVALS_LEASE: {exc}")
        return problems


def _set(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_DURATION = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: object) -> timedelta:
    """ "90s", "15m", "4h", "2d" (also "1h30m"); at least one second."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"bad duration {text!r}: use a number and a unit, like 90s, 15m, 4h or 2d")
    total = sum(int(number) * _UNITS[unit] for number, unit in re.findall(r"(\d+)\s*([smhd])", text))
    if total < 1:
        raise ValueError(f"bad duration {text!r}: it must be at least one second")
    return timedelta(seconds=total)


_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_days(text: str) -> frozenset[int]:
    """ "mon-fri", "mon,wed,fri", "sat-sun" → weekday numbers (Monday 0)."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            start, _, end = part.partition("-")
            if start not in _DAYS or end not in _DAYS:
                raise ValueError(f"bad working_days {text!r}: use day names like mon-fri or mon,wed,fri")
            a, b = _DAYS.index(start), _DAYS.index(end)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part in _DAYS:
            days.add(_DAYS.index(part))
        else:
            raise ValueError(f"bad working_days {text!r}: use day names like mon-fri or mon,wed,fri")
    return frozenset(days)


def parse_hours(text: str) -> tuple[time, time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not match:
        raise ValueError(f"bad working_hours {text!r}: use HH:MM-HH:MM, like 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 <= 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        raise ValueError(f"bad working_hours {text!r}: hours run 00:00 to 24:00")
    start = time(min(h1, 23), m1 if h1 < 24 else 59)
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"bad working_hours {text!r}: the end must come after the start")
    return start, end


@dataclass(frozen=True)
class Reminders:
    first_after: timedelta = timedelta(hours=4)
    every: timedelta = timedelta(hours=24)
    max: int = 3
    working_hours: tuple[time, time] = (time(9, 0), time(18, 0))
    working_days: frozenset[int] = frozenset(range(5))
    digest: bool = False


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    type: str
    poll_interval: timedelta
    channel: str | None
    reminders: Reminders
    settings: VendorSettings
    # "always": the channel keeps a copy of every card; "unresolved": only of cards whose approvers
    # could not be resolved to Slack users (they are named there).
    channel_copy: str = "always"


@dataclass(frozen=True)
class Config:
    connectors: tuple[ConnectorConfig, ...] = ()
    notify_channel: str | None = None
    reminders: Reminders = field(default_factory=Reminders)
    source: str = ""
    # [slack] admins: Slack user ids (U…/W…) and user-group ids (S…) who may always subscribe
    # channels, cancel paths, reassign and see /approvals status detail.
    admins: tuple[str, ...] = ()

    def connector(self, name: str) -> ConnectorConfig | None:
        for c in self.connectors:
            if c.name == name:
                return c
        return None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(value: Any, where: str, env: Mapping[str, str], problems: list[str]) -> Any:
    """Replace "${NAME}" in every string, recording unset variables as problems."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{where}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, f"{where}.{k}" if where else k, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


_REMINDER_KEYS = {"first_after", "every", "max", "working_hours", "working_days", "digest"}


def _reminders(raw: Any, where: str, base: Reminders, problems: list[str]) -> Reminders:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return base
    values: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where}.{key}"
        try:
            if key in ("first_after", "every"):
                values[key] = parse_duration(value)
            elif key == "max":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"max must be a whole number of reminders (0 or more), not {value!r}")
                values[key] = value
            elif key == "working_hours":
                values[key] = parse_hours(value)
            elif key == "working_days":
                values[key] = parse_days(value)
            elif key == "digest":
                if not isinstance(value, bool):
                    raise ValueError("digest must be true or false")
                values[key] = value
            else:
                problems.append(f"{at}: unknown key (known: {', '.join(sorted(_REMINDER_KEYS))})")
        except ValueError as exc:
            problems.append(f"{at}: {exc}")
    return Reminders(**{**base.__dict__, **values})


_COMMON_KEYS = {"name", "type", "poll_interval", "channel", "channel_copy", "reminders"}
CHANNEL_COPY = ("always", "unresolved")


ADMIN_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")


class _SlackSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notify_channel: str | None = None
    admins: tuple[str, ...] = ()

    @field_validator("admins")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not ADMIN_ID.match(v)]
        if bad:
            raise ValueError(
                f"{', '.join(repr(b) for b in bad)}: give Slack user ids (U…, W…) or user-group ids (S…), "
                "not names; a profile's ⋮ menu → Copy member ID shows one"
            )
        return tuple(dict.fromkeys(value))


def parse_config(raw: Mapping[str, Any], *, env: Mapping[str, str], source: str = "") -> Config:
    problems: list[str] = []
    data = interpolate(dict(raw), "", env, problems)
    known_top = {"slack", "reminders", "connectors"}
    for key in data:
        if key not in known_top:
            problems.append(f"{key}: unknown section (known: [slack], [reminders], [[connectors]])")

    notify_channel = None
    admins: tuple[str, ...] = ()
    try:
        slack_section = _SlackSection.model_validate(data.get("slack") or {})
        notify_channel, admins = slack_section.notify_channel, slack_section.admins
    except ValidationError as exc:
        problems.extend(_pydantic_lines("slack", exc))

    reminders = _reminders(data.get("reminders"), "reminders", Reminders(), problems)

    connectors: list[ConnectorConfig] = []
    raw_connectors = data.get("connectors") or []
    if not isinstance(raw_connectors, list):
        problems.append("connectors: use [[connectors]] tables, one per vendor instance")
        raw_connectors = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw_connectors):
        connector = _connector(index, entry, seen, reminders, problems)
        if connector is not None:
            connectors.append(connector)

    if problems:
        raise ConfigError(problems)
    return Config(tuple(connectors), notify_channel, reminders, source, admins)


def _connector(
    index: int, entry: Any, seen: dict[str, int], reminders: Reminders, problems: list[str]
) -> ConnectorConfig | None:
    """One [[connectors]] table, or None with what is wrong with it added to `problems`.
    `seen` maps the names taken so far to their index, and gains this one's."""
    if not isinstance(entry, dict):
        problems.append(f"connectors[{index}]: must be a table")
        return None
    name = _connector_name(index, entry, seen, problems)
    if name is None:
        return None
    label = f"connectors[{index}] ({name})"
    available = specs()
    type_name = entry.get("type")
    spec = available.get(type_name) if isinstance(type_name, str) else None
    if spec is None:
        problems.append(
            f"{label}.type: unknown connector type {type_name!r} (known: {', '.join(available) or 'none'})"
        )
        return None
    poll = _poll_interval(entry, label, problems)
    channel = _channel(entry, label, problems)
    own_reminders = _reminders(entry.get("reminders"), f"{label}.reminders", reminders, problems)
    channel_copy = _channel_copy(entry, label, problems)
    vendor_keys = {k: v for k, v in entry.items() if k not in _COMMON_KEYS}
    try:
        settings = spec.settings.model_validate(vendor_keys)
    except ValidationError as exc:
        problems.extend(_pydantic_lines(label, exc))
        return None
    return ConnectorConfig(name, spec.type, poll, channel, own_reminders, settings, channel_copy)


def _connector_name(
    index: int, entry: Mapping[str, Any], seen: dict[str, int], problems: list[str]
) -> str | None:
    """The connector's name when it is one users can type (in /approvals connect NAME) and not taken."""
    name = entry.get("name")
    label = f"connectors[{index}] ({name})" if isinstance(name, str) and name else f"connectors[{index}]"
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", name or ""):
        problems.append(
            f"{label}.name: missing or not a simple name (lowercase letters, digits, - and _; users type it "
            "in /approvals connect NAME)"
        )
        return None
    if name in seen:
        problems.append(f"{label}.name: duplicate connector name {name!r} (also connectors[{seen[name]}])")
        return None
    seen[name] = index
    return name


def _poll_interval(entry: Mapping[str, Any], label: str, problems: list[str]) -> timedelta:
    """How often the connector is polled: a minute unless the table says otherwise."""
    if "poll_interval" not in entry:
        return timedelta(seconds=60)
    try:
        return parse_duration(entry["poll_interval"])
    except ValueError as exc:
        problems.append(f"{label}.poll_interval: {exc}")
        return timedelta(seconds=60)


def _channel(entry: Mapping[str, Any], label: str, problems: list[str]) -> str | None:
    """The connector's channel id, or None (no channel; an empty string counts as none)."""
    channel = entry.get("channel")
    if channel is not None and not isinstance(channel, str):
        problems.append(f"{label}.channel: must be a channel id like C0DEPLOYS")
        return None
    return channel or None


def _channel_copy(entry: Mapping[str, Any], label: str, problems: list[str]) -> str:
    """Whether the channel keeps a copy of every card or only of those with approvers not in Slack."""
    channel_copy = entry.get("channel_copy", "always")
    if channel_copy not in CHANNEL_COPY:
        problems.append(
            f'{label}.channel_copy: {channel_copy!r} is not one of "always", "unresolved" (whether the '
            "channel keeps a copy of every card, or only of those whose approvers are not found in Slack)"
        )
        return "always"
    return str(channel_copy)


def _pydantic_lines(where: str, exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        at = f"{where}.{key}" if key else where
        if error["type"] == "missing":
            lines.append(f"{at}: missing key")
        elif error["type"] == "extra_forbidden":
            lines.append(f"{at}: unknown key")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{at}: {message}")
    return lines


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: config file not found (set APPROVALS_CONFIG or pass --config)"])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from exc
    return parse_config(raw, env=os.environ if env is None else env, source=str(path))
