"""A local Slack: the Web API, response_urls, and a client that sends an app signed requests as Slack does.

Why a fake at the wire rather than patching slack_sdk: the bot's own AsyncWebClient, Bolt's signature
check and ack handling, and Slack's rules (DM channel ids, trigger_id expiry, Block Kit limits, rate
limits, response_url use counts) are then exercised exactly as in production. bolt-python's
tests/mock_web_api_server is the model; unlike it, this one keeps state (messages with their edit
history, ephemerals, views, the Home tab) so a test reads what a user would see, and a click can only
press a button the current message really shows.

Used by the bot's tests and by `approvals-bot demo` (which also offers /sandbox/messages and
/sandbox/click so a person can drive it with curl).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.render import message_to_text, view_to_text
from connectors.people import CAST, DemoPerson

log = logging.getLogger(__name__)

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
        "chat:write",
        "commands",
        "im:write",
        "users:read",
        "users:read.email",
        "channels:read",
        "groups:read",
        "usergroups:read",
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
    history: list[Revision] = field(default_factory=list)

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


# ---- the sandbox -----------------------------------------------------------------------------------


class SlackSandbox:
    """Slack as an app sees it, on 127.0.0.1.

    Web API at `api_url` (give it to AsyncWebClient as base_url), response_urls at `<url>/response/<id>`,
    a small page for people at `<url>/sandbox`. The client half (`click`, `submit_view`, `command`,
    `event`, …) sends the app signed requests shaped like Slack's.
    """

    def __init__(
        self,
        *,
        token: str = BOT_TOKEN,
        signing_secret: str = SIGNING_SECRET,
        people: Iterable[DemoPerson] = CAST,
        channels: Mapping[str, Channel] | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        clock: Clock = time.time,
        bot_url: str | None = None,
        on_post: OnPost | None = None,
        ack_timeout: float = 3.0,
    ) -> None:
        self._token = token
        self._signing_secret = signing_secret
        self.people: dict[str, DemoPerson] = {p.slack_id: p for p in people}
        self.channels: dict[str, Channel] = dict(channels if channels is not None else default_channels())
        self.scopes: set[str] = set(scopes)
        # User groups (S… id → member user ids), for usergroups.list and usergroups.users.list.
        self.usergroups: dict[str, frozenset[str]] = {}
        self.clock = clock
        self.bot_url = bot_url
        self.on_post = on_post
        self.ack_timeout = ack_timeout

        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], StoredMessage] = {}
        self.deleted: list[StoredMessage] = []
        self.ephemerals: list[Ephemeral] = []
        self.responses: list[ResponsePost] = []
        self.views: dict[str, StoredView] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.rate_limited_count = 0
        # Socket Mode: the app-level token, open WebSocket connections, envelopes awaiting their ack.
        self.app_token = "xapp-sandbox-app-token"
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}

        self._home_ids: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._hooks: dict[str, _Hook] = {}
        self._opened_dms: set[str] = set()
        self._rate_limits: dict[str, deque[int]] = {}
        self._failures: dict[str, deque[str]] = {}
        self._rates: _Rates | None = None
        self._seq = 0
        self._rng = random.Random(20240229)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "conversations.open": self._conversations_open,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }

    def __repr__(self) -> str:  # the token and signing secret stay out of reprs
        return f"SlackSandbox(url={self._url!r}, messages={len(self.messages)}, calls={len(self.calls)})"

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{hook}", self._response_url)
        app.router.add_get("/sandbox", self._page_help)
        app.router.add_get("/sandbox/messages", self._page_messages)
        app.router.add_post("/sandbox/click", self._page_click)
        app.router.add_get("/sandbox/views", self._page_views)
        app.router.add_post("/sandbox/submit", self._page_submit)
        app.router.add_post("/sandbox/command", self._page_command)
        app.router.add_get("/socket-mode/{id}", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self._url = f"http://{host}:{bound}"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the Slack sandbox is not started")
        return self._url

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk's AsyncWebClient (SLACK_API_URL)."""
        return f"{self.url}/api/"

    @property
    def token(self) -> str:
        return self._token

    @property
    def signing_secret(self) -> str:
        return self._signing_secret

    # ---- people and conversations ----------------------------------------------------------------------

    def person(self, ref: str) -> DemoPerson:
        """A person by Slack id, handle or email."""
        key = ref.strip().lstrip("@").lower()
        for p in self.people.values():
            if key in (p.slack_id.lower(), p.handle, p.email.lower()):
                return p
        raise SandboxError(f"no person {ref!r} in the Slack sandbox (known: {', '.join(self.people)})")

    def dm_channel(self, user: str) -> str:
        """The D… id of the bot's DM with this person: stable, as Slack's is."""
        return "D" + self.person(user).slack_id[1:]

    def _dm_owner(self, channel: str) -> str | None:
        if channel.startswith("D"):
            candidate = "U" + channel[1:]
            if candidate in self.people:
                return candidate
        return None

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.id] = channel

    def channel_name(self, channel: str) -> str:
        if channel in self.channels:
            return self.channels[channel].name
        owner = self._dm_owner(channel)
        return f"dm-{self.people[owner].handle}" if owner else channel

    def names(self) -> dict[str, str]:
        """Slack id → display name, for rendering mentions."""
        return {uid: p.name for uid, p in self.people.items()} | {BOT_USER_ID: BOT_NAME}

    def messages_in(self, channel: str) -> list[StoredMessage]:
        channel = self._dm_if_user(channel)
        return sorted(
            (m for m in self.messages.values() if m.channel == channel), key=lambda m: _ts_key(m.ts)
        )

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        uid = self.person(user).slack_id
        return [e for e in self.ephemerals if e.user == uid and not e.deleted]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def post_as_user(self, channel: str, user: str, text: str) -> StoredMessage:
        """Seed a message written by a person (the bot may not edit it: cant_update_message)."""
        uid = self.person(user).slack_id
        ts = self._next_ts()
        msg = StoredMessage(
            channel=channel, ts=ts, text=text, blocks=[], user=uid, at=self.clock(), from_bot=False
        )
        self.messages[(channel, ts)] = msg
        return msg

    def issue_trigger(self, user: str) -> str:
        """A trigger_id as Slack puts in an interaction payload: single use, valid for 3 seconds."""
        uid = self.person(user).slack_id
        self._seq += 1
        trigger_id = f"{self._seq}.{int(self.clock())}.{self._rng.getrandbits(64):016x}"
        self._triggers[trigger_id] = _Trigger(user=uid, issued_at=self.clock())
        return trigger_id

    # ---- fault injection -------------------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` ("*" for any) get HTTP 429 with Retry-After."""
        self._rate_limits.setdefault(method, deque()).extend([retry_after] * times)

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls of `method` ("*" for any) get {"ok": false, "error": error}."""
        self._failures.setdefault(method, deque()).extend([error] * times)

    def enforce_rates(
        self, per_channel_per_second: float = 1.0, burst: float = 3.0, global_per_minute: float | None = None
    ) -> None:
        """Token buckets on chat.postMessage / chat.update, per channel and optionally per workspace.

        Slack: "generally 1 message per second per channel, with short bursts", plus a workspace-wide
        limit. Refusals answer 429 with Retry-After and are counted in `rate_limited_count`.
        """
        self._rates = _Rates(per_channel_per_second, max(1.0, burst), global_per_minute)

    def relax_rates(self) -> None:
        self._rates = None

    # ---- plumbing --------------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        # Slack ts: "<unix seconds>.<6 digits>", unique and increasing within a channel.
        self._seq += 1
        return f"{int(self.clock())}.{self._seq:06d}"

    def _random_id(self, n: int = 5) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    async def _emit(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]], kind: str) -> None:
        if self.on_post is None:
            return
        try:
            result = self.on_post(channel, ts, text, copy.deepcopy(blocks), kind)
            if inspect.isawaitable(result):
                await result
        except Exception:  # the demo's printer must never break the Web API answer
            log.exception("on_post callback failed")

    def _dm_if_user(self, channel: str) -> str:
        if channel[:1] in ("U", "W") and channel in self.people:
            return self.dm_channel(channel)
        return channel

    # ---- Web API ---------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = self.clock()
        try:
            args = await _read_args(request)
        except _Refused as refused:
            self.calls.append(Call(method, {}, at, 200, refused.error))
            return web.json_response({"ok": False, "error": refused.error})
        token = _bearer(request) or str(args.pop("token", "") or "")
        args.pop("token", None)
        call = Call(method, _decoded(args), at)
        self.calls.append(call)
        body, status, headers = await self._answer(method, args, token)
        call.status = status
        call.error = None if body.get("ok") else str(body.get("error"))
        return web.json_response(body, status=status, headers=headers)

    async def _answer(
        self, method: str, args: dict[str, Any], token: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        if method == "apps.connections.open":
            # Socket Mode: only the app-level token (xapp-…) may open a connection.
            if token != self.app_token:
                return {"ok": False, "error": "invalid_auth" if token else "not_authed"}, 200, {}
            return (
                {
                    "ok": True,
                    "url": f"{self.url.replace('http://', 'ws://')}/socket-mode/{self._random_id(8)}",
                },
                200,
                {},
            )
        handler = self._methods.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}, 200, {}
        if not token:
            return {"ok": False, "error": "not_authed"}, 200, {}
        if token != self._token:
            return {"ok": False, "error": "invalid_auth"}, 200, {}
        headers = {"x-oauth-scopes": ",".join(sorted(self.scopes))}
        retry_after = _take(self._rate_limits, method)
        if retry_after is not None:
            return self._too_many(retry_after, headers)
        injected = _take(self._failures, method)
        if injected is not None:
            return {"ok": False, "error": injected}, 200, headers
        if method in RATED_METHODS and self._rates is not None:
            wait = self._spend_rate(self._rate_key(args.get("channel")))
            if wait > 0:
                return self._too_many(max(1, math.ceil(wait)), headers)
        needed = METHOD_SCOPES.get(method)
        if needed and needed not in self.scopes:
            return self._missing_scope(needed, headers)
        try:
            result = await handler(args)
        except _Refused as refused:
            if refused.error == "missing_scope":
                return self._missing_scope(str(refused.extra.get("needed")), headers)
            return {"ok": False, "error": refused.error, **refused.extra}, refused.status, headers
        return {"ok": True, **result}, 200, headers

    def _too_many(
        self, retry_after: int, headers: dict[str, str]
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        self.rate_limited_count += 1
        return {"ok": False, "error": "ratelimited"}, 429, {**headers, "Retry-After": str(retry_after)}

    def _missing_scope(
        self, needed: str, headers: dict[str, str]
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        body = {
            "ok": False,
            "error": "missing_scope",
            "needed": needed,
            "provided": ",".join(sorted(self.scopes)),
        }
        return body, 200, {**headers, "x-accepted-oauth-scopes": needed}

    def _rate_key(self, raw: Any) -> str:
        try:
            return self._conversation(raw, user_ids_as_dm=True)
        except _Refused:
            return str(raw or "")

    def _spend_rate(self, channel: str) -> float:
        rates = self._rates
        assert rates is not None
        now = self.clock()
        bucket = rates.channels.get(channel)
        if bucket is None:
            bucket = rates.channels[channel] = _Bucket(
                rates.per_channel_per_second, rates.burst, rates.burst, now
            )
        buckets = [bucket]
        if rates.global_per_minute:
            if rates.workspace is None:
                cap = max(1.0, rates.global_per_minute / 60 * rates.burst)
                rates.workspace = _Bucket(rates.global_per_minute / 60, cap, cap, now)
            buckets.append(rates.workspace)
        for b in buckets:
            b.refill(now)
        wait = max(b.wait() for b in buckets)
        if wait <= 0:
            for b in buckets:
                b.tokens -= 1.0
        return wait

    # ---- auth, chat ------------------------------------------------------------------------------------

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.url}/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversation(self, raw: Any, *, user_ids_as_dm: bool) -> str:
        """Resolve a channel argument like Slack: C… ids, #names, D… DMs, and U… ids when posting."""
        channel = str(raw or "").strip()
        if not channel:
            raise _Refused("channel_not_found")
        if channel[:1] in ("U", "W"):
            if user_ids_as_dm and channel in self.people:
                return self.dm_channel(channel)
            raise _Refused("channel_not_found")
        if channel in self.channels or self._dm_owner(channel):
            return channel
        name = channel.lstrip("#")
        for c in self.channels.values():
            if c.name == name:
                return c.id
        raise _Refused("channel_not_found")

    def _check_can_post(self, channel: str) -> None:
        info = self.channels.get(channel)
        if info is None or info.bot_member:
            return
        if info.private:
            raise _Refused("channel_not_found")
        if "chat:write.public" not in self.scopes:
            raise _Refused("not_in_channel")

    def _content(
        self, args: Mapping[str, Any], *, required: bool
    ) -> tuple[str | None, list[dict[str, Any]] | None]:
        text = args.get("text")
        if text is None and args.get("markdown_text"):
            text = args["markdown_text"]  # Slack renders markdown_text into the message; kept as its text
        text = None if text is None else str(text)
        blocks = _json_arg(args, "blocks", "invalid_blocks_format")
        if blocks is not None:
            blocks = self._checked_blocks(blocks, MESSAGE_BLOCKS_MAX)
        has_attachments = bool(_json_arg(args, "attachments", "invalid_attachments"))
        if required and not text and not blocks and not has_attachments:
            raise _Refused("no_text")
        if text is not None and len(text) > TEXT_MAX:
            raise _Refused("msg_too_long")
        return text, blocks

    def _checked_blocks(self, blocks: Any, limit: int, pointer: str = "/blocks") -> list[dict[str, Any]]:
        problems = block_problems(blocks, limit, pointer)
        if problems:
            raise _Refused(
                "invalid_blocks",
                errors=problems,
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        return self._with_ids(blocks)

    def _with_ids(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Slack fills in a block_id for each block and an action_id for each element without one."""
        filled = copy.deepcopy(blocks)
        for block in filled:
            block.setdefault("block_id", self._random_id(4))
            for element in _interactive_elements(block):
                element.setdefault("action_id", self._random_id(5))
        return filled

    async def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=True)
        self._check_can_post(channel)
        text, blocks = self._content(args, required=True)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        parent = self.messages.get((channel, thread_ts)) if thread_ts else None
        if parent is not None and parent.thread_ts:
            thread_ts = parent.thread_ts  # a reply to a reply joins the root's thread
        ts = self._next_ts()
        message = StoredMessage(
            channel=channel,
            ts=ts,
            text=text or "",
            blocks=blocks or [],
            user=BOT_USER_ID,
            at=self.clock(),
            thread_ts=thread_ts,
        )
        self.messages[(channel, ts)] = message
        await self._emit(channel, ts, message.text, message.blocks, "post")
        return {"channel": channel, "ts": ts, "message": message.payload()}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack: chat.update needs the D… id for DMs, never the user id posted to.
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        ts = str(args.get("ts") or "")
        if not ts:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: ts"]}
            )
        message = self.messages.get((channel, ts))
        if message is None:
            raise _Refused("message_not_found")
        if not message.from_bot:
            raise _Refused("cant_update_message")
        text, blocks = self._content(args, required=False)
        self._revise(message, text, blocks, text_only_clears_blocks=True)
        await self._emit(channel, ts, message.text, message.blocks, "update")
        return {"channel": channel, "ts": ts, "text": message.text, "message": message.payload()}

    def _revise(
        self,
        target: StoredMessage | Ephemeral,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        *,
        text_only_clears_blocks: bool,
    ) -> None:
        target.history.append(Revision(target.text, target.blocks, target.at))
        if blocks is not None:
            target.blocks = blocks
        elif text is not None and text_only_clears_blocks:
            # Slack: "If blocks is omitted but text is given, the old blocks are removed."
            target.blocks = []
        if text is not None:
            target.text = text
        target.at = self.clock()

    async def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=True)
        user = str(args.get("user") or "")
        if user not in self.people:
            raise _Refused("user_not_found")
        info = self.channels.get(channel)
        if info is not None:
            if not info.bot_member:
                raise _Refused("channel_not_found" if info.private else "not_in_channel")
            if not info.has_member(user):
                raise _Refused("user_not_in_channel")
        elif self._dm_owner(channel) != user:
            raise _Refused("user_not_in_channel")
        text, blocks = self._content(args, required=True)
        ephemeral = self._add_ephemeral(channel, user, text or "", blocks or [], "api", args.get("thread_ts"))
        await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
        return {"message_ts": ephemeral.ts}

    def _add_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[dict[str, Any]],
        source: str,
        thread_ts: Any = None,
    ) -> Ephemeral:
        ephemeral = Ephemeral(
            channel=channel,
            user=user,
            text=text,
            blocks=blocks,
            ts=self._next_ts(),
            source=source,
            at=self.clock(),
            thread_ts=str(thread_ts) if thread_ts else None,
        )
        self.ephemerals.append(ephemeral)
        return ephemeral

    async def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        ts = str(args.get("ts") or "")
        message = self.messages.get((channel, ts))
        if message is None:
            raise _Refused("message_not_found")
        if not message.from_bot:
            raise _Refused("cant_delete_message")
        self.deleted.append(self.messages.pop((channel, ts)))
        return {"channel": channel, "ts": ts}

    # ---- conversations, users --------------------------------------------------------------------------

    async def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            channel = self._conversation(args["channel"], user_ids_as_dm=False)
            return {"no_op": True, "already_open": True, "channel": self._channel_info(channel)}
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _Refused("users_list_not_supplied")
        if len(users) > 8:
            raise _Refused("too_many_users")
        for user in users:
            if user == BOT_USER_ID:
                raise _Refused("cannot_dm_bot")
            if user not in self.people:
                raise _Refused("user_not_found")
        if len(users) > 1:
            channel = "G" + "".join(sorted(u[1:] for u in users))[:20]
        else:
            channel = self.dm_channel(users[0])
        already = channel in self._opened_dms
        self._opened_dms.add(channel)
        info = self._channel_info(channel) if _flag(args.get("return_im")) else {"id": channel}
        return {"no_op": already, "already_open": already, "channel": info}

    def _channel_info(self, channel: str) -> dict[str, Any]:
        owner = self._dm_owner(channel)
        if owner:
            return {
                "id": channel,
                "is_im": True,
                "is_channel": False,
                "is_private": True,
                "user": owner,
                "created": 0,
            }
        if channel.startswith("G") and channel not in self.channels:
            return {"id": channel, "is_mpim": True, "is_im": False, "is_channel": False, "is_private": True}
        info = self.channels[channel]
        return {
            "id": info.id,
            "name": info.name,
            "is_channel": not info.private,
            "is_group": info.private,
            "is_im": False,
            "is_private": info.private,
            "is_member": info.bot_member,
            "is_archived": False,
            "created": 0,
        }

    async def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        if info is None or info.private:
            raise _Refused("method_not_supported_for_channel_type")
        already = info.bot_member
        self.channels[channel] = Channel(info.id, info.name, True, info.private, info.members)
        result: dict[str, Any] = {"channel": self._channel_info(channel)}
        if already:
            result["warning"] = "already_in_channel"
        return result

    async def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        needed = (
            "im:read"
            if self._dm_owner(channel)
            else "groups:read"
            if info and info.private
            else "channels:read"
        )
        if needed not in self.scopes:
            raise _Refused("missing_scope", needed=needed)
        if info is not None and info.private and not info.bot_member:
            raise _Refused("channel_not_found")
        return {"channel": self._channel_info(channel)}

    async def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """Member ids a page at a time (`limit`, `cursor`); same scope rules as conversations.info."""
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        if info is None:
            raise _Refused("channel_not_found")
        needed = "groups:read" if info.private else "channels:read"
        if needed not in self.scopes:
            raise _Refused("missing_scope", needed=needed)
        if info.private and not info.bot_member:
            raise _Refused("channel_not_found")
        members = sorted(info.members if info.members is not None else self.people)
        try:
            start = int(str(args.get("cursor") or "0"))
            limit = max(1, min(1000, int(str(args.get("limit") or "100"))))
        except ValueError as exc:
            raise _Refused("invalid_cursor") from exc
        page = members[start : start + limit]
        following = str(start + limit) if start + limit < len(members) else ""
        return {"members": page, "response_metadata": {"next_cursor": following}}

    async def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "usergroups": [
                {
                    "id": gid,
                    "team_id": TEAM_ID,
                    "handle": gid.lower(),
                    "date_delete": 0,
                    "user_count": len(users),
                }
                for gid, users in sorted(self.usergroups.items())
            ]
        }

    async def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup") or "")
        if group not in self.usergroups:
            raise _Refused("no_such_subteam")
        return {"users": sorted(self.usergroups[group])}

    def _user_object(self, person: DemoPerson) -> dict[str, Any]:
        try:
            zone: ZoneInfo | None = ZoneInfo(person.tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        moment = datetime.fromtimestamp(self.clock(), tz=zone or UTC)
        offset = moment.utcoffset()
        abbreviation = moment.tzname() or "UTC"
        profile: dict[str, Any] = {
            "real_name": person.name,
            "real_name_normalized": person.name,
            "display_name": person.handle,
            "display_name_normalized": person.handle,
            "team": TEAM_ID,
        }
        if "users:read.email" in self.scopes:  # Slack leaves email out without this scope
            profile["email"] = person.email
        return {
            "id": person.slack_id,
            "team_id": TEAM_ID,
            "name": person.handle,
            "deleted": False,
            "real_name": person.name,
            "tz": person.tz,
            "tz_label": TZ_LABELS.get(abbreviation, abbreviation),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_bot": False,
            "is_admin": False,
            "profile": profile,
        }

    async def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if user == BOT_USER_ID:
            bot = {"id": BOT_USER_ID, "team_id": TEAM_ID, "name": BOT_NAME, "deleted": False, "is_bot": True}
            return {
                "user": {**bot, "real_name": BOT_NAME, "profile": {"bot_id": BOT_ID, "real_name": BOT_NAME}}
            }
        person = self.people.get(user)
        if person is None:
            raise _Refused("user_not_found")
        return {"user": self._user_object(person)}

    async def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: email"]}
            )
        for person in self.people.values():
            if person.email.lower() == email:
                return {"user": self._user_object(person)}
        raise _Refused("users_not_found")

    # ---- views -----------------------------------------------------------------------------------------

    def _use_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise _Refused("invalid_trigger_id")
        if trigger.used:
            raise _Refused("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_TTL:
            raise _Refused("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, args: Mapping[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
        view = _json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
            )
        if len(json.dumps(view)) > VIEW_BYTES_MAX:
            raise _Refused("view_too_large")
        problems = view_problems(view, kinds)
        if problems:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
            )
        return view

    def _full_view(
        self, view: Mapping[str, Any], *, view_id: str, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view.get("type"),
            "blocks": self._with_ids(list(view.get("blocks") or [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{self._random_id(8)}",
            "title": copy.deepcopy(view.get("title")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous,
            "root_view_id": root or view_id,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        external = full["external_id"]
        if external and any(
            v.view.get("external_id") == external and v.id != view_id for v in self.views.values()
        ):
            raise _Refused("duplicate_external_id")
        return full

    def _new_view(
        self, user: str, view: Mapping[str, Any], *, root: str | None, previous: str | None
    ) -> StoredView:
        self._seq += 1
        view_id = f"V{self._seq:04d}{self._random_id(6).upper()}"
        stored = StoredView(
            id=view_id,
            user=user,
            view=self._full_view(view, view_id=view_id, root=root, previous=previous),
        )
        self.views[view_id] = stored
        return stored

    async def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args, ("modal",))
        trigger = self._use_trigger(args.get("trigger_id"))
        for old in self._stacks.pop(trigger.user, []):  # a new modal replaces whatever was open
            self.views[old].open = False
            self.views[old].closed_by = "replaced"
        stored = self._new_view(trigger.user, view, root=None, previous=None)
        self._stacks[trigger.user] = [stored.id]
        return {"view": copy.deepcopy(stored.view)}

    async def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args, ("modal",))
        trigger = self._use_trigger(args.get("trigger_id"))
        stack = self._stacks.setdefault(trigger.user, [])
        if len(stack) >= VIEW_STACK_MAX:
            raise _Refused("push_limit_reached")
        root = stack[0] if stack else None
        stored = self._new_view(trigger.user, view, root=root, previous=stack[-1] if stack else None)
        stack.append(stored.id)
        return {"view": copy.deepcopy(stored.view)}

    def _find_view(self, args: Mapping[str, Any]) -> StoredView:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] view_id or external_id"]}
            )
        for stored in self.views.values():
            if (view_id and stored.id == view_id) or (
                external_id and stored.view.get("external_id") == external_id
            ):
                return stored
        raise _Refused("not_found")

    async def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = self._find_view(args)
        view = self._checked_view(args, (stored.kind,))
        if args.get("hash") and args["hash"] != stored.view.get("hash"):
            raise _Refused("hash_conflict")
        self._replace_view(stored, view)
        return {"view": copy.deepcopy(stored.view)}

    def _replace_view(self, stored: StoredView, view: Mapping[str, Any]) -> None:
        stored.history.append(stored.view)
        stored.view = self._full_view(
            view,
            view_id=stored.id,
            root=stored.view.get("root_view_id"),
            previous=stored.view.get("previous_view_id"),
        )
        stored.errors = None
        if stored.kind == "home":
            self.home[stored.user] = stored.view

    async def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        if user not in self.people:
            raise _Refused("user_not_found")
        view = self._checked_view(args, ("home",))
        existing = self.views.get(self._home_ids.get(user, ""))
        if existing is not None:
            if args.get("hash") and args["hash"] != existing.view.get("hash"):
                raise _Refused("hash_conflict")
            self._replace_view(existing, view)
            stored = existing
        else:
            stored = self._new_view(user, view, root=None, previous=None)
            self._home_ids[user] = stored.id
            self.home[user] = stored.view
        return {"view": copy.deepcopy(stored.view)}

    # ---- response_url ----------------------------------------------------------------------------------

    def _new_hook(
        self,
        user: str,
        channel: str | None,
        *,
        message: tuple[str, str] | None = None,
        ephemeral: Ephemeral | None = None,
    ) -> str:
        self._seq += 1
        hook_id = f"{TEAM_ID}-{self._seq}-{self._rng.getrandbits(96):024x}"
        self._hooks[hook_id] = _Hook(hook_id, user, channel, message, ephemeral, self.clock())
        return f"{self.url}/response/{hook_id}"

    async def _response_url(self, request: web.Request) -> web.Response:
        hook = self._hooks.get(request.match_info["hook"])
        if hook is None:
            return web.json_response({"ok": False, "error": "invalid_url"}, status=404)
        try:
            if request.content_type == JSON:
                body = await request.json()
            else:
                form = await request.post()
                body = json.loads(str(form.get("payload", "")))
        except ValueError:
            body = None
        status, answer = await self._respond(hook, body)
        raw_blocks = body.get("blocks") if isinstance(body, dict) else None
        self.responses.append(
            ResponsePost(
                hook=hook.id,
                user=hook.user,
                channel=hook.channel,
                response_type=body.get("response_type") if isinstance(body, dict) else None,
                replace_original=_flag(body.get("replace_original")) if isinstance(body, dict) else False,
                delete_original=_flag(body.get("delete_original")) if isinstance(body, dict) else False,
                text=body.get("text") if isinstance(body, dict) else None,
                blocks=raw_blocks if isinstance(raw_blocks, list) else None,
                status=status,
                at=self.clock(),
            )
        )
        return web.json_response(answer, status=status)

    async def _respond(self, hook: _Hook, body: Any) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        if now - hook.created_at > RESPONSE_URL_TTL:
            return 404, {"ok": False, "error": "expired_url"}
        if hook.uses >= RESPONSE_URL_USES:  # Slack: usable 5 times within 30 minutes
            return 404, {"ok": False, "error": "used_url"}
        hook.uses += 1
        if not isinstance(body, dict):
            return 400, {"ok": False, "error": "invalid_payload"}
        if _flag(body.get("delete_original")):
            return self._delete_original(hook)
        try:
            text, blocks = self._content(body, required=True)
        except _Refused as refused:
            return 400, {"ok": False, "error": refused.error, **refused.extra}
        if _flag(body.get("replace_original")):
            return await self._replace_original(hook, text, blocks)
        channel = hook.channel or self.dm_channel(hook.user)
        if body.get("response_type") == "in_channel":
            ts = self._next_ts()
            message = StoredMessage(
                channel, ts, text or "", blocks or [], BOT_USER_ID, now, thread_ts=body.get("thread_ts")
            )
            self.messages[(channel, ts)] = message
            await self._emit(channel, ts, message.text, message.blocks, "post")
        else:
            ephemeral = self._add_ephemeral(channel, hook.user, text or "", blocks or [], "response_url")
            await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
        return 200, {"ok": True}

    def _delete_original(self, hook: _Hook) -> tuple[int, dict[str, Any]]:
        if hook.ephemeral is not None:
            hook.ephemeral.deleted = True
            return 200, {"ok": True}
        if hook.message is not None and hook.message in self.messages:
            self.deleted.append(self.messages.pop(hook.message))
            return 200, {"ok": True}
        return 404, {"ok": False, "error": "message_not_found"}

    async def _replace_original(
        self, hook: _Hook, text: str | None, blocks: list[dict[str, Any]] | None
    ) -> tuple[int, dict[str, Any]]:
        if hook.ephemeral is not None and not hook.ephemeral.deleted:
            target = hook.ephemeral
            self._revise(target, text, blocks if blocks is not None else [], text_only_clears_blocks=False)
            await self._emit(target.channel, target.ts, target.text, target.blocks, "ephemeral")
            return 200, {"ok": True}
        message = self.messages.get(hook.message) if hook.message else None
        if message is not None:
            # A response_url message replaces the whole original: no blocks given means none kept.
            self._revise(message, text, blocks if blocks is not None else [], text_only_clears_blocks=False)
            await self._emit(message.channel, message.ts, message.text, message.blocks, "update")
            return 200, {"ok": True}
        if hook.message is None and hook.ephemeral is None:
            # A slash command has no original: Slack posts the reply as a new ephemeral message.
            channel = hook.channel or self.dm_channel(hook.user)
            ephemeral = self._add_ephemeral(channel, hook.user, text or "", blocks or [], "response_url")
            await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
            return 200, {"ok": True}
        return 404, {"ok": False, "error": "message_not_found"}

    # ---- the client half: Slack sending requests to the app ---------------------------------------------

    def signed_headers(
        self, body: str | bytes, timestamp: int | None = None, *, content_type: str = FORM
    ) -> dict[str, str]:
        """Headers Slack sends: X-Slack-Request-Timestamp and the v0 HMAC signature over the body.

        Signed with wall-clock time (the app checks it against its own clock), not the injected one.
        """
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        raw = body.decode() if isinstance(body, bytes) else body
        signature = str(SignatureVerifier(self._signing_secret).generate_signature(timestamp=stamp, body=raw))
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }

    async def send_raw(self, bot_url: str, body: str | bytes, headers: Mapping[str, str]) -> AppReply:
        """POST exactly these bytes and headers to the app (for unsigned, stale, tampered, malformed)."""
        if self._session is None:
            raise RuntimeError("the Slack sandbox is not started")
        data = body.encode() if isinstance(body, str) else body
        try:
            async with self._session.post(
                bot_url,
                data=data,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as response:
                return AppReply(response.status, await response.text())
        except TimeoutError:
            # Slack gives up after 3 s: the user sees an error, events are retried by Slack later.
            return AppReply(0, "operation_timeout", timed_out=True)

    async def _send_payload(self, bot_url: str, payload: Mapping[str, Any]) -> AppReply:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.send_raw(bot_url, body, self.signed_headers(body))

    def _envelope(self, person: DemoPerson, trigger_id: str | None) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "user": {
                "id": person.slack_id,
                "username": person.handle,
                "name": person.handle,
                "team_id": TEAM_ID,
            },
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if trigger_id:
            envelope["trigger_id"] = trigger_id
        return envelope

    def _action(self, block: Mapping[str, Any], element: Mapping[str, Any]) -> dict[str, Any]:
        action: dict[str, Any] = {
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
            "text": copy.deepcopy(element.get("text")),
            "type": element.get("type", "button"),
            "action_ts": f"{self.clock():.6f}",
        }
        for key in ("value", "style"):
            if key in element:
                action[key] = element[key]
        return action

    def _visible_to(self, person: DemoPerson, channel: str) -> None:
        owner = self._dm_owner(channel)
        if owner is not None and owner != person.slack_id:
            raise SandboxError(
                f"{channel} is {self.people[owner].handle}'s DM with the bot; {person.handle} cannot see it"
            )
        info = self.channels.get(channel)
        if info is not None and not info.has_member(person.slack_id):
            raise SandboxError(f"{person.handle} is not in #{info.name}")

    async def click(
        self,
        bot_url: str,
        *,
        user: str,
        channel: str,
        ts: str,
        label: str | None = None,
        action_id: str | None = None,
    ) -> AppReply:
        """Press a button the message shows *now*, as `user`; block_actions shaped like Slack's."""
        person = self.person(user)
        channel = self._dm_if_user(channel)
        message = self.messages.get((channel, ts))
        if message is None:
            raise SandboxError(f"no message {channel}/{ts} in the Slack sandbox")
        self._visible_to(person, channel)
        block, element = find_button(
            message.blocks, label=label, action_id=action_id, where=f"message {channel}/{ts}"
        )
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "message": message.payload(),
            "state": {"values": {}},
            "response_url": self._new_hook(person.slack_id, channel, message=(channel, ts)),
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_ephemeral(
        self,
        bot_url: str,
        *,
        user: str,
        index_or_predicate: int | Callable[[Ephemeral], bool] = -1,
        label: str | None = None,
        action_id: str | None = None,
    ) -> AppReply:
        """Press a button in one of `user`'s ephemeral messages (by index, -1 the latest, or predicate)."""
        person = self.person(user)
        mine = self.ephemerals_for(person.slack_id)
        if callable(index_or_predicate):
            matching = [e for e in mine if index_or_predicate(e)]
            if not matching:
                raise SandboxError(f"no ephemeral message of {person.handle} matches")
            ephemeral = matching[-1]
        else:
            try:
                ephemeral = mine[index_or_predicate]
            except IndexError:
                raise SandboxError(
                    f"{person.handle} has {len(mine)} ephemeral messages; no index {index_or_predicate}"
                ) from None
        block, element = find_button(
            ephemeral.blocks, label=label, action_id=action_id, where=f"ephemeral {ephemeral.ts}"
        )
        channel = ephemeral.channel
        # Slack sends no `message` for ephemeral sources: only the container says which one it was.
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {
                "type": "message",
                "message_ts": ephemeral.ts,
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "state": {"values": {}},
            "response_url": self._new_hook(person.slack_id, channel, ephemeral=ephemeral),
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_view(
        self, bot_url: str, *, user: str, view_id: str, label: str | None = None, action_id: str | None = None
    ) -> AppReply:
        """Press a button in an open modal or a Home tab (container type "view"; no response_url)."""
        person = self.person(user)
        stored = self.views.get(view_id)
        if stored is None or stored.user != person.slack_id or not stored.open:
            raise SandboxError(f"{person.handle} has no open view {view_id}")
        block, element = find_button(stored.blocks, label=label, action_id=action_id, where=f"view {view_id}")
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {"type": "view", "view_id": view_id},
            "view": copy.deepcopy(stored.view),
            "state": {"values": {}},
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_home(
        self, bot_url: str, *, user: str, label: str | None = None, action_id: str | None = None
    ) -> AppReply:
        person = self.person(user)
        view_id = self._home_ids.get(person.slack_id)
        if view_id is None:
            raise SandboxError(f"no Home tab published for {person.handle}")
        return await self.click_view(bot_url, user=user, view_id=view_id, label=label, action_id=action_id)

    def open_modals(self, user: str) -> list[StoredView]:
        """The user's modal stack, bottom first."""
        return [self.views[v] for v in self._stacks.get(self.person(user).slack_id, [])]

    async def submit_view(
        self, bot_url: str, *, user: str, view_id: str | None = None, values: Mapping[str, Any] | None = None
    ) -> SubmitResult:
        """Fill in the modal's inputs (by label or block_id) and press its submit button.

        Like the Slack client, refuses to send when a required input is empty.
        `view_id` defaults to the top of the user's modal stack.
        """
        person = self.person(user)
        stack = self._stacks.get(person.slack_id, [])
        view_id = view_id or (stack[-1] if stack else None)
        stored = self.views.get(view_id or "")
        if stored is None or stored.user != person.slack_id or not stored.open or stored.kind != "modal":
            raise SandboxError(f"{person.handle} has no open modal {view_id}")
        if stack and stack[-1] != stored.id:
            raise SandboxError(f"view {stored.id} is under another modal; only the top one can be submitted")
        if not stored.view.get("submit"):
            raise SandboxError(f"view {stored.id} has no submit button")
        state = state_values(stored.blocks, values or {}, self)
        view = copy.deepcopy(stored.view)
        view["state"] = {"values": state}
        payload = {
            "type": "view_submission",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "view": view,
            "response_urls": [],
        }
        reply = await self._send_payload(bot_url, payload)
        return self._after_submit(stored, reply)

    def _after_submit(self, stored: StoredView, reply: AppReply) -> SubmitResult:
        if reply.status != 200:
            return SubmitResult(
                reply.status, reply.text, reply.timed_out
            )  # Slack shows an error; modal stays
        body = reply.json
        if not reply.text.strip():
            self._close(stored, "submit")
            return SubmitResult(reply.status, reply.text, closed=True)
        action = body.get("response_action") if isinstance(body, dict) else None
        if isinstance(body, dict) and action == "errors":
            stored.errors = dict(body.get("errors") or {})
        elif isinstance(body, dict) and action == "update":
            try:
                self._replace_view(stored, self._checked_view(body, ("modal",)))
            except _Refused as refused:
                log.warning("response_action update refused: %s", refused.error)
        elif isinstance(body, dict) and action == "push":
            stack = self._stacks.setdefault(stored.user, [])
            if len(stack) < VIEW_STACK_MAX:
                try:
                    view = self._checked_view(body, ("modal",))
                except _Refused as refused:
                    log.warning("response_action push refused: %s", refused.error)
                else:
                    pushed = self._new_view(
                        stored.user, view, root=stack[0] if stack else None, previous=stored.id
                    )
                    stack.append(pushed.id)
        elif isinstance(body, dict) and action == "clear":
            for view_id in list(self._stacks.get(stored.user, [])):
                self._close(self.views[view_id], "clear")
            return SubmitResult(reply.status, reply.text, closed=True, response_action=action)
        else:
            self._close(stored, "submit")  # Slack treats any other 200 as "close the view"
            return SubmitResult(reply.status, reply.text, closed=True, response_action=action)
        return SubmitResult(reply.status, reply.text, closed=False, response_action=action)

    def _close(self, stored: StoredView, how: str) -> None:
        stored.open = False
        stored.closed_by = how
        stack = self._stacks.get(stored.user, [])
        if stored.id in stack:
            stack.remove(stored.id)

    async def close_view(self, bot_url: str, *, user: str, view_id: str | None = None) -> AppReply | None:
        """The user presses Close; Slack tells the app only when the view has notify_on_close."""
        person = self.person(user)
        stack = self._stacks.get(person.slack_id, [])
        view_id = view_id or (stack[-1] if stack else None)
        stored = self.views.get(view_id or "")
        if stored is None or stored.user != person.slack_id or not stored.open:
            raise SandboxError(f"{person.handle} has no open modal {view_id}")
        self._close(stored, "user")
        if not stored.view.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed",
            **self._envelope(person, None),
            "view": copy.deepcopy(stored.view),
            "is_cleared": False,
        }
        return await self._send_payload(bot_url, payload)

    async def command(
        self,
        bot_url: str,
        *,
        user: str,
        text: str = "",
        channel: str = "C0GENERAL",
        command: str = "/approvals",
    ) -> AppReply:
        """A slash command as Slack sends it (form fields); a non-empty ack body is shown to the user."""
        person = self.person(user)
        channel = self._dm_if_user(channel)
        if channel not in self.channels and self._dm_owner(channel) is None:
            raise SandboxError(f"no channel {channel} in the Slack sandbox")
        self._visible_to(person, channel)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "directmessage" if self._dm_owner(channel) else self.channel_name(channel),
            "user_id": person.slack_id,
            "user_name": person.handle,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_hook(person.slack_id, channel),
            "trigger_id": self.issue_trigger(person.slack_id),
        }
        body = urlencode(fields)
        reply = await self.send_raw(bot_url, body, self.signed_headers(body))
        if reply.status == 200 and reply.text.strip():
            await self._show_ack(person, channel, reply)
        return reply

    async def _show_ack(self, person: DemoPerson, channel: str, reply: AppReply) -> None:
        body = reply.json
        blocks: list[dict[str, Any]] = []
        if isinstance(body, dict):
            text = str(body.get("text") or "")
            if isinstance(body.get("blocks"), list):
                blocks = body["blocks"]
            in_channel = body.get("response_type") == "in_channel"
        else:
            text, in_channel = reply.text, False
        if not text and not blocks:
            return
        if in_channel:
            ts = self._next_ts()
            self.messages[(channel, ts)] = StoredMessage(channel, ts, text, blocks, BOT_USER_ID, self.clock())
            await self._emit(channel, ts, text, blocks, "post")
            return
        ephemeral = self._add_ephemeral(channel, person.slack_id, text, blocks, "ack")
        await self._emit(channel, ephemeral.ts, text, blocks, "ephemeral")

    def new_event_id(self) -> str:
        self._seq += 1
        return f"Ev{self._seq:08d}{self._random_id(4).upper()}"

    async def event(
        self,
        bot_url: str,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> AppReply:
        """An Events API callback (JSON); pass the same event_id with retry_num to send Slack's retry."""
        now = self.clock()
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or self.new_event_id(),
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        body = json.dumps(envelope)
        headers = self.signed_headers(body, content_type=JSON)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self.send_raw(bot_url, body, headers)

    async def open_home(self, bot_url: str, *, user: str) -> AppReply:
        """The user opens the bot's Home tab: app_home_opened with tab "home"."""
        person = self.person(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": person.slack_id,
            "channel": self.dm_channel(person.slack_id),
            "tab": "home",
            "event_ts": f"{self.clock():.6f}",
        }
        home = self.home.get(person.slack_id)
        if home is not None:
            event["view"] = copy.deepcopy(home)
        return await self.event(bot_url, event)

    async def wait_for(
        self,
        predicate: Callable[[], _T | None],
        timeout: float = 5.0,
        *,
        interval: float = 0.02,
        what: str = "",
    ) -> _T:
        """Poll until `predicate()` is truthy and return its value (Bolt acks before the work is done).

        Uses real time: an injected clock would never advance while the app works.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"not within {timeout}s: {what or getattr(predicate, '__name__', 'condition')}"
                )
            await asyncio.sleep(interval)

    # ---- Socket Mode ---------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """The WebSocket an app opens after apps.connections.open: hello, then envelopes it must ack."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "connection_info": {"app_id": APP_ID},
                "debug_info": {"host": "sandbox"},
            }
        )
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                future = self._acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data.get("payload") or {})
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def socket_send(
        self, kind: str, payload: Mapping[str, Any], timeout: float | None = None
    ) -> AppReply:
        """Deliver one envelope over Socket Mode ("slash_commands", "interactive", "events_api") and
        wait for the app's ack, as Slack does (3 s)."""
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            raise SandboxError("no app is connected over Socket Mode")
        envelope_id = f"{self._random_id(8)}-{self._next_ts()}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await live[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": dict(payload),
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            ack = await asyncio.wait_for(future, timeout or self.ack_timeout)
        except TimeoutError:
            self._acks.pop(envelope_id, None)
            return AppReply(0, "operation_timeout", timed_out=True)
        return AppReply(200, json.dumps(ack) if ack else "")

    async def socket_command(self, *, user: str, text: str = "", channel: str = "C0GENERAL") -> AppReply:
        """/approvals over Socket Mode (the same fields as over HTTP, as a JSON payload)."""
        person = self.person(user)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": self.channel_name(channel),
            "user_id": person.slack_id,
            "user_name": person.handle,
            "command": "/approvals",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_hook(person.slack_id, channel),
            "trigger_id": self.issue_trigger(person.slack_id),
        }
        return await self.socket_send("slash_commands", fields)

    # ---- the page for people ---------------------------------------------------------------------------

    async def _page_help(self, request: web.Request) -> web.Response:
        text = (
            "Slack sandbox\n"
            f"  GET  {self.url}/sandbox/messages   every message as text, with its buttons\n"
            f"  GET  {self.url}/sandbox/views      open modals and Home tabs\n"
            f"  POST {self.url}/sandbox/click      press a button, e.g.\n"
            f'       curl -d \'{{"user": "alice", "channel": "C0DEPLOYS", "ts": "<ts>", "label": "Approve"}}\' '
            f"{self.url}/sandbox/click\n"
            f'       (or {{"user": "alice", "ephemeral": true, "label": ...}} for her latest private message)\n'
            f"  POST {self.url}/sandbox/submit     submit the open modal, e.g.\n"
            f'       curl -d \'{{"user": "alice", "values": {{"Notes": "looks good"}}}}\' {self.url}/sandbox/submit\n'
        )
        return web.Response(text=text)

    def transcript(self) -> str:
        """Every message and ephemeral as readable text, in posting order."""
        names = self.names()
        entries: list[tuple[tuple[int, int], str]] = []
        for m in self.messages.values():
            where = f"#{self.channel_name(m.channel)}"
            thread = f" (in thread {m.thread_ts})" if m.thread_ts else ""
            edited = f" (edited {m.edits}x)" if m.edits else ""
            head = f"── {where} channel={m.channel} ts={m.ts}{thread}{edited}"
            entries.append((_ts_key(m.ts), f"{head}\n{_indent(m.render(names))}"))
        for e in self.ephemerals:
            if e.deleted:
                continue
            head = (
                f"── #{self.channel_name(e.channel)} ts={e.ts} (only {self.people[e.user].handle} sees this)"
            )
            entries.append((_ts_key(e.ts), f"{head}\n{_indent(e.render(names))}"))
        return "\n\n".join(text for _, text in sorted(entries)) + ("\n" if entries else "(no messages yet)\n")

    async def _page_messages(self, request: web.Request) -> web.Response:
        if request.query.get("format") == "json":
            data = [
                {
                    "channel": m.channel,
                    "ts": m.ts,
                    "thread_ts": m.thread_ts,
                    "text": m.text,
                    "rendered": m.render(self.names()),
                    "buttons": button_labels(m.blocks),
                    "edits": m.edits,
                }
                for m in sorted(self.messages.values(), key=lambda m: _ts_key(m.ts))
            ]
            return web.json_response(data)
        return web.Response(text=self.transcript())

    async def _page_views(self, request: web.Request) -> web.Response:
        names = self.names()
        parts = []
        for stored in self.views.values():
            if not stored.open:
                continue
            who = self.people[stored.user].handle if stored.user in self.people else stored.user
            label = "Home tab" if stored.kind == "home" else "modal"
            parts.append(f"── {label} {stored.id} for {who}\n{_indent(stored.render(names))}")
        return web.Response(text="\n\n".join(parts) + "\n" if parts else "(no views open)\n")

    async def _page_click(self, request: web.Request) -> web.Response:
        """POST {user, channel, ts, label}; or {user, ephemeral: true, label} for the user's latest private message."""
        data = await _page_body(request)
        if data is None:
            return web.Response(status=400, text="send JSON: {user, channel, ts, label}\n")
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        label = str(data["label"]) if data.get("label") else None
        action_id = str(data["action_id"]) if data.get("action_id") else None
        needed = ("user",) if data.get("ephemeral") else ("user", "channel", "ts")
        missing = [k for k in needed if not data.get(k)] + ([] if label or action_id else ["label"])
        if missing:
            return web.Response(status=400, text=f"missing: {', '.join(missing)}\n")
        try:
            if data.get("ephemeral"):
                reply = await self.click_ephemeral(
                    self.bot_url, user=str(data["user"]), label=label, action_id=action_id
                )
            else:
                reply = await self.click(
                    self.bot_url,
                    user=str(data["user"]),
                    channel=str(data["channel"]),
                    ts=str(data["ts"]),
                    label=label,
                    action_id=action_id,
                )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": reply.status, "body": reply.text})

    async def _page_command(self, request: web.Request) -> web.Response:
        """POST {user, text, channel?}: run /approvals as that user; the answer lands in their ephemerals."""
        data = await _page_body(request)
        if data is None or not data.get("user"):
            return web.Response(status=400, text='send JSON: {"user": "alice", "text": "list"}\n')
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        try:
            reply = await self.command(
                self.bot_url,
                user=str(data["user"]),
                text=str(data.get("text") or ""),
                channel=str(data.get("channel") or "C0GENERAL"),
            )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": reply.status, "body": reply.text})

    async def _page_submit(self, request: web.Request) -> web.Response:
        """POST {user, values: {label: value}, view_id?}: submit the user's open modal."""
        data = await _page_body(request)
        if data is None or not data.get("user"):
            return web.Response(status=400, text="send JSON: {user, values: {label: value}, view_id}\n")
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        values = data.get("values") if isinstance(data.get("values"), dict) else {}
        try:
            result = await self.submit_view(
                self.bot_url,
                user=str(data["user"]),
                view_id=str(data["view_id"]) if data.get("view_id") else None,
                values=values,
            )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": result.status, "body": result.text, "closed": result.closed})


async def _page_body(request: web.Request) -> dict[str, Any] | None:
    # `curl -d '{...}'` sends JSON labelled as a form: read JSON whatever the content type says.
    raw = await request.text()
    try:
        data = json.loads(raw)
    except ValueError:
        data = {k: v[-1] for k, v in parse_qs(raw).items()}
    return data if isinstance(data, dict) and data else None


# ---- Block Kit helpers -----------------------------------------------------------------------------------


def _interactive_elements(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if block.get("type") == "actions":
        found.extend(e for e in block.get("elements") or [] if isinstance(e, dict))
    for key in ("accessory", "element"):
        element = block.get(key)
        if isinstance(element, dict) and element.get("type") not in ("image", None):
            found.append(element)
    return found


def button_labels(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        str((element.get("text") or {}).get("text", ""))
        for block in blocks
        for element in _interactive_elements(block)
        if element.get("type") == "button"
    ]


def find_button(
    blocks: Sequence[Mapping[str, Any]], *, label: str | None, action_id: str | None, where: str
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The block and button a user would press; a clear error when it is not shown."""
    if label is None and action_id is None:
        raise ValueError("give the button's label or its action_id")
    wanted = " ".join(label.split()).casefold() if label is not None else None
    for block in blocks:
        for element in _interactive_elements(block):
            if element.get("type") != "button":
                continue
            shown = " ".join(str((element.get("text") or {}).get("text", "")).split()).casefold()
            if (action_id is not None and element.get("action_id") == action_id) or (
                wanted is not None and shown == wanted
            ):
                return block, element
    labels = button_labels(blocks)
    shown_text = " ".join(f"[{x}]" for x in labels) if labels else "no buttons at all"
    target = f"labelled {label!r}" if label is not None else f"with action_id {action_id!r}"
    raise SandboxError(f"{where} has no button {target}; it shows {shown_text}")


def _text_problem(obj: Any, pointer: str, *, plain_only: bool) -> str | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        return f"must be an object [json-pointer:{pointer}]"
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return f"must be one of {', '.join(kinds)} [json-pointer:{pointer}/type]"
    if not isinstance(obj.get("text"), str):
        return f"must be a string [json-pointer:{pointer}/text]"
    return None


def _shape_problems(block: Mapping[str, Any], pointer: str) -> list[str]:
    """What slack_sdk's models accept but Slack refuses: bare strings where text objects belong."""
    kind = block.get("type")
    problems: list[str | None] = []
    if kind == "section":
        problems.append(_text_problem(block.get("text"), f"{pointer}/text", plain_only=False))
        problems.extend(
            _text_problem(f, f"{pointer}/fields/{i}", plain_only=False)
            for i, f in enumerate(block.get("fields") or [])
        )
    elif kind == "header":
        problems.append(_text_problem(block.get("text"), f"{pointer}/text", plain_only=True))
    elif kind == "input":
        problems.append(_text_problem(block.get("label"), f"{pointer}/label", plain_only=True))
        problems.append(_text_problem(block.get("hint"), f"{pointer}/hint", plain_only=True))
        if not isinstance(block.get("element"), Mapping):
            problems.append(f"missing required field: element [json-pointer:{pointer}]")
    for i, element in enumerate(_interactive_elements(block)):
        if element.get("type") == "button":
            where = f"{pointer}/elements/{i}" if kind == "actions" else f"{pointer}/accessory"
            problems.append(_text_problem(element.get("text"), f"{where}/text", plain_only=True))
    return [p for p in problems if p]


def block_problems(blocks: Any, limit: int, pointer: str = "/blocks") -> list[str]:
    """Why Slack would refuse these blocks (empty when it would not), validated with slack_sdk's models."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    seen_ids: set[str] = set()
    for i, raw in enumerate(blocks):
        here = f"{pointer}/{i}"
        if not isinstance(raw, dict):
            problems.append(f"must be an object [json-pointer:{here}]")
            continue
        try:
            parsed = Block.parse(raw)
            if parsed is None:
                problems.append(f"unsupported type: {raw.get('type')!r} [json-pointer:{here}/type]")
                continue
            rendered = parsed.to_dict()
        except SlackObjectFormationError as exc:
            problems.append(f"{exc} [json-pointer:{here}]")
            continue
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"invalid block: {exc} [json-pointer:{here}]")
            continue
        extra = sorted(k for k, v in raw.items() if v is not None and k not in rendered)
        problems.extend(f"invalid additional property: {k} [json-pointer:{here}]" for k in extra)
        if None in (rendered.get("elements") or []):
            problems.append(f"unsupported element type [json-pointer:{here}/elements]")
        problems.extend(_shape_problems(raw, here))
        block_id = raw.get("block_id")
        if block_id is not None:
            if block_id in seen_ids:
                problems.append(f"duplicate block_id: {block_id} [json-pointer:{here}/block_id]")
            seen_ids.add(str(block_id))
        action_ids = [e.get("action_id") for e in _interactive_elements(raw) if e.get("action_id")]
        if len(action_ids) != len(set(action_ids)):
            problems.append(f"duplicate action_id within block [json-pointer:{here}]")
    return problems


def view_problems(view: Mapping[str, Any], kinds: tuple[str, ...]) -> list[str]:
    """Why views.open/push/update/publish would refuse this view (Slack answers invalid_arguments)."""
    problems: list[str] = []
    kind = view.get("type")
    if kind not in kinds:
        return [f"must be one of {', '.join(kinds)} [json-pointer:/view/type]"]
    for key in ("title", "submit", "close"):
        obj = view.get(key)
        if obj is None:
            if key == "title" and kind == "modal":
                problems.append("missing required field: title [json-pointer:/view]")
            continue
        problem = _text_problem(obj, f"/view/{key}", plain_only=True)
        if problem:
            problems.append(problem)
        elif len(obj["text"]) > VIEW_TEXT_MAX:
            problems.append(
                f"must be less than {VIEW_TEXT_MAX + 1} characters [json-pointer:/view/{key}/text]"
            )
    for key, limit in (
        ("private_metadata", PRIVATE_METADATA_MAX),
        ("callback_id", CALLBACK_ID_MAX),
        ("external_id", EXTERNAL_ID_MAX),
    ):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"must be a string of at most {limit} characters [json-pointer:/view/{key}]")
    blocks = view.get("blocks")
    if blocks is None:
        problems.append("missing required field: blocks [json-pointer:/view]")
    else:
        problems.extend(block_problems(blocks, VIEW_BLOCKS_MAX, "/view/blocks"))
        has_inputs = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if kind == "modal" and has_inputs and not view.get("submit"):
            problems.append("must provide a submit property when using input blocks [json-pointer:/view]")
    return problems


# ---- view_submission state --------------------------------------------------------------------------------


def _option_matching(element: Mapping[str, Any], wanted: Any, where: str) -> dict[str, Any]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        text = str((option.get("text") or {}).get("text", ""))
        if wanted in (option.get("value"), text):
            return copy.deepcopy(dict(option))
    shown = ", ".join(str((o.get("text") or {}).get("text", "")) for o in options)
    raise SandboxError(f"{where} has no option {wanted!r} (it offers: {shown})")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _element_state(
    element: Mapping[str, Any], value: Any, given: bool, where: str, sandbox: SlackSandbox
) -> dict[str, Any]:
    """state.values[block_id][action_id] for one element, shaped as Slack shapes it per element type."""
    kind = str(element.get("type"))
    state: dict[str, Any] = {"type": kind}
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        text = (str(value) if value is not None else None) if given else element.get("initial_value")
        if text is not None:
            lo, hi = element.get("min_length"), element.get("max_length")
            if (isinstance(hi, int) and len(text) > hi) or (isinstance(lo, int) and 0 < len(text) < lo):
                raise SandboxError(f"{where}: Slack's client refuses {len(text)} characters here")
        state["value"] = text or None
    elif kind in ("static_select", "radio_buttons", "external_select"):
        if given:
            state["selected_option"] = (
                None
                if value is None
                else (
                    {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
                    if kind == "external_select"
                    else _option_matching(element, value, where)
                )
            )
        else:
            state["selected_option"] = copy.deepcopy(element.get("initial_option"))
    elif kind in ("checkboxes", "multi_static_select", "multi_external_select"):
        if not given:
            state["selected_options"] = copy.deepcopy(element.get("initial_options") or [])
        elif value is True:
            state["selected_options"] = copy.deepcopy(list(element.get("options") or []))
        elif value is False:
            state["selected_options"] = []
        else:
            state["selected_options"] = [_option_matching(element, v, where) for v in _as_list(value)]
    elif kind == "users_select":
        state["selected_user"] = (
            (sandbox.person(str(value)).slack_id if value else None) if given else element.get("initial_user")
        )
    elif kind == "multi_users_select":
        users = _as_list(value) if given else list(element.get("initial_users") or [])
        state["selected_users"] = [sandbox.person(str(u)).slack_id for u in users]
    elif kind in ("conversations_select", "channels_select"):
        key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
        state[key] = (str(value) if value else None) if given else element.get(f"initial_{key.split('_')[1]}")
    elif kind == "datepicker":
        state["selected_date"] = (str(value) if value else None) if given else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = (str(value) if value else None) if given else element.get("initial_time")
    else:
        state["value"] = value if given else None
    return state


def _is_empty(state: Mapping[str, Any]) -> bool:
    return not any(v for k, v in state.items() if k != "type")


def state_values(
    blocks: Sequence[Mapping[str, Any]], values: Mapping[str, Any], sandbox: SlackSandbox
) -> dict[str, dict[str, Any]]:
    """view.state.values for a submission: `values` keyed by each input's label text or block_id."""
    remaining = dict(values)
    state: dict[str, dict[str, Any]] = {}
    for block in blocks:
        if block.get("type") != "input":
            continue
        element = block.get("element") or {}
        block_id = str(block.get("block_id"))
        label = str((block.get("label") or {}).get("text", ""))
        key = block_id if block_id in remaining else label if label in remaining else None
        given = key is not None
        value = remaining.pop(key) if key is not None else None
        where = f"input {label!r}"
        element_state = _element_state(element, value, given, where, sandbox)
        if not block.get("optional") and _is_empty(element_state):
            raise SandboxError(f"{where} is required and empty: Slack would not submit this modal")
        state[block_id] = {str(element.get("action_id")): element_state}
    if remaining:
        labels = [str((b.get("label") or {}).get("text", "")) for b in blocks if b.get("type") == "input"]
        raise SandboxError(f"the modal has no input {sorted(remaining)} (its inputs: {labels})")
    return state


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
