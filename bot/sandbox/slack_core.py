"""The Slack sandbox's core: its state, its lifecycle, people and conversation ids, fault injection,
rate limits and the Web API dispatcher that every surface (chat, views, users and conversations)
registers its methods with.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Self, get_args

import aiohttp
from aiohttp import web

from bot.sandbox.slack_model import (
    BOT_ID,
    BOT_NAME,
    BOT_TOKEN,
    BOT_USER_ID,
    DEFAULT_SCOPES,
    METHOD_SCOPES,
    METHOD_TIERS,
    SIGNING_SECRET,
    TEAM_ID,
    TEAM_NAME,
    TIER_PER_MINUTE,
    Call,
    Channel,
    Clock,
    Ephemeral,
    OnPost,
    ResponsePost,
    SandboxError,
    StoredMessage,
    StoredView,
    _bearer,
    _Bucket,
    _decoded,
    _Hook,
    _Rates,
    _read_args,
    _Refused,
    _take,
    _Trigger,
    _ts_key,
    default_channels,
)
from connectors.people import CAST, DemoPerson

log = logging.getLogger(__name__)


WebApiMethod = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Trouble at Slack's edge, as HTTP rather than as an error code (see `fail_http`).
HttpFault = Literal["500", "502", "503", "reset"]
HTTP_FAULTS: tuple[HttpFault, ...] = get_args(HttpFault)
# Each 5xx comes with a body that is not Slack's JSON, one of each shape slack_sdk reads differently.
_EDGE_BODIES: dict[str, tuple[str, str]] = {
    "500": ("text/html", "<html><body><h1>500 Internal Server Error</h1></body></html>"),
    "502": ("application/json", "<html><body>502 Bad Gateway</body></html>"),  # JSON in name only
    "503": ("text/plain", "upstream connect error or disconnect/reset before headers"),
}


class _HttpTrouble:
    """HTTP faults armed on the sandbox: queued per method, or at a rate (seeded)."""

    def __init__(self) -> None:
        self.queued: dict[str, deque[tuple[HttpFault, bool, str | None]]] = {}
        self.rate = 0.0
        self.faults: tuple[HttpFault, ...] = HTTP_FAULTS
        self.methods: frozenset[str] | None = None
        self.applied = 0.0
        self.rng = random.Random(0)

    def pick(self, method: str, channel: str) -> tuple[HttpFault, bool] | None:
        """(fault, applied) for this call to `channel` (resolved), or None: answered normally."""
        for key in (method, "*"):
            pending = self.queued.get(key) or deque()
            found = next((q for q in pending if q[2] in (None, channel)), None)
            if found is not None:
                pending.remove(found)
                return found[0], found[1]
        if self.rate and (self.methods is None or method in self.methods) and self.rng.random() < self.rate:
            fault = self.rng.choice(self.faults)
            return fault, fault != "reset" and self.rng.random() < self.applied
        return None


class SandboxCore:
    """State and plumbing shared by every surface; SlackSandbox stacks the surfaces on top."""

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
        self._init_records()
        self._init_plumbing()

    def _init_records(self) -> None:
        """What the workspace holds, and what tests read afterwards: every call, message, answer, view."""
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], StoredMessage] = {}
        self.deleted: list[StoredMessage] = []
        self.ephemerals: list[Ephemeral] = []
        self.responses: list[ResponsePost] = []
        self.views: dict[str, StoredView] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.rate_limited_count = 0

    def _init_plumbing(self) -> None:
        """The workings behind the surfaces: Socket Mode, open views and triggers, the faults and rates
        a test turned on, the server."""
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
        self._trouble = _HttpTrouble()
        self._rates: _Rates | None = None
        self._seq = 0
        self._rng = random.Random(20240229)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._methods: dict[str, WebApiMethod] = self._web_api()

    def _web_api(self) -> dict[str, WebApiMethod]:
        """Web API method name → handler; each surface adds its own methods to its parent's."""
        return {"auth.test": self._auth_test}

    def _add_routes(self, app: web.Application) -> None:
        """HTTP routes; each surface adds its own to its parent's."""
        app.router.add_route("*", "/api/{method}", self._api)

    def __repr__(self) -> str:  # the token and signing secret stay out of reprs
        return f"SlackSandbox(url={self._url!r}, messages={len(self.messages)}, calls={len(self.calls)})"

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        self._add_routes(app)
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

    async def __aenter__(self) -> Self:
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

    def fail_http(
        self,
        method: str,
        fault: HttpFault = "500",
        times: int = 1,
        *,
        applied: bool = False,
        to: str | None = None,
    ) -> None:
        """The next `times` calls of `method` ("*" for any) meet trouble at Slack's edge instead of
        an answer: "500", "502", "503" (a body that is not Slack's JSON: an HTML page, broken JSON,
        plain text) or "reset" (the connection closed, nothing answered). `applied`: the call takes
        effect and only its answer is lost (a post that did happen, then a 5xx). `to`: only calls
        to that conversation (a user id means their DM)."""
        if fault not in HTTP_FAULTS:
            raise ValueError(f"unknown HTTP fault {fault!r}; one of {', '.join(HTTP_FAULTS)}")
        where = self._rate_key(to) if to else None
        self._trouble.queued.setdefault(method, deque()).extend([(fault, applied, where)] * times)

    def fault_rate(
        self,
        rate: float,
        faults: Iterable[HttpFault] = HTTP_FAULTS,
        *,
        methods: Iterable[str] | None = None,
        applied: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """From now on each call (of `methods`, when given) meets an HTTP fault with probability
        `rate`, the kind picked at random; a 5xx is `applied` (took effect, answer lost) with that
        probability. Seeded, so a run can be repeated; `rate=0` stops it."""
        if not 0 <= rate <= 1 or not 0 <= applied <= 1:
            raise ValueError("rate and applied are fractions between 0 and 1")
        trouble = self._trouble
        trouble.rate, trouble.faults, trouble.applied = rate, tuple(faults), applied
        trouble.methods = frozenset(methods) if methods is not None else None
        trouble.rng = random.Random(seed)

    def clear_faults(self) -> None:
        """No more injected errors, 429s or HTTP trouble (rate limits stay as configured)."""
        self._rate_limits.clear()
        self._failures.clear()
        self._trouble = _HttpTrouble()

    def enforce_rates(
        self, per_channel_per_second: float = 1.0, burst: float = 3.0, global_per_minute: float | None = None
    ) -> None:
        """Token buckets on chat.postMessage / chat.update, per channel and optionally per workspace.

        Slack: "generally 1 message per second per channel, with short bursts", plus a workspace-wide
        limit. Refusals answer 429 with Retry-After and are counted in `rate_limited_count`.
        """
        self._rates = _Rates(per_channel_per_second, max(1.0, burst), global_per_minute)

    def enforce_tiers(self, factor: float = 1.0, burst_seconds: float = 3.0) -> None:
        """Slack's limits on every method: each tiered method per workspace at its tier's calls per
        minute, chat.postMessage per channel (1 a second, bursts of 3); all rates times `factor`, so
        a benchmark keeps Slack's shape in a shorter run. A call over its limit gets 429 with
        Retry-After (counted in `rate_limited_count`); chat.update is then limited by its tier only,
        as on Slack, not per channel.
        """
        self._rates = _Rates(
            per_channel_per_second=factor,
            burst=3.0,
            global_per_minute=None,
            channel_methods=frozenset({"chat.postMessage"}),
            per_method_per_minute={m: TIER_PER_MINUTE[t] * factor for m, t in METHOD_TIERS.items()},
            burst_seconds=burst_seconds,
        )

    def relax_rates(self) -> None:
        """No rate limits at all (benchmarks that measure the bot, not Slack's pace)."""
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
        trouble = (
            self._trouble.pick(method, self._rate_key(args.get("channel")))
            if method in self._methods
            else None
        )
        if trouble is not None and not trouble[1]:
            return self._edge_failure(request, call, trouble[0])
        body, status, headers = await self._answer(method, args, token)
        if trouble is not None:  # applied: the call took effect, its answer is lost
            return self._edge_failure(request, call, trouble[0])
        call.status = status
        call.error = None if body.get("ok") else str(body.get("error"))
        return web.json_response(body, status=status, headers=headers)

    def _edge_failure(self, request: web.Request, call: Call, fault: HttpFault) -> web.Response:
        if fault == "reset":
            call.status, call.error = 0, "reset"
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # never sent: the connection is gone
        content_type, text = _EDGE_BODIES[fault]
        call.status, call.error = int(fault), f"http_{fault}"
        return web.Response(status=int(fault), text=text, content_type=content_type)

    async def _answer(
        self, method: str, args: dict[str, Any], token: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        if method == "apps.connections.open":
            return self._open_connection(token)
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
        if self._rates is not None:
            wait = self._spend_rate(method, args.get("channel"))
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

    def _open_connection(self, token: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        # Socket Mode: only the app-level token (xapp-…) may open a connection.
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth" if token else "not_authed"}, 200, {}
        url = f"{self.url.replace('http://', 'ws://')}/socket-mode/{self._random_id(8)}"
        return {"ok": True, "url": url}, 200, {}

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

    def _spend_rate(self, method: str, raw_channel: Any) -> float:
        """Take a token from every bucket that limits this call, or none (then: how long to wait)."""
        rates = self._rates
        assert rates is not None
        now = self.clock()
        buckets: list[_Bucket] = []
        tier = rates.method_bucket(method, now)
        if tier is not None:
            buckets.append(tier)
        if method not in rates.channel_methods:
            return self._spend(buckets, now)
        channel = self._rate_key(raw_channel)
        bucket = rates.channels.get(channel)
        if bucket is None:
            bucket = rates.channels[channel] = _Bucket(
                rates.per_channel_per_second, rates.burst, rates.burst, now
            )
        buckets.append(bucket)
        if rates.global_per_minute:
            if rates.workspace is None:
                cap = max(1.0, rates.global_per_minute / 60 * rates.burst)
                rates.workspace = _Bucket(rates.global_per_minute / 60, cap, cap, now)
            buckets.append(rates.workspace)
        return self._spend(buckets, now)

    @staticmethod
    def _spend(buckets: list[_Bucket], now: float) -> float:
        if not buckets:
            return 0.0
        for b in buckets:
            b.refill(now)
        wait = max(b.wait() for b in buckets)
        if wait <= 0:
            for b in buckets:
                b.tokens -= 1.0
        return wait

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
