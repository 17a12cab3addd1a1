"""The only code that holds the Slack Web API client: every call of the bot goes through here.

Why one place: Slack limits each method per workspace by tier (and chat.postMessage per channel),
and answers a burst with 429s that cost a whole Retry-After each. Pacing every method here, and
holding a method back for every caller once Slack said 429, keeps the bot under the limits instead
of bouncing off them. Slack's error codes are sorted here once, into the four things a caller can
do about them (`Kind`), so the outbox and the listeners never read raw error strings.

Two kinds of caller: the outbox (patient: a call that would wait long raises `Deferred` and the job
stays queued) and interaction answers (ephemeral, response_url, views.open with a trigger id,
views.update of an open modal), which wait briefly and go straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.blocks import Message

log = logging.getLogger(__name__)


class Kind(enum.Enum):
    """What a caller can do about a Slack error."""

    RETRY = "retry later"  # rate limited, Slack or network trouble: the same call may work later
    DROP = "drop"  # the call itself is wrong or pointless now (message gone, bad blocks): log it, move on
    CHANNEL_GONE = "channel gone"  # channel archived/deleted or the bot is not in it
    TOKEN_REVOKED = "token revoked"  # nothing will work until an admin reinstalls the app


CHANNEL_GONE = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "is_inactive", "channel_is_archived"}
)
TOKEN_REVOKED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "app_uninstalled"}
)
DROP = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "msg_too_long",
        "invalid_blocks",
        "invalid_arguments",
        "no_text",
        "user_not_found",
        "users_not_found",
        "cannot_dm_bot",
        "user_disabled",
        "restricted_action",
        "missing_scope",
        "expired_trigger_id",
        "exchanged_trigger_id",
        "invalid_trigger_id",
        "not_found",
        "view_too_large",
        "push_limit_reached",
        "hash_conflict",
        "response_url_refused",
    }
)


def sort_error(error: str, status: int = 200) -> Kind:
    if status == 429 or status >= 500 or error in ("ratelimited", "rate_limited"):
        return Kind.RETRY
    if error in CHANNEL_GONE:
        return Kind.CHANNEL_GONE
    if error in TOKEN_REVOKED:
        return Kind.TOKEN_REVOKED
    if error in DROP:
        return Kind.DROP
    return Kind.RETRY  # Slack trouble (5xx, internal_error, fatal_error) or something new: try again


class SlackFailure(Exception):
    """Slack (or the network to it) refused a call; `kind` says what to do about it."""

    def __init__(self, method: str, error: str, kind: Kind, retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error
        self.kind = kind
        self.retry_after = retry_after


class Deferred(Exception):
    """The call would wait longer than its caller's patience (pace or a 429 hold): try it later.

    Nothing was sent; `wait` is how long until it could go."""

    def __init__(self, key: str, wait: float) -> None:
        super().__init__(f"{key} is paced for {wait:.2f}s")
        self.key = key
        self.wait = wait


# Slack's documented tier of each method we call (docs.slack.dev/reference/methods/*).
# chat.postMessage is "special": about one message per second per channel, short bursts allowed.
METHOD_TIERS: Mapping[str, int] = {
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
    "conversations.members": 4,
    "conversations.info": 3,
    "conversations.history": 3,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "auth.test": 4,
}
POST_MESSAGE = "chat.postMessage"


@dataclass(frozen=True)
class Tiers:
    """Calls per minute by tier, and chat.postMessage's per-channel pace. Injectable so tests, the
    sandbox and the benchmarks can scale Slack's limits (`scaled`) and keep the same shape."""

    per_minute: Mapping[int, float] = field(default_factory=lambda: {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0})
    # Seconds of a tier's rate that may go at once (Slack tolerates "occasional bursts").
    burst_seconds: float = 3.0
    post_per_channel: float = 1.0  # per second
    post_burst: float = 3.0
    # The share of each tiered method's burst kept for urgent calls (a clicked card's copies, each
    # "Working…" then decided; interaction answers): other work spends only the rest.
    reserve: float = 0.5

    def scaled(self, factor: float) -> Tiers:
        return replace(
            self,
            per_minute={t: r * factor for t, r in self.per_minute.items()},
            post_per_channel=self.post_per_channel * factor,
        )


class Pacer:
    """Token buckets by key: `rate` tokens a second, up to `burst` saved up.

    `reserve` tokens of each bucket are kept for urgent calls (`try_take(urgent=True)`): other calls
    take only what lies above it. Why: the card a person just clicked must not wait behind a backlog
    that spends the method's whole budget (README, Performance: "priority under load"). Slack's
    limit still holds, since every call, urgent or not, spends from the same bucket.
    """

    def __init__(
        self,
        per_second: float = 1.0,
        burst: float = 3.0,
        clock: Callable[[], float] | None = None,
        reserve: float = 0.0,
    ) -> None:
        self.per_second = per_second
        self.burst = max(1.0, burst)
        # Never so much that other calls could not take a whole token from a full bucket.
        self.reserve = max(0.0, min(reserve, self.burst - 1.0))
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._buckets: dict[str, tuple[float, float]] = {}

    def try_take(self, key: str, *, urgent: bool = False) -> float:
        """Take a token now if there is one (0.0); else how long until there is (nothing taken)."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        floor = 1.0 if urgent else 1.0 + self.reserve
        if tokens >= floor:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (floor - tokens) / self.per_second

    async def wait(self, key: str) -> None:
        while True:
            delay = self.try_take(key)
            if delay <= 0:
                return
            await asyncio.sleep(delay)


# Hosts a response_url may point at (Slack's own; plus the configured API host, e.g. a sandbox).
SLACK_HOOK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com", "slack.com", "app.slack.com"})

# How long an interaction answer may wait for its pace: the person is looking at the screen.
URGENT = 2.0


class SlackGateway:
    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        tiers: Tiers | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.tiers = tiers or Tiers()
        self._api_url = api_url
        # trust_env: HTTPS_PROXY / NO_PROXY apply to response_url posts as they do to slack_sdk's calls.
        self._session = aiohttp.ClientSession(trust_env=True)
        self._client = AsyncWebClient(
            token=token,
            base_url=api_url,
            session=self._session,
            timeout=15,
            # 429s and 5xx are not retried inside the client: a 429 holds the method here, and the
            # outbox retries the job later, so one slow answer never blocks a delivery lane.
            retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2)],
        )
        # chat.postMessage is not idempotent: a connection reset after Slack stored the message would
        # post it twice if the client retried by itself. Posts go without that retry; the outbox
        # retries the job instead, and a card's retry first looks for its tag in the channel's history.
        self._poster = AsyncWebClient(
            token=token, base_url=api_url, session=self._session, timeout=15, retry_handlers=[]
        )
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._methods: dict[int, Pacer] = {
            tier: Pacer(rate / 60.0, burst, self._clock, burst * self.tiers.reserve)
            for tier, rate in self.tiers.per_minute.items()
            for burst in [max(1.0, rate / 60.0 * self.tiers.burst_seconds)]
        }
        self._posts = Pacer(self.tiers.post_per_channel, self.tiers.post_burst, self._clock)
        self._held: dict[str, float] = {}  # method (or chat.postMessage:channel) → loop time of release
        self._team_id: str | None = None
        self._dms: dict[str, str] = {}  # user id → the D… id of the bot's DM with them
        self.revoked = False

    @property
    def bolt_client(self) -> AsyncWebClient:
        """Bolt needs a client of its own to authorize requests (auth.test); it makes no other call."""
        return self._client

    async def whoami(self) -> dict[str, Any]:
        """Who the token belongs to (for `approvals-bot check`); raises SlackFailure when refused."""
        response = await self._call("auth.test", None, URGENT, self._client.auth_test)
        data = dict(response.data) if isinstance(response.data, dict) else {}
        # Slack names the token's granted scopes in a header of every answer; `check` compares them.
        headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
        data["granted_scopes"] = headers.get("x-oauth-scopes", "")
        return data

    async def channel_info(self, channel: str) -> dict[str, Any]:
        """conversations.info's `channel` (for `approvals-bot check`: is the bot a member?)."""
        response = await self._call(
            "conversations.info", None, URGENT, lambda: self._client.conversations_info(channel=channel)
        )
        return dict(response.get("channel") or {})

    async def aclose(self) -> None:
        await self._session.close()

    # ---- pacing ---------------------------------------------------------------------------------

    def _pace_key(self, method: str, channel: str | None) -> str:
        return f"{method}:{channel}" if method == POST_MESSAGE and channel else method

    def _try_take(self, method: str, key: str, urgent: bool) -> float:
        held = self._held.get(key, 0.0) - self._clock()
        if held > 0:
            return held
        if method == POST_MESSAGE:
            return self._posts.try_take(key, urgent=urgent)
        pacer = self._methods.get(METHOD_TIERS.get(method, 3))
        return pacer.try_take(method, urgent=urgent) if pacer is not None else 0.0

    async def _pace(
        self,
        method: str,
        channel: str | None,
        patience: float,
        urgent: bool = False,
        give_way: asyncio.Event | None = None,
    ) -> None:
        """Wait for the method's pace. `urgent`: may spend the reserve. `give_way`: once set, stop
        waiting (Deferred, nothing sent), so someone more urgent goes first."""
        key = self._pace_key(method, channel)
        started = self._clock()
        while True:
            wait = self._try_take(method, key, urgent)
            if wait <= 0:
                waited = max(0.0, self._clock() - started)
                metrics.SLACK_PACE_WAIT.labels(method=method, urgent="yes" if urgent else "no").observe(
                    waited
                )
                return
            if wait > patience or (give_way is not None and give_way.is_set()):
                raise Deferred(key, wait)
            if give_way is None:
                await asyncio.sleep(wait)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(give_way.wait(), wait)

    def held_for(self, method: str, channel: str | None = None) -> float:
        """Seconds until `method` may be called again after a 429 (0 when it may now)."""
        return max(0.0, self._held.get(self._pace_key(method, channel), 0.0) - self._clock())

    async def _call(
        self,
        method: str,
        channel: str | None,
        patience: float,
        call: Callable[[], Any],
        paced: asyncio.Event | None = None,
        urgent: bool = False,
        give_way: asyncio.Event | None = None,
    ) -> Any:
        await self._pace(method, channel, patience, urgent, give_way)
        if paced is not None:  # the caller may start its next call: Slack receives them in order
            paced.set()
        try:
            response = await call()
        except SlackApiError as exc:
            raise self._sorted(method, channel, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SlackFailure(method, type(exc).__name__, Kind.RETRY) from None
        metrics.SLACK_CALLS.labels(method=method).inc()
        return response

    def _sorted(self, method: str, channel: str | None, exc: SlackApiError) -> SlackFailure:
        status, error = _status_and_error(exc)
        kind = sort_error(error, status)
        retry_after = _retry_after(exc) if status == 429 else None
        if status == 429:
            wait = retry_after if retry_after is not None else 1.0
            key = self._pace_key(method, channel)
            self._held[key] = max(self._held.get(key, 0.0), self._clock() + wait)
            log.info("Slack rate-limited %s; holding it back %.1fs for every caller", key, wait)
            retry_after = wait
        elif kind is Kind.TOKEN_REVOKED and not self.revoked:
            self.revoked = True
            log.error("Slack says the bot token no longer works (%s): reinstall the app", error)
        metrics.SLACK_FAILURES.labels(error=error).inc()
        return SlackFailure(method, error, kind, retry_after)

    # ---- messages -------------------------------------------------------------------------------

    async def post_message(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool | None = None,
        patience: float = math.inf,
        paced: asyncio.Event | None = None,
        metadata: dict[str, Any] | None = None,
        urgent: bool = False,
        give_way: asyncio.Event | None = None,
    ) -> tuple[str, str]:
        """Post; returns the (channel, ts) Slack stored it under (a DM's D… id for a user id).

        `metadata`: Slack message metadata ({"event_type", "event_payload"}), found again in the
        channel's history (`tagged_messages`). `urgent`, `give_way`: see `_pace`."""
        extra: dict[str, Any] = {}
        if metadata is not None:
            extra["metadata"] = metadata
        if thread_ts is not None:
            extra["thread_ts"] = thread_ts
        if reply_broadcast is not None:
            extra["reply_broadcast"] = reply_broadcast
        response = await self._call(
            POST_MESSAGE,
            channel,
            patience,
            lambda: self._poster.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, **extra
            ),
            paced,
            urgent,
            give_way,
        )
        return str(response["channel"]), str(response["ts"])

    async def update_message(
        self,
        *,
        channel: str,
        ts: str,
        text: str,
        blocks: list[dict[str, Any]],
        patience: float = math.inf,
        paced: asyncio.Event | None = None,
        urgent: bool = False,
        give_way: asyncio.Event | None = None,
    ) -> None:
        await self._call(
            "chat.update",
            channel,
            patience,
            lambda: self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
            paced,
            urgent,
            give_way,
        )

    async def tagged_messages(
        self, *, channel: str, event_type: str, oldest: str | None = None, limit: int = 200
    ) -> list[tuple[str, dict[str, Any]]]:
        """(ts, event_payload) of the channel's recent messages carrying metadata of `event_type`.

        Needs channels:history (groups:history for private channels, im:history for a DM, by its D…
        id: `dm_channel`); raises SlackFailure without it."""
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": limit}
        if oldest is not None:
            args["oldest"] = oldest
        response = await self._call(
            "conversations.history",
            channel,
            URGENT,
            lambda: self._client.conversations_history(**args),
        )
        found: list[tuple[str, dict[str, Any]]] = []
        for message in response.get("messages") or []:
            tag = message.get("metadata") if isinstance(message, dict) else None
            if isinstance(tag, dict) and tag.get("event_type") == event_type:
                payload = tag.get("event_payload")
                found.append((str(message.get("ts")), payload if isinstance(payload, dict) else {}))
        return found

    async def dm_channel(self, user: str) -> str:
        """The D… id of the bot's DM with `user` (conversations.open, needs im:write), asked once
        per user and process: a DM card is posted to the user id, but its history is read by this id."""
        if user not in self._dms:
            response = await self._call(
                "conversations.open", None, URGENT, lambda: self._client.conversations_open(users=user)
            )
            found = str((response.get("channel") or {}).get("id") or "")
            if not found:
                raise SlackFailure("conversations.open", "no_channel_id", Kind.DROP)
            self._dms[user] = found
        return self._dms[user]

    async def publish_home(
        self,
        *,
        user: str,
        view: dict[str, Any],
        patience: float = URGENT,
        give_way: asyncio.Event | None = None,
    ) -> None:
        await self._call(
            "views.publish",
            None,
            patience,
            lambda: self._client.views_publish(user_id=user, view=view),
            give_way=give_way,
        )

    # ---- people ---------------------------------------------------------------------------------

    async def user_by_email(self, email: str, *, patience: float = math.inf) -> str | None:
        """users.lookupByEmail (Tier 3): the Slack user with this address, None when there is none.

        Not cached here: bot/reach.py keeps the answers in the database with their age (found for a
        day, not found for an hour), shared by replicas, and asks only in the background."""
        try:
            response = await self._call(
                "users.lookupByEmail",
                None,
                patience,
                lambda: self._client.users_lookupByEmail(email=email),
            )
        except SlackFailure as exc:
            if exc.error != "users_not_found":
                raise
            return None
        return str(response["user"]["id"])

    async def workspace_id(self) -> str | None:
        """This workspace's id (auth.test, asked once): who counts as a member rather than an
        external Slack Connect user."""
        if self._team_id is None:
            self._team_id = str((await self.whoami()).get("team_id") or "") or None
        return self._team_id

    async def user_profile(self, user_id: str) -> dict[str, Any]:
        """users.info: email (needs users:read.email), name and time zone."""
        response = await self._call(
            "users.info", None, math.inf, lambda: self._client.users_info(user=user_id)
        )
        user = response["user"]
        profile = user.get("profile", {})
        return {
            "id": user_id,
            "email": profile.get("email"),
            "name": profile.get("real_name") or user.get("real_name") or user.get("name") or user_id,
            "tz": user.get("tz") or "UTC",
        }

    async def user_info(self, user_id: str) -> dict[str, Any]:
        """users.info as Slack gives it (deleted, is_bot, …); raises SlackFailure when refused."""
        response = await self._call(
            "users.info", None, math.inf, lambda: self._client.users_info(user=user_id)
        )
        return dict(response.get("user") or {})

    async def usergroups(self) -> list[dict[str, Any]]:
        """usergroups.list, disabled groups included (`check` names them)."""
        response = await self._call(
            "usergroups.list", None, math.inf, lambda: self._client.usergroups_list(include_disabled=True)
        )
        return [dict(g) for g in response.get("usergroups") or []]

    async def usergroup_members(self, group: str) -> list[str]:
        """usergroups.users.list: the user ids of a Slack user group (needs usergroups:read)."""
        response = await self._call(
            "usergroups.users.list",
            None,
            math.inf,
            lambda: self._client.usergroups_users_list(usergroup=group),
        )
        return [str(u) for u in response.get("users") or []]

    async def channel_members(
        self, channel: str, *, cursor: str | None = None
    ) -> tuple[list[str], str | None]:
        """One page of conversations.members, and the cursor of the next (None at the end)."""
        response = await self._call(
            "conversations.members",
            None,
            URGENT,
            lambda: self._client.conversations_members(channel=channel, limit=1000, cursor=cursor),
        )
        members = [str(m) for m in response.get("members") or []]
        return members, ((response.get("response_metadata") or {}).get("next_cursor")) or None

    # ---- interaction answers (cannot wait in a queue) -------------------------------------------

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> str | None:
        """views.open; returns the Slack error code when Slack refused (e.g. expired_trigger_id)."""
        try:
            await self._call(
                "views.open",
                None,
                URGENT,
                lambda: self._client.views_open(trigger_id=trigger_id, view=view),
                urgent=True,
            )
            return None
        except SlackFailure as exc:
            return exc.error
        except Deferred:
            return "ratelimited"

    async def update_view(self, *, view_id: str, view: dict[str, Any]) -> str | None:
        """views.update of an open modal; returns Slack's error code when it refused."""
        try:
            await self._call(
                "views.update",
                None,
                URGENT,
                lambda: self._client.views_update(view_id=view_id, view=view),
                urgent=True,
            )
            return None
        except SlackFailure as exc:
            return exc.error
        except Deferred:
            return "ratelimited"

    async def post_ephemeral(self, *, channel: str, user: str, message: Message) -> None:
        await self._call(
            "chat.postEphemeral",
            channel,
            URGENT,
            lambda: self._client.chat_postEphemeral(
                channel=channel, user=user, text=message.text, blocks=message.blocks
            ),
            urgent=True,
        )

    def response_url_allowed(self, url: str) -> bool:
        """Only Slack's hook hosts (HTTPS) or the configured API host: a forged payload must not make
        the bot post to an address of its choosing."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and (host in SLACK_HOOK_HOSTS or host.endswith(".slack.com")):
            return True
        api = urlsplit(self._api_url)
        return bool(host) and (parts.scheme, host, parts.port) == (
            api.scheme,
            (api.hostname or "").lower(),
            api.port,
        )

    async def respond(self, *, response_url: str, body: dict[str, Any]) -> bool:
        """POST to an interaction's response_url; True when Slack took it."""
        if not self.response_url_allowed(response_url):
            log.warning("refused a response_url outside Slack's hosts: %s", urlsplit(response_url).hostname)
            return False
        try:
            async with self._session.post(
                response_url, json=body, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                if response.status < 300:
                    metrics.SLACK_CALLS.labels(method="response_url").inc()
                    return True
                log.info("response_url answered %s", response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("response_url failed: %s", type(exc).__name__)
        return False

    async def tell(
        self,
        *,
        user: str,
        message: Message,
        response_url: str | None = None,
        channel: str | None = None,
    ) -> None:
        """A private answer to one person: through the interaction's response_url when there is one,
        else an ephemeral in the channel, else a DM. Never fails the caller."""
        if response_url and await self.respond(
            response_url=response_url,
            body={
                "response_type": "ephemeral",
                "replace_original": False,
                "text": message.text,
                "blocks": message.blocks,
            },
        ):
            return
        try:
            if channel:
                try:
                    await self.post_ephemeral(channel=channel, user=user, message=message)
                    return
                except (SlackFailure, Deferred) as exc:
                    log.info("ephemeral to %s failed (%s); sending a DM", user, exc)
            await self.post_message(
                channel=user, text=message.text, blocks=message.blocks, patience=URGENT, urgent=True
            )
        except (SlackFailure, Deferred) as exc:
            log.warning("could not tell %s: %s", user, exc)


def _status_and_error(exc: SlackApiError) -> tuple[int, str]:
    """The HTTP status and Slack's error code of a refused call, whatever shape slack_sdk gave it.

    Why: for a 200 Slack answers JSON with an `error`. For a 5xx from Slack's edge the body is an
    HTML page, plain text or broken JSON, and slack_sdk then hands over a response whose `data` is
    empty, a string, or (broken JSON) the raw aiohttp response with `status` instead of
    `status_code` and no `data` at all. Each becomes `http_<status>`, which sorts as retry-later."""
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 200
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    return int(status), str(error) if error else (f"http_{status}" if status != 200 else "unknown")


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", {}) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None
