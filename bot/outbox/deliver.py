"""Takes due outbox jobs by priority, renders them with the pure builders, sends them through the
gateway, and records what Slack answered.

Performance devices kept from the fan-out benchmark (README, Performance: "fan-out 2,000 cards"):
lanes per channel in parallel; the next card rendered while the current one waits on Slack
(render-ahead, bot/outbox/ahead.py); up to two card calls in flight per lane, each started once it holds its pace;
finished work recorded many rows per transaction (group commit); a kick after a click or a sync
instead of waiting for the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot import blocks, metrics
from bot.ack_first import no_wait
from bot.blocks import CardState, Message
from bot.flow_blocks import decision_reply, flow_message
from bot.outbox.ahead import RenderAhead
from bot.outbox.jobs import (
    CardJob,
    DigestJob,
    EscalationJob,
    FlowJob,
    HomeJob,
    Job,
    Priority,
    ReminderJob,
    TellJob,
    ThreadReplyJob,
    job_of,
)
from bot.outbox.render import ConnectorView, card_state, escalation_text, fingerprint, reminder_text
from bot.reach import Reach
from bot.reminders.rules import next_reminder_at
from bot.slack.gateway import Deferred, Kind, SlackFailure, SlackGateway
from connectors.base import ApprovalItem, Person, Status
from store import audit, card_posts, subscriptions
from store import outbox as queue
from store import reach as lookups
from store.models import CardRow, OutboxRow
from store.repo import Identity, Store, StoredItem, now_utc

log = logging.getLogger(__name__)

# The message metadata every card carries: which item, for which target (see `_card`).
CARD_EVENT = "approval_card"
# How far back a crashed post is looked for in its channel's history.
LOOK_BACK = timedelta(hours=1)

Clock = Callable[[], datetime]


class Later(Exception):
    """The job cannot go yet (a thread reply before its flow message): retry after `delay`."""

    def __init__(self, delay: float, why: str) -> None:
        super().__init__(why)
        self.delay = delay


@dataclass(frozen=True)
class CardWrite:
    """What a card delivery leaves to record: a new card (`posted`) or a card's new fingerprint."""

    posted: dict[str, Any] | None = None
    rendered: tuple[int, str] | None = None


class _Rendered(NamedTuple):
    stored: StoredItem
    message: Message
    fingerprint: str


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
            await queue.settle(self.store.db, done=done, posted=posted, rendered=rendered)

    async def flush(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            await task


def lane(job: Job) -> str:
    """Jobs of one lane go in order; lanes (channels, people) do not wait on each other."""
    return queue.lane_of(job.target, job.kind)


def _longer(rest: float | None, outcome: str | float) -> float | None:
    """The lane's rest after one more outcome: the longest a stopped row asked for."""
    if isinstance(outcome, str):
        return rest
    return outcome if rest is None else max(rest, outcome)


def _named(item: ApprovalItem, identity: Identity | None, emails: set[str]) -> list[Person]:
    """The item's approvers who are this reader: by their vendor link, or by any of their addresses."""
    return [
        p
        for p in item.recipients
        if (identity is not None and p.id == identity.vendor_user_id) or emails & set(p.all_emails)
    ]


def _why_you(item: ApprovalItem, mine: list[Person]) -> str | None:
    """Why the card reached this reader: the groups they are in, else that they are named."""
    ids = {p.id for p in mine}
    groups = [g.name for g in item.groups if ids & {p.id for p in g.approvers}]
    return f"You are in {', '.join(groups)}" if groups else "You are named as an approver" if mine else None


class Deliverer:
    WINDOW = 2
    # How long a queued job waits for its method's pace before its lane rests (its rows stay due).
    # Longer than Slack's pace of one post a second per channel: a waiting lane holds up no other
    # lane, and gives way at once when someone acts on an item.
    PATIENCE = 2.0

    def __init__(
        self,
        *,
        gateway: SlackGateway,
        store: Store,
        connectors: Mapping[str, ConnectorView],
        home_view: Callable[[str], Awaitable[dict[str, Any]]],
        pending_for: Callable[[str], Awaitable[list[CardState]]],
        clock: Clock = now_utc,
        reach: Reach | None = None,
        link_modes: Mapping[str, str] | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.connectors = connectors
        self._home_view = home_view
        self._pending_for = pending_for
        self._clock = clock
        # Approvers found in Slack by email (stored answers; asked only for "email:" targets here).
        self.reach = reach
        self._link_modes = dict(link_modes or {})
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        # Set when someone acted on an item while a pass runs: every lane stops at its next row or
        # pace wait (the gateway's `give_way`), so that person's card goes next, not after a backlog.
        self._urgent = asyncio.Event()
        # Set by every kick: a pass under way takes the new work into lanes not already going.
        self._more = asyncio.Event()
        self._closing = False
        # Called with (channel, ts, message, "post"/"update") after each card call (the demo shows them).
        self.on_card: Callable[[str, str, Message, str], Awaitable[None]] | None = None
        # Awaited before each delivery, so acknowledging clicks goes first (see bot/ack_first.py).
        self.yield_to: Callable[[], Awaitable[None]] = no_wait
        self._settler = _Settler(store)
        self._senders: dict[type[Job], Callable[[Any, OutboxRow], Awaitable[CardWrite | None]]] = {
            CardJob: self._card,
            FlowJob: self._flow,
            ThreadReplyJob: self._replies,
            ReminderJob: self._reminder,
            EscalationJob: self._escalation,
            DigestJob: self._digest,
            HomeJob: self._home,
            TellJob: self._tell,
        }
        # Logged once: without a history scope a card interrupted mid-post may be posted twice.
        self._history_warned = False
        # Items and cards of the pass under way, read in two queries rather than two per card.
        self._items: dict[int, StoredItem] = {}
        self._cards: dict[int, list[CardRow]] = {}
        self._ahead = RenderAhead[_Rendered | None]()
        # (item, target) → when an earlier attempt to post that card began (None: this pass's is the first).
        self._intents: dict[tuple[int, str], datetime | None] = {}
        # New cards whose chat.postMessage may have reached Slack this pass (past their pace).
        self._calling: set[tuple[int, str]] = set()
        # Set by a card delivery once it holds its pace token, letting the lane start the next one.
        self._started: dict[int | None, asyncio.Event] = {}
        # Rows this pass did or dropped (id → the enqueued_at it saw), until their record is written.
        self._taken: dict[int, datetime] = {}

    def card_state(self, stored: StoredItem) -> CardState:
        return card_state(stored, self.connectors.get(stored.item.connector), self._clock())

    # ---- the loop -------------------------------------------------------------------------------

    def kick(self, urgent: bool = False) -> None:
        """Ask the delivery loop to run now (after a click or a sync queued jobs); `urgent`: an
        ACTED job was queued, cut short the pass under way."""
        self._kick.set()
        self._more.set()
        if urgent:
            self._urgent.set()

    def close(self) -> None:
        """Stopping: the pass under way ends at each lane's next row; no new one starts."""
        self._closing = True
        self._urgent.set()
        self.kick()

    async def wait_for_kick(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), timeout)
        self._kick.clear()

    async def deliver(self, *, limit: int = 200) -> int:
        """Deliver what is due, most urgent first, lane by lane in parallel; one pass at a time.

        Lanes go independently: one that empties or stops is replaced by the next due work (up to
        `limit` rows a fetch) while the others go on, so a slow channel never holds up the rest
        (README, Performance: "within Slack's tiers"). When someone acts on an item, every lane
        stops at its next row or pace wait and the lanes holding ACTED jobs (the card just clicked)
        go first, alone, their method's reserve at hand (README: "priority under load"). A lane whose
        method is paced beyond PATIENCE rests (its rows stay due). The pass ends when no lane goes.
        Returns how many rows were done.
        """
        async with self._lock:
            running: dict[str, asyncio.Task[tuple[int, float | None]]] = {}
            resting: dict[str, float] = {}  # lane → loop time it may go again
            done = 0
            try:
                while not self._closing:
                    self._more.clear()
                    if self._urgent.is_set():
                        done += await self._acted_first(running, resting, limit)
                        continue
                    now = asyncio.get_running_loop().time()
                    lanes = await self._take(
                        limit, skip={*running, *(k for k, at in resting.items() if at > now)}
                    )
                    for key, pairs in lanes.items():
                        running[key] = asyncio.create_task(self._deliver_lane(pairs, limit))
                    if not running:
                        break
                    done += await self._reap(running, resting, every=False)
                done += await self._reap(running, resting, every=True)
            finally:
                await self._end_pass(running)
            return done

    async def _end_pass(self, running: dict[str, asyncio.Task[tuple[int, float | None]]]) -> None:
        """However the pass ends (done, closing, or an error): lanes still going are stopped, cards
        rendered ahead dropped, what the pass read forgotten (the next reads afresh), and what it
        did recorded before the next pass may take the same rows."""
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        self._ahead.drop()
        # Intents this pass recorded for posts it never made: gone, so no history search later.
        unposted = [k for k, since in self._intents.items() if since is None and k not in self._calling]
        self._items, self._cards, self._intents, self._taken = {}, {}, {}, {}
        self._calling = set()
        await card_posts.forget(self.store.db, posts=unposted)
        await self._settler.flush()

    async def _acted_first(
        self,
        running: dict[str, asyncio.Task[tuple[int, float | None]]],
        resting: dict[str, float],
        limit: int,
    ) -> int:
        """Someone acted: every lane stops at its next row or pace wait; then the ACTED jobs go,
        alone; the other lanes follow. Returns the rows done meanwhile."""
        done = await self._reap(running, resting, every=True)
        resting.clear()  # paced out without the reserve a clicked card may spend
        self._urgent.clear()
        acted = await self._take(limit, skip=set(), max_priority=Priority.ACTED)
        ends = await asyncio.gather(*(self._deliver_lane(pairs) for pairs in acted.values()))
        now = asyncio.get_running_loop().time()
        resting |= {k: now + rest for k, (_, rest) in zip(acted, ends, strict=True) if rest is not None}
        return done + sum(count for count, _ in ends)

    async def _take(
        self, limit: int, *, skip: set[str], max_priority: int | None = None, only: str | None = None
    ) -> dict[str, list[tuple[OutboxRow, Job]]]:
        """Due rows of lanes not under way or resting (or of the lane `only`), by lane, with what
        their cards need."""
        lanes: dict[str, list[tuple[OutboxRow, Job]]] = {}
        due = await queue.due(
            self.store.db, limit=limit, skip_lanes=skip, max_priority=max_priority, lane=only
        )
        if any(self._taken.get(row.id or 0, row.enqueued_at) != row.enqueued_at for row in due):
            # Asked for again while this pass did it: what the pass did is recorded first, so
            # the card it posted is found (and updated, not posted twice).
            await self._settler.flush()
        for row in due:
            if row.id in self._taken and self._taken[row.id] == row.enqueued_at:
                continue  # done this pass, its record not yet written
            job = job_of(kind=row.kind, payload=row.payload, item_id=row.item_id, target=row.target)
            if job is None:
                log.error("outbox row %s (%s) is no job this version knows; dropped", row.id, row.kind)
                self._settle(row, None)
                continue
            lanes.setdefault(lane(job), []).append((row, job))
        jobs = [j for ps in lanes.values() for _, j in ps if isinstance(j, CardJob)]
        if not jobs:
            return lanes
        card_items = list({j.item for j in jobs})
        self._items |= await self.store.items_by_ids(item_ids=card_items)
        self._cards |= await self.store.cards_of(item_ids=card_items)
        # The intent to post each new card, in one transaction (see `_card`).
        self._intents |= await card_posts.begin_many(
            self.store.db,
            posts=[
                (j.item, j.to, j.to.partition(":")[2])
                for j in jobs
                if (j.item, j.to) not in self._intents
                and not any(c.target == j.to for c in self._cards.get(j.item, ()))
            ],
        )
        return lanes

    async def _reap(
        self,
        running: dict[str, asyncio.Task[tuple[int, float | None]]],
        resting: dict[str, float],
        *,
        every: bool,
    ) -> int:
        """Wait for every lane to end, or (not `every`) for the first of: a lane ends, new work is
        queued, a resting lane may go again. Lanes that stopped rest; returns the rows done."""
        loop = asyncio.get_running_loop()
        if every:
            if running:
                await asyncio.wait(running.values())
        else:
            more = asyncio.ensure_future(self._more.wait())
            wakes = [at for at in resting.values() if at > loop.time()]
            timeout = max(0.0, min(wakes) - loop.time()) if wakes else None
            await asyncio.wait(
                {*running.values(), more}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            more.cancel()
        done = 0
        for key, task in list(running.items()):
            if task.done():
                del running[key]
                count, rest = task.result()
                done += count
                if rest is not None:
                    resting[key] = loop.time() + rest
        return done

    def _settle(self, row: OutboxRow, write: CardWrite | None) -> None:
        assert row.id is not None
        self._taken[row.id] = row.enqueued_at
        self._settler.add(row, write)

    async def _deliver_lane(
        self, pairs: list[tuple[OutboxRow, Job]], limit: int = 0
    ) -> tuple[int, float | None]:
        """Rows in order; returns how many were done, and how long the lane rests when it stopped
        (None: it emptied, or gave way to an ACTED job). A lane given a full batch (`limit` rows)
        asks for its next rows while its last calls are in flight and goes on with them: a busy
        channel never waits on a gap between batches (README, Performance: "fan-out")."""
        done, rest = 0, None
        flying: deque[tuple[OutboxRow, Job, asyncio.Future[CardWrite | None]]] = deque()
        while pairs:
            count, rest, reached = await self._rows(pairs, flying)
            done += count
            for row, _ in pairs[reached : reached + 2]:
                self._ahead.discard(row.id)  # not reached: rendered afresh when the lane goes again
            if rest is not None or reached < len(pairs) or len(pairs) < limit:
                break
            in_flight = {row.id for row, _, _ in flying}
            more = await self._take(limit + len(in_flight), skip=set(), only=lane(pairs[0][1]))
            pairs = [p for ps in more.values() for p in ps if p[0].id not in in_flight]
        while flying:  # calls already made are recorded even when the lane stopped
            outcome = await self._outcome(*flying.popleft())
            done += outcome == "done"
            rest = _longer(rest, outcome)
        return done, rest

    async def _rows(
        self,
        pairs: list[tuple[OutboxRow, Job]],
        flying: deque[tuple[OutboxRow, Job, asyncio.Future[CardWrite | None]]],
    ) -> tuple[int, float | None, int]:
        """Start the rows in order, up to WINDOW card calls in flight together (each started only
        once it holds its pace, so Slack receives them in order): with one at a time, Slack's answer
        time would cap a busy channel below the rate Slack allows. Returns the rows done, the rest
        asked for (None: none), and how many rows were started."""
        done = 0
        for index, (row, job) in enumerate(pairs):
            if self._closing or (row.priority > Priority.ACTED and self._urgent.is_set()):
                return done, None, index  # someone just acted: their card goes first
            if index + 1 < len(pairs) and isinstance(pairs[index + 1][1], CardJob):
                # Render the next card while this row waits on Slack: the two overlap.
                nxt_row, nxt = pairs[index + 1]
                assert isinstance(nxt, CardJob)
                self._ahead.start(nxt_row.id, self._render(nxt))
            windowed = isinstance(job, CardJob)
            await self.yield_to()
            rest: float | None = None
            while flying and (not windowed or len(flying) >= self.WINDOW or flying[0][2].done()):
                outcome = await self._outcome(*flying.popleft())
                done += outcome == "done"
                rest = _longer(rest, outcome)
            if rest is not None:
                return done, rest, index
            task = asyncio.ensure_future(self._senders[type(job)](job, row))
            flying.append((row, job, task))
            if windowed:
                started = self._started.setdefault(row.id, asyncio.Event())
                waiter = asyncio.ensure_future(started.wait())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                self._started.pop(row.id, None)
            else:
                await asyncio.wait({task})  # other work goes alone, in order
        return done, None, len(pairs)

    async def _outcome(self, row: OutboxRow, job: Job, task: asyncio.Future[CardWrite | None]) -> str | float:
        """ "done", "skip" (dropped for good, the lane goes on), or the seconds the lane rests (the
        row left due or set to retry: what follows in the lane waits)."""
        try:
            write = await task
        except Deferred as exc:
            return exc.wait
        except Later as exc:
            if row.attempts >= 8:
                log.warning("%s %s given up: %s", row.kind, row.key, exc)
                self._settle(row, None)
                return "skip"
            await queue.retry(self.store.db, row=row, error=str(exc), delay=timedelta(seconds=exc.delay))
            return exc.delay
        except SlackFailure as exc:
            return await self._failed(row, job, exc)
        self._settle(row, write)
        return "done"

    async def _failed(self, row: OutboxRow, job: Job, exc: SlackFailure) -> str | float:
        if exc.kind is Kind.RETRY or exc.kind is Kind.TOKEN_REVOKED:
            backoff = 300.0 if exc.kind is Kind.TOKEN_REVOKED else min(300, 2 ** min(row.attempts, 8))
            delay = timedelta(seconds=exc.retry_after if exc.retry_after is not None else backoff)
            log.info("Slack %s for %s %s; retrying in %s", exc.error, row.kind, row.target, delay)
            await queue.retry(self.store.db, row=row, error=exc.error, delay=delay)
            return delay.total_seconds()
        if exc.kind is Kind.CHANNEL_GONE and isinstance(job, FlowJob | ThreadReplyJob):
            await self._channel_gone(job, exc.error)
        else:
            log.warning("Slack refused %s for %s: %s; not retrying", row.kind, row.target, exc.error)
        self._settle(row, None)
        return "skip"

    # ---- cards ----------------------------------------------------------------------------------

    async def _render(self, job: CardJob) -> _Rendered | None:
        stored = self._items.get(job.item) or await self.store.item_by_id(item_id=job.item)
        if stored is None:
            return None
        state = await self._for_target(stored, self.card_state(stored), job.to)
        message = blocks.card(state)
        return _Rendered(stored, message, fingerprint(message))

    def _give_way(self, row: OutboxRow) -> asyncio.Event | None:
        """A clicked card's call waits for nobody; any other stops waiting once someone acts."""
        return None if row.priority <= Priority.ACTED else self._urgent

    def _paced(self, row: OutboxRow) -> asyncio.Event:
        return self._started.setdefault(row.id, asyncio.Event())

    async def _card(self, job: CardJob, row: OutboxRow) -> CardWrite | None:
        """One card: the copy already posted for this target redrawn when it changed, else a new
        one posted (or, after an interrupted attempt, found in the channel and adopted)."""
        prepared = await self._ahead.take(row.id, lambda: self._render(job))
        if prepared is None:
            return None
        cards = self._cards.get(job.item)
        if cards is None:
            cards = await self.store.cards(item_id=job.item)
        existing = next((c for c in cards if c.target == job.to), None)
        if existing is not None:
            return await self._redraw(existing, prepared, row)
        return await self._new_card(job, row, prepared, cards)

    async def _redraw(self, existing: CardRow, prepared: _Rendered, row: OutboxRow) -> CardWrite | None:
        """The posted card updated, unless its fingerprint says it already shows this copy."""
        _, message, rendered = prepared
        if existing.rendered == rendered:
            return None
        await self._update(existing.channel, existing.ts, message, row)
        assert existing.id is not None
        if self.on_card:
            await self.on_card(existing.channel, existing.ts, message, "update")
        return CardWrite(rendered=(existing.id, rendered))

    async def _update(self, channel: str, ts: str, message: Message, row: OutboxRow) -> None:
        """A posted card's chat.update: a clicked card's goes ahead of others, spending the reserve."""
        await self.gateway.update_message(
            channel=channel,
            ts=ts,
            text=message.text,
            blocks=message.blocks,
            patience=self.PATIENCE,
            paced=self._paced(row),
            urgent=row.priority <= Priority.ACTED,
            give_way=self._give_way(row),
        )

    async def _new_card(
        self, job: CardJob, row: OutboxRow, prepared: _Rendered, cards: list[CardRow]
    ) -> CardWrite | None:
        """A card for a target that has none yet: to its Slack destination, unless it has none (or
        an address not in Slack whom the channel's copy names already)."""
        stored, message, rendered = prepared
        destination, slack_user = await self._destination(job.to, stored.item.connector)
        if (
            job.to.startswith("email:")
            and slack_user is None
            and any(c.target.startswith("channel:") for c in cards)
        ):
            return None  # not in Slack, and the channel's copy names them already
        if destination is None:
            log.warning("no Slack destination for %s (%s); card not posted", job.to, stored.item.connector)
            return None
        # The intent before the post: a crash between Slack's answer and its record leaves this row,
        # and the next attempt looks for the card (by its metadata) before posting again.
        tag = {"item": str(job.item), "target": job.to}
        since = await self._intent_since(job, destination)
        found = await self._posted_before(destination, tag, since) if since is not None else None
        if found is not None:
            channel, ts = await self._adopt(found, job, row, stored, message)
        else:
            channel, ts = await self._post(destination, tag, job, row, message)
        if self.on_card:
            await self.on_card(channel, ts, message, "update" if found else "post")
        return CardWrite(
            posted=self._posted(job, stored, channel=channel, ts=ts, slack_user=slack_user, rendered=rendered)
        )

    async def _intent_since(self, job: CardJob, destination: str) -> datetime | None:
        """When an earlier attempt to post this card began (None: this one is the first), its intent
        recorded now if the pass did not expect the card to be new."""
        if (job.item, job.to) in self._intents:
            return self._intents[(job.item, job.to)]
        earlier = await card_posts.begin(self.store.db, item_id=job.item, target=job.to, channel=destination)
        return earlier.started_at if earlier is not None else None

    async def _adopt(
        self, found: tuple[str, str], job: CardJob, row: OutboxRow, stored: StoredItem, message: Message
    ) -> tuple[str, str]:
        """An interrupted attempt did post the card: it is updated to this copy and recorded, not
        posted twice."""
        channel, ts = found
        await self._update(channel, ts, message, row)
        metrics.RECONCILIATIONS.labels(connector=stored.item.connector, outcome="card_adopted").inc()
        log.info("card of item %s for %s found already posted (%s); adopted", job.item, job.to, ts)
        return channel, ts

    async def _post(
        self, destination: str, tag: dict[str, str], job: CardJob, row: OutboxRow, message: Message
    ) -> tuple[str, str]:
        """The card posted, tagged with its item and target in the message metadata (how a later
        attempt finds it). Once past its pace the call counts as made, whatever Slack answered: its
        intent is then kept for that search."""
        paced = self._paced(row)
        try:
            return await self.gateway.post_message(
                channel=destination,
                text=message.text,
                blocks=message.blocks,
                patience=self.PATIENCE,
                paced=paced,
                urgent=row.priority <= Priority.ACTED,
                give_way=self._give_way(row),
                metadata={"event_type": CARD_EVENT, "event_payload": tag},
            )
        finally:
            if paced.is_set():  # past its pace: the call went out (whatever Slack answered)
                self._calling.add((job.item, job.to))

    def _posted(
        self,
        job: CardJob,
        stored: StoredItem,
        *,
        channel: str,
        ts: str,
        slack_user: str | None,
        rendered: str,
    ) -> dict[str, Any]:
        """The new card's record, as store/outbox.settle writes it."""
        return {
            "item_id": job.item,
            "target": job.to,
            "channel": channel,
            "ts": ts,
            "slack_user": slack_user,
            "rendered": rendered,
            "remind_at": self._first_reminder(stored),
            "redraw": CardJob(item=job.item, to=job.to).entry(),
            # The item as drawn: a click before this card is recorded gets it redrawn (store/outbox.settle).
            "seen_updated_at": stored.row.updated_at,
            "seen_claim_by": stored.row.claim_by,
        }

    async def _posted_before(
        self, destination: str, tag: dict[str, str], since: datetime
    ) -> tuple[str, str] | None:
        """(channel, ts) of this card when an interrupted attempt did post it, else None.

        A DM card was posted to the person's user id; its history is read under the DM's own D…
        id (conversations.open). Without a history scope the card is posted again: a rare
        duplicate after a crash beats a card never posted. Logged once."""
        if not destination.startswith(("C", "G", "D", "U", "W")):
            return None
        oldest = f"{(since - LOOK_BACK).timestamp():.6f}"
        try:
            channel = destination
            if destination.startswith(("U", "W")):
                channel = await self.gateway.dm_channel(destination)
            tagged = await self.gateway.tagged_messages(channel=channel, event_type=CARD_EVENT, oldest=oldest)
        except SlackFailure as exc:
            if exc.kind is Kind.RETRY:
                raise  # Slack trouble: the job waits and asks again
            if not self._history_warned:
                self._history_warned = True
                log.warning(
                    "cannot read %s's history (%s): a card interrupted mid-post is posted again. "
                    "Reinstall the app from manifest.yml (it asks for channels:history, "
                    "groups:history, im:history and im:write) to avoid duplicates after a crash",
                    destination,
                    exc.error,
                )
            return None
        ts = next((ts for ts, payload in tagged if payload == tag), None)
        return (channel, ts) if ts else None

    def _first_reminder(self, stored: StoredItem) -> datetime | None:
        view = self.connectors.get(stored.item.connector)
        if view is None or stored.item.status is not Status.PENDING:
            return None
        due_since = stored.item.due_since or stored.row.first_seen_at
        return next_reminder_at(due_since=due_since, sent=0, last_sent_at=None, rules=view.reminders)

    async def _for_target(self, stored: StoredItem, state: CardState, target: str) -> CardState:
        """The copy as its reader should see it: a person's says why it reached them, offers linking
        when they cannot act yet, and stops offering buttons once it is no longer their turn; the
        channel's names the approvers nobody could find in Slack."""
        item = stored.item
        if item.status is not Status.PENDING:
            return state
        kind, _, value = target.partition(":")
        if kind == "channel":
            return replace(state, unreachable=tuple(p.label for p in await self._unreachable(stored)))
        identity, emails = await self._reader(kind, value, item.connector)
        mine = _named(item, identity, emails)
        if item.recipients and not mine and (identity is not None or emails):
            return replace(state, not_theirs=True)
        link_first = await self._link_first(kind, value, item.connector, identity)
        return replace(state, reason=_why_you(item, mine), link_first=link_first)

    async def _reader(self, kind: str, value: str, connector: str) -> tuple[Identity | None, set[str]]:
        """Who reads a person's copy: their link to the vendor (if any) and every address known
        to be theirs (an "email:" target's own; a Slack user's stored answers and linked email)."""
        if kind == "email":
            return None, {value}
        identity = None
        emails: set[str] = set()
        if kind == "user":
            identity = await self.store.identity(slack_user_id=value, connector=connector)
            if self.reach is not None:
                emails = (await lookups.emails_of(self.store.db, slack_user_ids=[value]))[value]
            if identity is not None and identity.email:
                emails.add(identity.email.lower())
        return identity, emails

    async def _link_first(self, kind: str, value: str, connector: str, identity: Identity | None) -> bool:
        """Whether the card offers linking before the buttons: when linked by email, only to someone
        who opted out here; otherwise to anyone not linked, or whose link broke."""
        if self._link_modes.get(connector, "credentials") == "email":
            return kind == "user" and connector in await lookups.opted_out(self.store.db, slack_user_id=value)
        return identity is None or identity.broken

    async def _unreachable(self, stored: StoredItem) -> list[Person]:
        """The item's approvers whom no linked identity or stored Slack answer reaches."""
        item = stored.item
        if not item.recipients:
            return []
        linked = {
            i.vendor_user_id for i in await self.store.identities(connector=item.connector) if not i.broken
        }
        answers = await lookups.lookups(
            self.store.db, emails={e for p in item.recipients for e in p.all_emails}
        )
        return [
            p
            for p in item.recipients
            if p.id not in linked
            and all(e in answers and answers[e].slack_user_id is None for e in p.all_emails)
        ]

    async def _destination(self, target: str, connector: str) -> tuple[str | None, str | None]:
        kind, _, value = target.partition(":")
        if kind == "channel":
            return value, None
        if kind == "user":
            return value, value
        if kind == "email":
            # An address the sync could not ask Slack about yet; asked here, in the background.
            if self.reach is not None:
                # Slack's pace (Deferred: due again next pass) or refusal (retried as its kind says).
                user = (await self.reach.resolve([value], patience=self.PATIENCE, strict=True)).get(value)
            else:
                user = await self.gateway.user_by_email(value)
            if user:
                return user, user
            view = self.connectors.get(connector)
            return (view.channel if view else None), None
        return None, None

    # ---- flow notices ---------------------------------------------------------------------------

    async def _flow(self, job: FlowJob, row: OutboxRow) -> None:
        stored = await self.store.item_by_id(item_id=job.item)
        if stored is None:
            return
        view = self.connectors.get(stored.item.connector)
        decided_by = stored.row.decided_by if stored.item.status.final else None
        message = flow_message(
            stored.item,
            vendor_label=view.vendor_label if view else stored.item.connector,
            connector_name=stored.item.connector,
            decided_by=decided_by,
        )
        rendered = fingerprint(message)
        existing = await subscriptions.flow_message(self.store.db, item_id=job.item, channel=job.channel)
        if existing is None:
            channel, ts = await self.gateway.post_message(
                channel=job.channel,
                text=message.text,
                blocks=message.blocks,
                patience=self.PATIENCE,
                give_way=self._urgent,
            )
            await subscriptions.record_flow_message(
                self.store.db, item_id=job.item, channel=channel, ts=ts, rendered=rendered
            )
        elif existing.rendered != rendered:
            await self.gateway.update_message(
                channel=existing.channel,
                ts=existing.ts,
                text=message.text,
                blocks=message.blocks,
                patience=self.PATIENCE,
                give_way=self._urgent,
            )
            assert existing.id is not None
            await subscriptions.flow_rendered(self.store.db, message_id=existing.id, rendered=rendered)

    async def _replies(self, job: ThreadReplyJob, row: OutboxRow) -> None:
        """A thread reply for each decision made through the bot since the last one replied."""
        message = await subscriptions.flow_message(self.store.db, item_id=job.item, channel=job.channel)
        if message is None:
            raise Later(2.0, f"no flow message of item {job.item} in {job.channel} yet")
        assert message.id is not None
        found = await audit.decisions(
            self.store.db, item_id=job.item, after_id=message.last_decision_id, ok_only=True
        )
        for decision in found:
            reply = decision_reply(
                slack_user=decision.slack_user_id,
                action=decision.action,
                comment=decision.comment,
                at=decision.at,
            )
            await self.gateway.post_message(
                channel=message.channel,
                thread_ts=message.ts,
                text=reply.text,
                blocks=reply.blocks,
                patience=self.PATIENCE,
                give_way=self._urgent,
            )
            assert decision.id is not None
            await subscriptions.flow_replied(self.store.db, message_id=message.id, decision_id=decision.id)

    async def _channel_gone(self, job: FlowJob | ThreadReplyJob, error: str) -> None:
        """Tell whoever subscribed that channel, once, instead of failing silently; drop the subscription."""
        stored = await self.store.item_by_id(item_id=job.item)
        connector = stored.item.connector if stored is not None else ""
        created_by = await subscriptions.drop(self.store.db, connector=connector, channel=job.channel)
        if created_by is None:
            log.warning("cannot post flow notifications to %s (%s): invite the bot there", job.channel, error)
            return
        await self.gateway.tell(
            user=created_by,
            message=blocks.notice(
                f"I can no longer post `{blocks.escape(connector)}` notifications to <#{job.channel}> ({error}). "
                f"Invite me there (`/invite @approvals-bot`) and run `/approvals subscribe {connector} <#{job.channel}>` "
                "again. Until then that channel gets nothing."
            ),
        )

    # ---- reminders, escalations, digests, Homes -------------------------------------------------

    async def _reminder(self, job: ReminderJob, row: OutboxRow) -> None:
        # In the card's thread, so the context is one tap away; broadcast so it surfaces in the DM.
        await self.gateway.post_message(
            channel=job.channel,
            thread_ts=job.ts,
            text=reminder_text(
                slack_user=job.slack_user, title=job.title, number=job.number, total=job.total
            ),
            reply_broadcast=bool(job.slack_user),
            patience=self.PATIENCE,
            give_way=self._urgent,
        )

    async def _escalation(self, job: EscalationJob, row: OutboxRow) -> None:
        await self.gateway.post_message(
            channel=job.channel,
            text=escalation_text(slack_user=job.slack_user, title=job.title, reminders=job.reminders),
            patience=self.PATIENCE,
            give_way=self._urgent,
        )

    async def _digest(self, job: DigestJob, row: OutboxRow) -> None:
        states = await self._pending_for(job.slack_user)
        if not states:
            return
        count = len(states)
        message = await asyncio.to_thread(
            blocks.list_message,
            states,
            title=f"Good morning: {count} approval{'s' if count != 1 else ''} waiting on you, oldest first",
            empty="",
        )
        await self.gateway.post_message(
            channel=job.slack_user,
            text=message.text,
            blocks=message.blocks,
            patience=self.PATIENCE,
            give_way=self._urgent,
        )

    async def _tell(self, job: TellJob, row: OutboxRow) -> None:
        notice = blocks.notice(job.text)
        await self.gateway.post_message(
            channel=job.slack_user,
            text=notice.text,
            blocks=notice.blocks,
            patience=self.PATIENCE,
            give_way=self._urgent,
        )

    async def _home(self, job: HomeJob, row: OutboxRow) -> None:
        view = await self._home_view(job.slack_user)
        await self.gateway.publish_home(
            user=job.slack_user, view=view, patience=self.PATIENCE, give_way=self._urgent
        )
