"""What listeners are given: the services, the Slack gateway, and small payload readers.

Payload readers are defensive on purpose: a malformed or unexpected payload must end in a clear
private answer or a harmless ack, never an exception that Slack shows as an error.
"""

from __future__ import annotations

import json
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


def user_id(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict) and isinstance(user.get("id"), str):
        return str(user["id"])
    value = body.get("user_id")
    return value if isinstance(value, str) else None


def origin_of(body: Mapping[str, Any]) -> Origin:
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    assert isinstance(container, dict) and isinstance(channel, dict)
    return Origin(
        channel=channel.get("id") or container.get("channel_id"),
        ts=container.get("message_ts"),
        response_url=body.get("response_url") if isinstance(body.get("response_url"), str) else None,
    )


def metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    assert isinstance(view, dict)
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def view_values(body: Mapping[str, Any]) -> dict[str, str]:
    """Input block values by block id, flattened to strings per element type."""
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    assert isinstance(view, dict)
    state = view.get("state") if isinstance(view.get("state"), dict) else {}
    assert isinstance(state, dict)
    out: dict[str, str] = {}
    for block_id, actions in (state.get("values") or {}).items():
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
                value = (element.get("selected_option") or {}).get("value")
            elif kind == "users_select":
                value = element.get("selected_user")
            elif kind == "checkboxes":
                value = "yes" if element.get("selected_options") else ""
            if isinstance(value, str):
                out[str(block_id)] = value
    return out
