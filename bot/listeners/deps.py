"""What listeners are given: the services, the Slack gateway, and small payload readers.

Payload readers are defensive on purpose: a malformed or unexpected payload must end in a clear
private answer or a harmless ack, never an exception that Slack shows as an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.ack_first import AckFirst
from bot.services import Origin, Services
from bot.slack.gateway import SlackGateway


@dataclass
class Deps:
    services: Services
    # Interaction answers (ephemeral, response_url, views.open/update) go straight through it.
    gateway: SlackGateway
    # Background work started by a listener waits on it, so acknowledgements go first.
    ack_first: AckFirst = field(default_factory=AckFirst)
    # /approvals subcommands added by other modules: name → handler(deps, user_id, args, body, respond)
    subcommands: dict[str, Callable[..., Any]] = field(default_factory=dict)
    help_lines: list[str] = field(default_factory=list)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 256) -> str | None:
    """A string Slack would send here (ids, timestamps, URLs are short); anything else is absent."""
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


# Slack's ids (U…, W…, C…, T…) are short runs of letters and digits.
_SLACK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def slack_id(value: Any) -> str | None:
    """A Slack id, or None: never a string with control characters (PostgreSQL refuses NUL) or
    markup that would end up in the audit, the log or a mention."""
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else None


def user_id(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict):
        return slack_id(user.get("id"))
    return slack_id(body.get("user_id"))


def origin_of(body: Mapping[str, Any]) -> Origin:
    container = _dict(body.get("container"))
    channel = _dict(body.get("channel"))
    return Origin(
        channel=slack_id(channel.get("id")) or slack_id(container.get("channel_id")),
        ts=_str(container.get("message_ts"), 64),
        response_url=_str(body.get("response_url"), 2000),
    )


def metadata(body: Mapping[str, Any]) -> dict[str, str]:
    """The modal's private_metadata: only string values are kept (the bot writes nothing else)."""
    raw = _dict(body.get("view")).get("private_metadata")
    if not isinstance(raw, str) or not raw or len(raw) > 3000:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}


def view_id(body: Mapping[str, Any]) -> str | None:
    return _str(_dict(body.get("view")).get("id"), 64)


def view_values(body: Mapping[str, Any]) -> dict[str, str]:
    """Input block values by block id, flattened to strings per element type."""
    state = _dict(_dict(body.get("view")).get("state"))
    out: dict[str, str] = {}
    for block_id, actions in _dict(state.get("values")).items():
        if not isinstance(actions, dict):
            continue
        for element in actions.values():
            if not isinstance(element, dict):
                continue
            kind = element.get("type")
            value: Any = None
            if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
                value = element.get("value")
            elif kind in ("static_select", "external_select"):
                value = _dict(element.get("selected_option")).get("value")
            elif kind == "users_select":
                value = element.get("selected_user")
            elif kind == "checkboxes":
                value = "yes" if element.get("selected_options") else ""
            if isinstance(value, str):
                out[str(block_id)] = value
    return out
