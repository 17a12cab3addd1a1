"""What a Slack request body must look like before Bolt and the listeners read it.

Why a gate of our own: Bolt's request parsing and its id extractors index into the body without
checking types (`"id" in payload["enterprise"]`, `payload["actions"][0]`), so a body of the wrong
shape raises deep inside Bolt and surfaces as an error with a traceback. Slack never sends such a
body; when one arrives signed, it is refused here with a 400 and one log line. The models check
only the keys Bolt and our readers use, and let everything else through untouched (`Any` is not
walked, so a large message payload costs next to nothing).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class Unreadable(ValueError):
    """The body is signed but cannot be read as a Slack request; `why` is short and safe to log."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _HasId(_Shape):
    id: str | None = None


class _User(_HasId):
    team_id: str | None = None


class _Authorization(_Shape):
    enterprise_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    is_enterprise_install: bool | str | None = None


class _Container(_Shape):
    channel_id: str | None = None
    message_ts: str | None = None
    view_id: str | None = None


class _Action(_Shape):
    action_id: str
    block_id: str | None = None


class _ViewState(_Shape):
    values: dict[str, dict[str, dict[str, Any]]] | None = None


class _View(_HasId):
    callback_id: str | None = None
    private_metadata: str | None = None
    state: _ViewState | None = None
    team_id: str | None = None
    app_installed_team_id: str | None = None


class _Event(_Shape):
    type: str
    user: str | _User | None = None
    channel: str | _HasId | None = None
    team: str | _HasId | None = None
    enterprise: str | _HasId | None = None
    tab: str | None = None


# Bolt reads these as objects or lists whenever the key is present ("view" in body → view.get(…)),
# so a present null breaks it as surely as a number would.
_NEVER_NULL = ("view", "event", "actions", "container", "authorizations", "message", "state")


class _Body(_Shape):
    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _NEVER_NULL:
                if key in data and data[key] is None:
                    raise ValueError(f"{key} is null")
        return data

    type: str | None = None
    token: str | None = None
    enterprise: str | _HasId | None = None
    enterprise_id: str | None = None
    team: str | _HasId | None = None
    team_id: str | None = None
    user: str | _User | None = None
    user_id: str | None = None
    channel: str | _HasId | None = None
    channel_id: str | None = None
    container: _Container | None = None
    authorizations: list[_Authorization] | None = None
    is_enterprise_install: bool | str | None = None
    is_ext_shared_channel: bool | None = None
    actions: list[_Action] | None = None
    action_id: str | None = None
    block_id: str | None = None
    value: str | None = None
    view: _View | None = None
    event: _Event | None = None
    event_id: str | None = None
    command: str | None = None
    text: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    callback_id: str | None = None
    challenge: str | None = None
    api_app_id: str | None = None


def check(data: Any) -> dict[str, Any]:
    """`data` (a body as Bolt parsed it) if it is an object of the shape Slack sends, else `Unreadable`."""
    if not isinstance(data, dict):
        raise Unreadable("the body is not a JSON object")
    try:
        _Body.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][:4])
        raise Unreadable(f"{where or 'the body'} has an unexpected shape") from None
    except RecursionError:
        raise Unreadable("the body nests too deeply") from None
    return data


def parse(body: str, content_type: str | None) -> dict[str, Any]:
    """The body as Bolt reads it (the rules of slack_bolt.request.internals.parse_body), refused
    with `Unreadable` when Bolt would fail on it or get something Slack never sends. The server
    lets Bolt parse (once) and calls `check`; this is the same gate for a body on its own."""
    if not body:
        return {}
    if content_type == "application/json" or body.startswith("{"):
        data: Any = _json(body, "the JSON body")
    elif "payload" in body:
        payload = dict(parse_qsl(body, keep_blank_values=True)).get("payload")
        data = _json(payload, "payload=") if payload is not None else {}
    else:
        data = dict(parse_qsl(body, keep_blank_values=True))
    return check(data)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:  # nesting Slack never sends, e.g. 100,000 brackets
        raise Unreadable(f"{what} nests too deeply") from None
    except ValueError:
        raise Unreadable(f"{what} is not JSON") from None
