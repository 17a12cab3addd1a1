"""Wires the process together: store, connectors, Slack client, services, Bolt app, scheduler.

Why one object: `run`, `poll --once`, `demo` and the tests build the same thing, so what runs in
production is what the tests exercise. Dependencies are passed in, not looked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.async_app import AsyncApp

from bot.ack_first import AckFirst
from bot.app import build_app
from bot.authz import Admins
from bot.config import Config
from bot.coordinator import Coordinator, SyncResult
from bot.listeners.deps import Deps
from bot.notifier import ConnectorView, Notifier, Pacer, make_client
from bot.services import Services
from connectors.base import Connector
from connectors.registry import specs
from store.crypto import CredentialBox
from store.db import Database
from store.leader import Leadership
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
        home_settle: float = 2.0,
    ) -> None:
        self.slack_rate = slack_rate
        self.ack_first = AckFirst()
        # Seconds a changed App Home waits before it is republished, so a burst of changes (a
        # sync, several clicks) gives one views.publish instead of one each.
        self.home_settle = home_settle
        self.config = config
        self.slack = slack
        self.db = Database(database_url)
        self.store = Store(self.db, CredentialBox(secret_key))
        self.leader = Leadership(self.db)
        self.connectors: dict[str, Connector] = dict(connectors or build_connectors(config))
        self.deliver_interval = deliver_interval
        self.session: aiohttp.ClientSession | None = None
        self.notifier: Notifier
        self.services: Services
        self.app: AsyncApp | None = None
        self.coordinators: dict[str, Coordinator] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.clock = clock
        # Periodic work added by features (reminders, digests): (id, seconds, coroutine function).
        self.jobs: list[tuple[str, int, Callable[[], Awaitable[None]]]] = []

    def add_job(self, job_id: str, seconds: int, func: Callable[[], Awaitable[None]]) -> None:
        self.jobs.append((job_id, seconds, func))

    async def start(self, *, background: bool = True, poll: bool = True) -> None:
        """Migrate, wire, and (with `background`) start delivery and, with `poll`, the schedule."""
        await self.db.migrate()
        # trust_env: HTTPS_PROXY/NO_PROXY apply to response_url posts too, as they do to slack_sdk and httpx.
        self.session = aiohttp.ClientSession(trust_env=True)
        client = make_client(token=self.slack.token, base_url=self.slack.api_url, session=self.session)
        views = {
            c.name: ConnectorView(c.name, self.connectors[c.name].vendor_label, c.channel)
            for c in self.config.connectors
            if c.name in self.connectors
        }
        self.notifier = Notifier(
            client=client,
            store=self.store,
            connectors=views,
            session=self.session,
            clock=self.clock,
            pacer=Pacer(*self.slack_rate),
        )
        self.services = Services(
            store=self.store,
            connectors=self.connectors,
            configs={c.name: c for c in self.config.connectors},
            notifier=self.notifier,
        )
        self.services.yield_to = self.notifier.yield_to = self.ack_first.wait
        self.services.admins = Admins(self.config.admins, client)
        self.deps = Deps(services=self.services, notifier=self.notifier, ack_first=self.ack_first)
        self.app = build_app(
            self.deps,
            client=client,
            signing_secret=self.slack.signing_secret,
            socket_mode=self.slack.socket_mode,
        )
        self.coordinators = {
            c.name: Coordinator(connector=self.connectors[c.name], store=self.store, channel=c.channel)
            for c in self.config.connectors
            if c.name in self.connectors
        }
        setup_features(self)
        if background:
            self._start_background(poll=poll)

    def _start_background(self, *, poll: bool = True) -> None:
        self._delivery = asyncio.create_task(self._deliver_forever(), name="outbox-delivery")
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
                next_run_time=_now(),
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
        for job_id, seconds, func in self.jobs:
            scheduler.add_job(
                self._leader_only(func),
                "interval",
                seconds=seconds,
                id=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=seconds,
            )
        scheduler.start()
        self.scheduler = scheduler

    async def _sync_job(self, name: str) -> None:
        if not await self.leader.check():
            return
        await self.coordinators[name].run_once()
        self.notifier.kick()

    def _leader_only(self, func: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if await self.leader.check():
                await func()

        return run

    async def _housekeeping(self) -> None:
        await self.store.forget_events(older_than=timedelta(hours=2))

    async def _deliver_forever(self, batch: int = 200) -> None:
        while not self._stopping.is_set():
            done = 0
            try:
                await self.ack_first.wait()
                if await self.leader.check():
                    done = await self.notifier.deliver(limit=batch)
            except Exception:  # one bad delivery pass must not end delivery for good
                log.exception("outbox delivery pass failed")
            if done < batch:  # a full batch done: more is likely due, so no pause before the next
                await self.notifier.wait_for_kick(self.deliver_interval)

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
            await self.notifier.deliver(limit=10_000)
            due = await self.store.due_outbox(limit=1)
            if not due or loop.time() > deadline:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        # Clicks already acknowledged reach their vendor before the process goes.
        await self.ack_first.drain(15)
        self._stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.idle() for c in self.coordinators.values())), 15)
        if self._delivery is not None:
            # Let the delivery pass under way finish (cancelling it mid-query would leave a database
            # call completing after the loop is gone), then stop.
            self.notifier.kick()
            try:
                await asyncio.wait_for(asyncio.shield(self._delivery), 10)
            except TimeoutError:
                self._delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._delivery
        await self.leader.release()
        for connector in self.connectors.values():
            await connector.aclose()
        if self.session is not None:
            await self.session.close()
        await self.db.dispose()


def settle_heap() -> None:
    """Once the server is up: take what startup built out of the garbage collector's sight.

    Imports, Bolt, SQLAlchemy's caches and the pools live as long as the process, yet every full
    collection walked them all: a pause of about 100 ms, measured in the click benchmark, which held
    up every acknowledgement in flight. Frozen, they are still freed by reference counting."""
    gc.collect()
    gc.freeze()
    # With the startup heap frozen, what is left to a full collection is mostly the work under way,
    # which a burst of clicks makes large (about 100 ms a collection, measured): ten times rarer.
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


def _now() -> datetime:
    return now_utc()


def setup_features(runtime: Runtime) -> None:
    """Every module of bot/features with `setup(runtime)` joins in (hooks, handlers, jobs)."""
    import bot.features

    for module in sorted(pkgutil.iter_modules(bot.features.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"bot.features.{module.name}")
        setup = getattr(loaded, "setup", None)
        if callable(setup):
            setup(runtime)
