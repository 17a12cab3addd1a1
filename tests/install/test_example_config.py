"""docs/approvals.example.toml names every connector and every key, and the bot accepts it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from bot.config import parse_config
from connectors.registry import specs

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "approvals.example.toml"
COMMON = {"name", "type", "poll_interval", "channel", "channel_copy", "reminders"}
# Greenhouse is moving to Harvest v3 (OAuth client credentials); the example documents those keys.
GREENHOUSE_V3 = {
    "api_version",
    "base_url",
    "auth_url",
    "client_id",
    "client_secret",
    "service_user_id",
    "webhook_secret",
    "users",
    "ui_url",
}


def _example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def _keys_for(kind: str) -> set[str]:
    fields = set(specs()[kind].settings.model_fields)
    if kind == "greenhouse" and "client_id" not in fields:
        return GREENHOUSE_V3
    return fields


def _commented_keys() -> dict[str, set[str]]:
    """Keys shown commented out (an alternative, like `token` for `password`), per connector type."""
    found: dict[str, set[str]] = {}
    for block in EXAMPLE.read_text().split("[[connectors]]")[1:]:
        kind = re.search(r'^type = "(\w+)"', block, flags=re.M)
        assert kind is not None
        found[kind.group(1)] = set(re.findall(r"^# (\w+) = ", block, flags=re.M))
    return found


def test_every_connector_and_every_key_is_in_the_example() -> None:
    tables = {c["type"]: c for c in _example()["connectors"]}
    assert set(tables) == set(specs())
    commented = _commented_keys()
    for kind, table in tables.items():
        keys = (set(table) - COMMON) | commented.get(kind, set())
        expected = _keys_for(kind)
        assert keys == expected, f"{kind}: missing {expected - keys}, unknown {keys - expected}"
    assert commented["flexdeploy"] == commented["herzum"] == {"token"}


def test_the_bot_accepts_the_example() -> None:
    raw = _example()
    env = {name: "x" for name in re.findall(r"\$\{(\w+)\}", EXAMPLE.read_text())}
    usable = [
        c for c in raw["connectors"] if _keys_for(c["type"]) == set(specs()[c["type"]].settings.model_fields)
    ]
    config = parse_config({**raw, "connectors": usable}, env=env, source=str(EXAMPLE))
    assert {c.type for c in config.connectors} == {c["type"] for c in usable}
    assert config.notify_channel == "C0APPROVALLOG"
    assert config.admins == ("U0123ADMIN", "S0456LEADS")
    assert config.reminders.max == 3
