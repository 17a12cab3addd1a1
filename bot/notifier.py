"""The only module that talks to Slack's Web API (and response_urls).

Why one place: Slack's rate limits, retries and error sorting are the same for every message,
and the outbox makes card delivery survive restarts. Card work is rendered at delivery time from
the store, so the newest state wins even when several changes queued up meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks, metrics
from bot.ack_first import no_wait
from bot.blocks import CardState, Message
from connectors.base import Action
from store.models import CardRow, OutboxRow
from store.repo import Store, StoredItem, now_utc

log = logging.getLogger(__name__)

# Slack errors after which retrying the same call cannot help; the work is dropped with a log line.
FINAL_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "is_inactive",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "msg_too_long",
    "invalid_blocks",
    "no_text",
    "user_not_found",
    "users_not_found",
    "cannot_dm_bot",
    "user_disabled",
    "restricted_action",
}


def make_client(*, token: str, base_url: str, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """One client for the process, sharing one aiohttp session (slack_sdk would open one per call).

    429 is not retried by slack_sdk by default: the rate-limit handler sleeps Retry-After.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class Pacer:
    """A token bucket per channel, so posting stays under Slack's "about one message per second per
    channel, short bursts allowed" instead of bouncing off 429s (each costs a whole Retry-After)."""

    def __init__(
        self, per_second: float = 1.0, burst: float = 3.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.per_second = per_second
        self.burst = max(1.0, burst)
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._buckets: dict[str, tuple[float, float]] = {}

    def try_take(self, channel: str) -> float:
        """Take a token now if there is one (0.0); else how long until there is (nothing taken)."""
        now = self._clock()
        tokens, at = self._buckets.get(channel, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens >= 1.0:
            self._buckets[channel] = (tokens - 1.0, now)
            return 0.0
        self._buckets[channel] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    async def wait(self, channel: str) -> None:
        while True:
            now = self._clock()
            tokens, at = self._buckets.get(channel, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[channel] = (tokens - 1.0, now)
                return
            self._buckets[channel] = (tokens, now)
            await asyncio.sleep((1.0 - tokens) / self.per_second)


class Deferred(Exception):
    """A delivery that must wait for the channel's pace: left due for the next pass, not a failure."""


def lane(row: OutboxRow) -> str:
    """Rows of one lane go in order; lanes (channels, people) do not wait on each other."""
    return (row.target or row.kind).removeprefix("channel:")


@dataclass(frozen=True)
class ConnectorView:
    """What the notifier needs to know of a connector to render and route its cards."""

    name: str
    vendor_label: str
    channel: str | None


Clock = Callable[[], datetime]


@dataclass(frozen=True)
class CardWrite:
    """What a card delivery leaves to record: a new card (`posted`) or a card's new digest."""

    posted: dict[str, Any] | None = None
    rendered: tuple[int, str] | None = None


Handler = Callable[[OutboxRow], Awaitable[CardWrite | None]]


class _Rendered(NamedTuple):
    stored: StoredItem
    message: Message
    digest: str


class _Settler:
    """Records finished deliveries in the background, many per transaction (group commit).

    Why: a database round trip per card would cap posting far below what Slack allows in a busy
    channel. The lane goes on to its next card while the last ones are written; whatever piles up
    meanwhile goes in the next single transaction. `flush` is awaited before a pass ends.
    """

    LINGER = 0.02

    def __init__(self, store: Store) -> None:
        self.store = store
        self._done: list[OutboxRow] = []
        self._posted: list[dict[str, Any]] = []
        self._rendered: list[tuple[int, str]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, row: OutboxRow, write: CardWrite | None) -> None:
        self._done.append(row)
        if write is not None and write.posted is not None:
            self._posted.append(write.posted)
        if write is not None and write.rendered is not None:
            self._rendered.append(write.rendered)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._done:
            # Linger a moment so a busy lane's next few cards share the transaction.
            await asyncio.sleep(self.LINGER)
            done, posted, rendered = self._done, self._posted, self._rendered
            self._done, self._posted, self._rendered = [], [], []
            await self.store.settle(done=done, posted=posted, rendered=rendered)

    async def flush(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            await task


class Notifier:
    WINDOW = 2

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        store: Store,
        connectors: Mapping[str, ConnectorView],
        session: aiohttp.ClientSession,
        clock: Clock = now_utc,
        pacer: Pacer | None = None,
    ) -> None:
        self.pacer = pacer or Pacer()
        self.client = client
        self.store = store
        self.connectors = connectors
        self._session = session
        self._clock = clock
        self._email_cache: dict[str, str | None] = {}
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self.on_card: Callable[[str, str, Message, str], Awaitable[None]] | None = None
        # Extra outbox kinds (reminders, channel notifications) register a handler here.
        self.handlers: dict[str, Handler] = {"card": self._deliver_card}
        # Awaited before each delivery, so acknowledging clicks goes first (see bot/ack_first.py).
        self.yield_to: Callable[[], Awaitable[None]] = no_wait
        self._settler = _Settler(store)
        # Items and cards of the pass under way, read in two queries rather than two per card.
        self._items: dict[int, StoredItem] = {}
        self._cards: dict[int, list[CardRow]] = {}
        self._ahead: dict[int | None, asyncio.Future[_Rendered | None]] = {}
        # Set by a card delivery once it holds its pace token, letting the lane start the next one.
        self._started: dict[int | None, asyncio.Event] = {}

    # ---- rendering -------------------------------------------------------------------------------

    def card_state(self, stored: StoredItem, synced_at: datetime | None = None) -> CardState:
        row = stored.row
        view = self.connectors.get(stored.item.connector)
        return CardState(
            item=stored.item,
            vendor_label=view.vendor_label if view else stored.item.connector,
            connector_name=stored.item.connector,
            now=self._clock(),
            synced_at=synced_at or row.updated_at,
            working_by=row.claim_by,
            working_action=_action(row.claim_action),
            decided_by=row.decided_by,
            decided_action=_action(row.decided_action),
            decided_at=row.decided_at,
            decided_comment=row.decided_comment,
            last_error=row.last_error,
        )

    # ---- outbox ----------------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask the delivery loop to run now (after a click or a sync wrote outbox rows)."""
        self._kick.set()

    async def wait_for_kick(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), timeout)
        self._kick.clear()

    async def deliver(self, *, limit: int = 200) -> int:
        """Deliver what is due, lane by lane in parallel; one pass at a time per process.

        A lane whose channel is at Slack's pace stops for this pass (its rows stay due), so one busy
        channel never holds up a card update elsewhere. Returns how many rows were done.
        """
        async with self._lock:
            lanes: dict[str, list[OutboxRow]] = {}
            due = await self.store.due_outbox(limit=limit)
            for row in due:
                lanes.setdefault(lane(row), []).append(row)
            card_items = list({r.item_id for r in due if r.kind == "card" and r.item_id is not None})
            self._items = await self.store.items_by_ids(item_ids=card_items)
            self._cards = await self.store.cards_of(item_ids=card_items)
            try:
                counts = await asyncio.gather(*(self._deliver_lane(rows) for rows in lanes.values()))
            finally:
                for task in self._ahead.values():  # renders ahead of rows this pass did not reach
                    task.cancel()
                    if task.done() and not task.cancelled():
                        task.exception()  # retrieved: the row's own delivery will meet it again
                self._items, self._cards, self._ahead = {}, {}, {}
                await self._settler.flush()
            return sum(counts)

    async def _deliver_lane(self, rows: list[OutboxRow]) -> int:
        """Rows in order. Up to WINDOW card calls may be in flight together (each started only once
        it holds its pace token, so Slack receives them in order): with one at a time, Slack's
        answer time would cap a busy channel below the rate Slack allows."""
        done = 0
        flying: deque[tuple[OutboxRow, asyncio.Future[CardWrite | None]]] = deque()
        stopped = False
        for index, row in enumerate(rows):
            if index + 1 < len(rows) and rows[index + 1].kind == "card":
                # Render the next card while this row waits on Slack: the two overlap.
                self._ahead[rows[index + 1].id] = asyncio.ensure_future(self._render(rows[index + 1]))
            handler = self.handlers.get(row.kind)
            if handler is None:
                log.error("outbox row %s has unknown kind %r; dropped", row.id, row.kind)
                self._settler.add(row, None)
                continue
            windowed = row.kind == "card"
            await self.yield_to()
            while flying and (not windowed or len(flying) >= self.WINDOW or flying[0][1].done()):
                outcome = await self._outcome(*flying.popleft())
                done += outcome == "done"
                stopped = stopped or outcome == "stop"
            if stopped:
                break
            task = asyncio.ensure_future(handler(row))
            flying.append((row, task))
            if windowed:
                started = self._started.setdefault(row.id, asyncio.Event())
                waiter = asyncio.ensure_future(started.wait())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                self._started.pop(row.id, None)
            else:
                await asyncio.wait({task})  # other work goes alone, in order
        while flying:  # calls already made are recorded even when the lane stopped
            outcome = await self._outcome(*flying.popleft())
            done += outcome == "done"
        return done

    async def _outcome(self, row: OutboxRow, task: asyncio.Future[CardWrite | None]) -> str:
        """ "done", "skip" (dropped for good, the lane goes on) or "stop" (left due or set to retry:
        what follows in the lane waits for a later pass)."""
        try:
            write = await task
        except Deferred:
            return "stop"
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error in FINAL_ERRORS:
                log.warning("Slack refused %s for %s: %s; not retrying", row.kind, row.target, error)
                metrics.SLACK_FAILURES.labels(error=error).inc()
                self._settler.add(row, None)
                return "skip"
            retry_after = _retry_after(exc)
            delay = timedelta(seconds=retry_after or min(300, 2 ** min(row.attempts, 8)))
            log.info("Slack %s for %s; retrying in %s", error, row.target, delay)
            await self.store.outbox_retry(row=row, error=error, delay=delay)
            return "stop"
        except (aiohttp.ClientError, TimeoutError) as exc:
            delay = timedelta(seconds=min(300, 2 ** min(row.attempts, 8)))
            await self.store.outbox_retry(row=row, error=type(exc).__name__, delay=delay)
            return "stop"
        self._settler.add(row, write)
        return "done"

    async def pace(self, channel: str, *, patience: float = 0.25) -> None:
        """Wait for `channel`'s pace when that is short; raise Deferred when it is not (the row is
        then delivered in a later pass, and other lanes go on meanwhile)."""
        while (delay := self.pacer.try_take(channel)) > 0:
            if delay > patience:
                raise Deferred(channel)
            await asyncio.sleep(delay)

    def _signal_started(self, row: OutboxRow) -> None:
        event = self._started.get(row.id)
        if event is not None:
            event.set()

    async def _render(self, row: OutboxRow) -> _Rendered | None:
        assert row.item_id is not None and row.target is not None
        stored = self._items.get(row.item_id) or await self.store.item_by_id(item_id=row.item_id)
        if stored is None:
            return None
        state = self.card_state(stored)
        if not await self._still_theirs(stored, row.target):
            state = replace(state, not_theirs=True)
        message = blocks.card(state)
        return _Rendered(stored, message, digest(message))

    async def _deliver_card(self, row: OutboxRow) -> CardWrite | None:
        assert row.item_id is not None and row.target is not None
        ahead = self._ahead.pop(row.id, None)
        prepared = await ahead if ahead is not None else await self._render(row)
        if prepared is None:
            return None
        stored, message, rendered = prepared
        cards = self._cards.get(row.item_id)
        if cards is None:
            cards = await self.store.cards(item_id=row.item_id)
        existing = next((c for c in cards if c.target == row.target), None)
        if existing is not None:
            if existing.rendered == rendered:
                return None
            await self.pace(existing.channel)
            self._signal_started(row)
            await self.client.chat_update(
                channel=existing.channel, ts=existing.ts, text=message.text, blocks=message.blocks
            )
            metrics.SLACK_CALLS.labels(method="chat.update").inc()
            assert existing.id is not None
            if self.on_card:
                await self.on_card(existing.channel, existing.ts, message, "update")
            return CardWrite(rendered=(existing.id, rendered))
        destination, slack_user = await self._destination(row.target, stored.item.connector)
        if destination is None:
            log.warning(
                "no Slack destination for %s (%s); card not posted", row.target, stored.item.connector
            )
            return None
        await self.pace(destination)
        self._signal_started(row)
        response = await self.client.chat_postMessage(
            channel=destination, text=message.text, blocks=message.blocks, unfurl_links=False
        )
        metrics.SLACK_CALLS.labels(method="chat.postMessage").inc()
        channel, ts = str(response["channel"]), str(response["ts"])
        if self.on_card:
            await self.on_card(channel, ts, message, "post")
        posted = {
            "item_id": row.item_id,
            "target": row.target,
            "channel": channel,
            "ts": ts,
            "slack_user": slack_user,
            "rendered": rendered,
            # The item as drawn: a click before this card is recorded gets it redrawn (Store.settle).
            "seen_updated_at": stored.row.updated_at,
            "seen_claim_by": stored.row.claim_by,
        }
        return CardWrite(posted=posted)

    async def _still_theirs(self, stored: StoredItem, target: str) -> bool:
        """A person's DM copy stays actionable only while they are among the item's recipients."""
        kind, _, value = target.partition(":")
        recipients = stored.item.recipients
        if kind == "channel" or not recipients:
            return True
        if kind == "email":
            return any((p.email or "").lower() == value for p in recipients)
        identity = await self.store.identity(slack_user_id=value, connector=stored.item.connector)
        if identity is None:
            return True
        return any(p.id == identity.vendor_user_id for p in recipients)

    async def _destination(self, target: str, connector: str) -> tuple[str | None, str | None]:
        kind, _, value = target.partition(":")
        if kind == "channel":
            return value, None
        if kind == "user":
            return value, value
        if kind == "email":
            user = await self.user_by_email(value)
            if user:
                return user, user
            view = self.connectors.get(connector)
            return (view.channel if view else None), None
        return None, None

    async def user_by_email(self, email: str) -> str | None:
        key = email.lower()
        if key not in self._email_cache:
            try:
                response = await self.client.users_lookupByEmail(email=email)
                self._email_cache[key] = str(response["user"]["id"])
            except SlackApiError as exc:
                if exc.response.get("error") != "users_not_found":
                    raise
                self._email_cache[key] = None
        return self._email_cache[key]

    async def user_profile(self, user_id: str) -> dict[str, Any]:
        """users.info: email (needs users:read.email), name and time zone."""
        response = await self.client.users_info(user=user_id)
        user = response["user"]
        profile = user.get("profile", {})
        return {
            "id": user_id,
            "email": profile.get("email"),
            "name": profile.get("real_name") or user.get("real_name") or user.get("name") or user_id,
            "tz": user.get("tz") or "UTC",
        }

    # ---- private answers ---------------------------------------------------------------------------

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
        try:
            if response_url:
                async with self._session.post(
                    response_url,
                    json={
                        "response_type": "ephemeral",
                        "replace_original": False,
                        "text": message.text,
                        "blocks": message.blocks,
                    },
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    if response.status < 300:
                        return
                    log.info("response_url answered %s; falling back", response.status)
            if channel:
                try:
                    await self.client.chat_postEphemeral(
                        channel=channel, user=user, text=message.text, blocks=message.blocks
                    )
                    return
                except SlackApiError as exc:
                    log.info("ephemeral to %s failed (%s); sending a DM", user, exc.response.get("error"))
            await self.client.chat_postMessage(channel=user, text=message.text, blocks=message.blocks)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not tell %s: %s", user, type(exc).__name__)

    async def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> str | None:
        """views.open; returns the Slack error code when Slack refused (e.g. expired_trigger_id)."""
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
            return None
        except SlackApiError as exc:
            return str(exc.response.get("error", "unknown"))


def digest(message: Message) -> str:
    return hashlib.sha256(json.dumps([message.text, message.blocks], sort_keys=True).encode()).hexdigest()[
        :32
    ]


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", {}) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _action(value: str | None) -> Action | None:
    try:
        return Action(value) if value else None
    except ValueError:
        return None
