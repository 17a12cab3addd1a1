"""Wires the process together: store, connectors, Slack gateway, outbox, services, Bolt app,
reminder schedule, sync scheduler.

Why one object: `run`, `poll --once`, `demo` and the tests build the same thing, so what runs in
production is what the tests exercise. Every part is built here, explicitly, and given what it
needs: the two roads to Slack read top to bottom in `start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp

from bot.ack_first import AckFirst
from bot.app import build_app
from bot.authz import Admins
from bot.config import Config
from bot.coordinator import Coordinator, SyncResult
from bot.heap import settle_heap as settle_heap  # where bench/env.py still looks for it
from bot.listeners.deps import Deps
from bot.listeners.home import home_view
from bot.outbox.deliver import Deliverer
from bot.outbox.queue import Outbox
from bot.outbox.render import ConnectorView
from bot.reach import Reach
from bot.reminders.passes import ReminderPasses
from bot.reminders.schedule import ReminderSchedule
from bot.services import Services
from bot.slack.gateway import SlackGateway, Tiers
from connectors.base import Connector
from connectors.registry import specs
from store.crypto import CredentialBox
from store.db import Database
from store.leader import DEFAULT_LEASE, Elector, LeaseStatus, LostLeadership
from store.repo import Store, now_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackSettings:
    token: str
    api_url: str
    signing_secret: str | None
    socket_mode: bool = False


def build_connectors(config: Config) -> dict[str, Connector]:
    available = specs()
    return {c.name: available[c.type].build(c.name, c.settings) for c in config.connectors}


class Runtime:
    def __init__(
        self,
        *,
        config: Config,
        database_url: str,
        secret_key: str,
        slack: SlackSettings,
        connectors: Mapping[str, Connector] | None = None,
        deliver_interval: float = 1.0,
        clock: Callable[[], datetime] = now_utc,
        slack_rate: tuple[float, float] = (1.0, 3.0),
        slack_tiers: Tiers | None = None,
        home_settle: float = 2.0,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        # Slack's limits as the gateway paces them: the tiers, with chat.postMessage's per-channel
        # pace and burst from `slack_rate` (tests and benchmarks scale both).
        self.slack_tiers = replace(
            slack_tiers or Tiers(), post_per_channel=slack_rate[0], post_burst=slack_rate[1]
        )
        self.ack_first = AckFirst()
        self.home_settle = home_settle
        self.config = config
        self.slack = slack
        self.db = Database(database_url)
        self.store = Store(self.db, CredentialBox(secret_key))
        # The one place that knows whether this replica leads (store/leader.py); started with the
        # background work, which is all it governs.
        self.leader = Elector(database_url, lease=lease)
        self._electing = False
        self._elector_start: asyncio.Task[None] | None = None
        self.connectors: dict[str, Connector] = dict(connectors or build_connectors(config))
        self.deliver_interval = deliver_interval
        self.gateway: SlackGateway
        self.delivery: Deliverer
        self.outbox: Outbox
        self.services: Services
        self.reach: Reach
        self.reminders: ReminderPasses
        self.schedule: ReminderSchedule
        self.app: AsyncApp | None = None
        self.coordinators: dict[str, Coordinator] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.clock = clock

    def leadership(self) -> LeaseStatus | None:
        """Who leads, as this replica's elector last saw; None when this process runs no background work."""
        return self.leader.status() if self._electing else None

    async def start(self, *, background: bool = True, poll: bool = True) -> None:
        """Migrate, wire, and (with `background`) start delivery and, with `poll`, the schedule."""
        await self.db.migrate()
        # The one holder of the Slack client.
        self.gateway = SlackGateway(
            token=self.slack.token, api_url=self.slack.api_url, tiers=self.slack_tiers
        )
        views = {
            c.name: ConnectorView(c.name, self.connectors[c.name].vendor_label, c.channel, c.reminders)
            for c in self.config.connectors
            if c.name in self.connectors
        }
        # Approvers found in Slack by email, answers kept in the database (bot/reach.py).
        self.reach = Reach(db=self.db, gateway=self.gateway, clock=self.clock)
        # Delivery: due jobs by priority → pure builders → gateway.
        self.delivery = Deliverer(
            gateway=self.gateway,
            store=self.store,
            connectors=views,
            home_view=lambda user: home_view(self.services, user),
            pending_for=lambda user: self.services.pending_for(slack_user=user),
            clock=self.clock,
            reach=self.reach,
            link_modes={n: c.capabilities.link_mode for n, c in self.connectors.items()},
        )
        # Queueing: what the sync and the decision path use to turn effects into outbox rows.
        self.outbox = Outbox(
            store=self.store,
            config=self.config,
            kick=self.delivery.kick,
            home_settle=self.home_settle,
            per_user_listing={n: c.capabilities.per_user_listing for n, c in self.connectors.items()},
            email_linked={n: c.capabilities.link_mode == "email" for n, c in self.connectors.items()},
        )
        self.services = Services(
            store=self.store,
            connectors=self.connectors,
            configs={c.name: c for c in self.config.connectors},
            gateway=self.gateway,
            outbox=self.outbox,
            card_state=self.delivery.card_state,
            reach=self.reach,
        )
        self.services.yield_to = self.delivery.yield_to = self.ack_first.wait
        self.services.admins = Admins(self.config.admins, self.gateway)
        self.services.instance = lambda: self.leader.instance
        self.deps = Deps(services=self.services, gateway=self.gateway, ack_first=self.ack_first)
        self.app = build_app(
            self.deps,
            client=self.gateway.bolt_client,
            signing_secret=self.slack.signing_secret,
            socket_mode=self.slack.socket_mode,
        )
        self.coordinators = {
            c.name: Coordinator(
                connector=self.connectors[c.name], store=self.store, outbox=self.outbox, reach=self.reach
            )
            for c in self.config.connectors
            if c.name in self.connectors
        }
        self.reminders = ReminderPasses(store=self.store, gateway=self.gateway, config=self.config)
        self.schedule = ReminderSchedule(
            earliest=lambda: self.reminders.next_due(self.clock()),
            run=self._fenced_pass,
            clock=self.clock,
            may_run=self._may_lead,
            queued=self.delivery.kick,
        )
        if background:
            await self.leader.start()
            self._electing = True
            self._start_background(poll=poll)

    def _start_background(self, *, poll: bool = True) -> None:
        if not self._electing:  # started without `background` (the demo wires itself first)
            self._electing = True
            self._elector_start = asyncio.create_task(self.leader.start(), name="leader-first-attempt")
        self._tasks = [
            asyncio.create_task(self._deliver_forever(), name="outbox-delivery"),
            asyncio.create_task(self.schedule.run_forever(self._stopping), name="reminders"),
        ]
        if not poll:
            return
        scheduler = AsyncIOScheduler(timezone="UTC")
        for config in self.config.connectors:
            coordinator = self.coordinators.get(config.name)
            if coordinator is None:
                continue
            seconds = max(1, int(config.poll_interval.total_seconds()))
            scheduler.add_job(
                self._sync_job,
                "interval",
                args=[config.name],
                seconds=seconds,
                id=f"sync:{config.name}",
                # One run at a time per connector; a run missed while the process was busy is
                # made up once (coalesce) if it is less than one interval late.
                max_instances=1,
                coalesce=True,
                misfire_grace_time=seconds,
                next_run_time=now_utc(),
            )
        scheduler.add_job(
            self._housekeeping,
            "interval",
            minutes=10,
            id="housekeeping",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=600,
        )
        scheduler.start()
        self.scheduler = scheduler

    async def _sync_job(self, name: str) -> None:
        if await self._leader_only(self.coordinators[name].run_once):
            self.delivery.kick()
            self.schedule.rearm()

    async def _may_lead(self) -> bool:
        await self.leader.started()
        return self.leader.is_leader

    async def _fenced_pass(self, now: datetime) -> int:
        """A reminder pass with every store transaction in it fenced (a deposed leader writes nothing)."""
        try:
            with self.leader.fenced():
                return await self.reminders.run(now)
        except LostLeadership as exc:
            log.info("reminder pass stopped: %s", exc)
            return 0

    async def _leader_only(self, func: Callable[[], Awaitable[object]]) -> object:
        """Runs `func` only while leading, with every store transaction in it fenced; its result, or
        None when this replica does not lead (or stopped leading on the way)."""
        if not await self._may_lead():
            return None
        try:
            with self.leader.fenced():
                return await func()
        except LostLeadership as exc:
            log.info("background job stopped: %s", exc)
            return None

    async def _housekeeping(self) -> None:
        await self.store.forget_events(older_than=timedelta(hours=2))

    async def _deliver_forever(self, batch: int = 200) -> None:
        while not self._stopping.is_set():
            done = 0
            try:
                await self.ack_first.wait()
                if await self._may_lead():
                    with self.leader.fenced():
                        done = await self.delivery.deliver(limit=batch)
            except LostLeadership as exc:
                log.info("outbox delivery stopped: %s", exc)
            except Exception:  # one bad delivery pass must not end delivery for good
                log.exception("outbox delivery pass failed")
            if done:  # cards posted bring their first reminders: the schedule looks again
                self.schedule.rearm()
            if done < batch:  # a full batch done: more is likely due, so no pause before the next
                await self.delivery.wait_for_kick(self.deliver_interval)

    async def poll_once(self, connector: str | None = None) -> dict[str, SyncResult]:
        """One sync cycle of every (or one) connector, then deliver what it produced."""
        names = [connector] if connector else list(self.coordinators)
        results = {name: await self.coordinators[name].run_once() for name in names}
        await self.deliver_all()
        return results

    async def deliver_all(self, timeout: float = 600.0) -> None:
        """Deliver until nothing is due (cards wait for their channel's pace, so this may take a while)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self.delivery.deliver(limit=10_000):
                self.schedule.rearm()  # cards posted bring their first reminders
            due = await self.store.due_outbox(limit=1)
            if not due or loop.time() > deadline:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        # Clicks already acknowledged reach their vendor before the process goes.
        await self.ack_first.drain(15)
        self._stopping.set()
        if self.scheduler is not None:
            self.scheduler.pause()  # no new runs; shutting down now would cancel a sync mid-write
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.idle() for c in self.coordinators.values())), 15)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        # Let the delivery pass (and reminder pass) under way finish (cancelling one mid-query would
        # leave a database call completing after the loop is gone), then stop.
        if self._tasks:
            self.delivery.close()  # a pass under way ends at each lane's next row
            self.schedule.rearm()
        for task in self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._elector_start is not None:
            await asyncio.wait([self._elector_start], timeout=10)  # never stop halfway into starting
        if self._electing:
            await self.leader.stop()
        for connector in self.connectors.values():
            await connector.aclose()
        if hasattr(self, "gateway"):
            await self.gateway.aclose()
        await self.db.dispose()
