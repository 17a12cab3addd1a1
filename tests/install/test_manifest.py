"""manifest.yml asks Slack for exactly what the code uses: scopes, the slash command, events.

An admin installs the app from this file alone; a missing scope shows up as `missing_scope` in
production, an extra one is a permission nobody needs. So the test reads the code the way a reviewer
would: every Web API method the bot calls, every listener it registers, every subcommand it answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.listeners.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
# Web API method → the bot scopes it needs (api.slack.com/methods). conversations.info needs the one
# for the conversation's type; the bot reads public and private channels it posts to.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.delete": {"chat:write"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.members": {"channels:read", "groups:read"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "usergroups.list": {"usergroups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "conversations.open": {"im:write"},
    "conversations.join": {"channels:join"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "views.open": set(),
    "views.push": set(),
    "views.update": set(),
    "views.publish": set(),
}
CALL = re.compile(
    r"\.(chat|views|users|usergroups|conversations|auth|reactions|team|files|bots|apps)_([A-Za-z_]+)\("
)


def _manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _sources() -> list[Path]:
    """The code that talks to Slack in production (connectors talk to vendors; sandboxes and the demo
    are not the bot)."""
    found: list[Path] = []
    for top in ("bot", "store"):
        for path in (ROOT / top).rglob("*.py"):
            if "sandbox" in path.parts or path.name in ("sandbox.py", "demo.py"):
                continue
            found.append(path)
    return found


def _called_methods() -> set[str]:
    methods: set[str] = set()
    for path in _sources():
        for family, name in CALL.findall(path.read_text()):
            methods.add(f"{family}.{name.replace('_', '.')}")
    return methods


def test_the_scan_finds_the_calls_the_bot_is_known_to_make() -> None:
    called = _called_methods()
    assert {"chat.postMessage", "chat.update", "views.open", "users.lookupByEmail"} <= called


def test_bot_scopes_are_exactly_what_the_code_calls() -> None:
    called = _called_methods()
    unknown = sorted(m for m in called if m not in METHOD_SCOPES)
    assert not unknown, f"add these Web API methods to METHOD_SCOPES: {unknown}"
    needed = {"commands"} | set().union(*(METHOD_SCOPES[m] for m in called))
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert granted - needed == set(), f"manifest asks for scopes no code uses: {sorted(granted - needed)}"
    assert needed - granted == set(), f"code needs scopes the manifest lacks: {sorted(needed - granted)}"


def test_im_write_only_if_conversations_open_is_called() -> None:
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert ("im:write" in granted) == ("conversations.open" in _called_methods())


def _listener_args(kind: str) -> set[str]:
    pattern = re.compile(rf"@app\.{kind}\(\s*\"([^\"]+)\"")
    return {m for p in (ROOT / "bot" / "listeners").glob("*.py") for m in pattern.findall(p.read_text())}


def test_command_and_events_match_the_listeners() -> None:
    manifest = _manifest()
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == _listener_args("command") == {"/approvals"}
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert events == _listener_args("event")


def test_usage_hint_names_every_subcommand() -> None:
    listeners = ROOT / "bot" / "listeners"
    text = "\n".join(p.read_text() for p in listeners.glob("*.py"))
    subcommands = set(SUBCOMMANDS) | set(re.findall(r'sub == "(\w+)"', text))
    subcommands |= set(re.findall(r'deps\.subcommands\["(\w+)"\]', text))
    assert len(subcommands) >= 8
    (command,) = _manifest()["features"]["slash_commands"]
    hint_words = set(re.findall(r"[a-z]+", command["usage_hint"]))
    assert subcommands - hint_words == set(), f"usage_hint misses {sorted(subcommands - hint_words)}"


def test_messages_tab_is_read_only_and_greenhouse_is_not_promised_in_slack() -> None:
    manifest = _manifest()
    assert manifest["features"]["app_home"]["messages_tab_read_only_enabled"] is True
    description = manifest["display_information"]["description"]
    # Greenhouse has no approve endpoint: its approvals are decided in Greenhouse (README, Greenhouse).
    before_semicolon = description.split(";")[0]
    assert "Greenhouse" not in before_semicolon
    assert "Approve" in before_semicolon


def test_check_asks_for_the_manifest_scopes() -> None:
    from bot.slack_install import REQUIRED_SCOPES

    assert set(_manifest()["oauth_config"]["scopes"]["bot"]) == REQUIRED_SCOPES
