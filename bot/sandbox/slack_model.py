"""The Slack sandbox's vocabulary: Slack's constants and limits, the state a test reads (messages,
ephemerals, views, calls), and how Web API arguments arrive on the wire.

Shared by every surface module of the sandbox; holds no behaviour beyond parsing and rendering.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.render import message_to_text, view_to_text

BOT_TOKEN = "xoxb-sandbox-bot-token"
SIGNING_SECRET = "sandbox-signing-secret"
VERIFICATION_TOKEN = "sandbox-verification-token"  # deprecated by Slack, still sent in payloads
TEAM_ID = "T0SANDBOX"
TEAM_DOMAIN = "sandbox"
TEAM_NAME = "Sandbox"
APP_ID = "A0APPROVALS"
BOT_ID = "B0APPROVALS"
BOT_USER_ID = "U0APPROVALSBOT"
BOT_NAME = "approvals-bot"
# The bot scopes of manifest.yml (DESIGN.md, Slack surface).
DEFAULT_SCOPES = frozenset(
    {
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "groups:history",
        "groups:read",
        "im:history",
        "im:write",
        "usergroups:read",
        "users:read",
        "users:read.email",
    }
)

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
TEXT_MAX = 40_000
VIEW_TEXT_MAX = 24  # modal title, submit and close
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
EXTERNAL_ID_MAX = 255
VIEW_BYTES_MAX = 250_000
VIEW_STACK_MAX = 3  # views.open plus two views.push
TRIGGER_TTL = 3.0
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60
RATED_METHODS = frozenset({"chat.postMessage", "chat.update"})
# Slack's documented rate tier of each method (docs.slack.dev/reference/methods/*) and each tier's
# calls per minute per workspace. chat.postMessage is "special": about one per second per channel.
# Written here apart from the gateway's own table (bot/slack/gateway.py) on purpose: the sandbox
# plays Slack, so a tier the bot gets wrong meets Slack's 429 in the tests instead of agreeing with it.
METHOD_TIERS = {
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "views.open": 4,
    "views.update": 4,
    "views.push": 4,
    "views.publish": 4,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "conversations.open": 3,
    "conversations.info": 3,
    "conversations.members": 4,
    "conversations.history": 3,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
}
TIER_PER_MINUTE = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Scopes each method needs; conversations.info depends on the conversation type (see _info_scope).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "conversations.join": "channels:join",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
}

# Long names Slack gives in users.info `tz_label`, keyed by the zone's abbreviation.
TZ_LABELS = {
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "JST": "Japan Standard Time",
    "UTC": "Coordinated Universal Time",
    "GMT": "Greenwich Mean Time",
}

Clock = Callable[[], float]
OnPost = Callable[[str, str, str, list[dict[str, Any]], str], Awaitable[None] | None]
_T = TypeVar("_T")


class SandboxError(LookupError):
    """The test or the demo asked the sandbox for something Slack would not let a user do."""


class _Refused(Exception):
    """A Web API answer {"ok": false, "error": ...}; `extra` carries Slack's detail fields."""

    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


# ---- state a test reads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """A conversation the sandbox knows; `members` None means every person in the cast."""

    id: str
    name: str
    bot_member: bool = True
    private: bool = False
    members: frozenset[str] | None = None

    def has_member(self, user: str) -> bool:
        return self.members is None or user in self.members


def default_channels() -> dict[str, Channel]:
    return {
        "C0GENERAL": Channel("C0GENERAL", "general"),
        "C0DEPLOYS": Channel("C0DEPLOYS", "deploys"),
        "C0APPROVALS": Channel("C0APPROVALS", "approvals"),
        "C0NOTMEMBER": Channel("C0NOTMEMBER", "not-member", bot_member=False),
    }


@dataclass
class Call:
    """One Web API request as the app sent it (the token is never recorded)."""

    method: str
    args: dict[str, Any]
    at: float
    status: int = 200
    error: str | None = None


@dataclass(frozen=True)
class Revision:
    text: str
    blocks: list[dict[str, Any]]
    at: float


@dataclass
class StoredMessage:
    """A message as it is now in its channel; `history` holds the earlier versions, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    user: str
    at: float
    thread_ts: str | None = None
    from_bot: bool = True
    broadcast: bool = False  # a thread reply also shown in the channel (reply_broadcast)
    history: list[Revision] = field(default_factory=list)
    # chat.postMessage `metadata` ({"event_type", "event_payload"}); shown by conversations.history
    # only with include_all_metadata, as Slack does.
    metadata: dict[str, Any] | None = None

    @property
    def edits(self) -> int:
        return len(self.history)

    def payload(self) -> dict[str, Any]:
        """The message object Slack puts in API answers and interaction payloads."""
        message: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "text": self.text,
            "ts": self.ts,
            "team": TEAM_ID,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.from_bot:
            message.update(
                bot_id=BOT_ID,
                app_id=APP_ID,
                bot_profile={"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "team_id": TEAM_ID},
            )
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.history:
            message["edited"] = {"user": self.user, "ts": f"{self.at:.6f}"}
        return message

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return message_to_text(self.text, self.blocks, names)


@dataclass
class Ephemeral:
    """An "only visible to you" message: from chat.postEphemeral, a response_url, or a command's ack."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    ts: str
    source: str  # "api" | "response_url" | "ack"
    at: float
    thread_ts: str | None = None
    deleted: bool = False
    history: list[Revision] = field(default_factory=list)

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return message_to_text(self.text, self.blocks, names)


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url, whatever came of it (`status` is what the sandbox answered)."""

    hook: str
    user: str
    channel: str | None
    response_type: str | None
    replace_original: bool
    delete_original: bool
    text: str | None
    blocks: list[dict[str, Any]] | None
    status: int
    at: float


@dataclass
class StoredView:
    """A modal or Home tab; `view` is the full object as Slack returns it from views.*."""

    id: str
    user: str
    view: dict[str, Any]
    open: bool = True
    closed_by: str | None = None  # "submit", "clear", "user"
    errors: dict[str, str] | None = None  # the last response_action "errors"
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.view.get("type"))

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = self.view.get("blocks") or []
        return blocks

    @property
    def title(self) -> str:
        title = self.view.get("title") or {}
        return str(title.get("text", "")) if isinstance(title, Mapping) else ""

    def render(self, names: Mapping[str, str] | None = None) -> str:
        return view_to_text(self.view, names)


@dataclass(frozen=True)
class AppReply:
    """What the app answered a request the sandbox sent it as Slack."""

    status: int
    text: str
    timed_out: bool = False

    @property
    def json(self) -> Any:
        """The body parsed as JSON; None when empty or not JSON."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None


@dataclass(frozen=True)
class SubmitResult(AppReply):
    """A view_submission's answer and what Slack did with the modal because of it."""

    closed: bool = False
    response_action: str | None = None


@dataclass
class _Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class _Hook:
    """A response_url: bound to the user and channel of one interaction and to its source message."""

    id: str
    user: str
    channel: str | None
    message: tuple[str, str] | None  # (channel, ts) of the message clicked
    ephemeral: Ephemeral | None  # or the ephemeral clicked
    created_at: float
    uses: int = 0


@dataclass
class _Bucket:
    """A token bucket on the injected clock (Slack: about 1 message per second per channel, short bursts)."""

    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def wait(self) -> float:
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass
class _Rates:
    per_channel_per_second: float
    burst: float
    global_per_minute: float | None
    channels: dict[str, _Bucket] = field(default_factory=dict)
    workspace: _Bucket | None = None
    # Methods limited per channel (with the workspace-wide bucket above).
    channel_methods: frozenset[str] = RATED_METHODS
    # Tiers: calls per minute per workspace by method, and seconds of that rate allowed at once.
    per_method_per_minute: Mapping[str, float] = field(default_factory=dict)
    burst_seconds: float = 3.0
    methods: dict[str, _Bucket] = field(default_factory=dict)

    def method_bucket(self, method: str, now: float) -> _Bucket | None:
        per_minute = self.per_method_per_minute.get(method)
        if per_minute is None:
            return None
        bucket = self.methods.get(method)
        if bucket is None:
            cap = max(1.0, per_minute / 60 * self.burst_seconds)
            bucket = self.methods[method] = _Bucket(per_minute / 60, cap, cap, now)
        return bucket


# ---- request parsing ----------------------------------------------------------------------------------


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Slack takes arguments as query params, form fields or a JSON body, in any mix."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    if request.content_type == JSON:
        try:
            body = await request.json()
        except ValueError:
            raise _Refused("invalid_json") from None
        if not isinstance(body, dict):
            raise _Refused("invalid_json")
        args.update(body)
    else:
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _json_arg(args: Mapping[str, Any], key: str, error: str) -> Any:
    """Form posts carry blocks/view/attachments as JSON strings; JSON posts carry them as is."""
    value = args.get(key)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _Refused(error) from None
    return value


def _decoded(args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as a test wants to read them: JSON-string fields of form posts decoded."""
    decoded = dict(args)
    for key in ("blocks", "view", "attachments"):
        value = decoded.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                decoded[key] = json.loads(value)
    return decoded


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _take(queue: dict[str, deque[_T]], method: str) -> _T | None:
    for key in (method, "*"):
        pending = queue.get(key)
        if pending:
            return pending.popleft()
    return None


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    try:
        return int(seconds), int(fraction or 0)
    except ValueError:
        return 0, 0


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else "" for line in text.split("\n"))
