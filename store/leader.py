"""One leader among replicas for the background work (polling, outbox delivery, reminders).

Why: Slack requests may hit any replica and are safe there (claims are atomic in the store), but
two replicas delivering the same outbox row would post a card twice. Leadership is a lease in the
`leases` table (store/leases.py), taken and renewed by one elector per process:

- on a connection of its own, outside the pool (no other task can leave it broken or inside a
  transaction), each statement committed at once;
- renewed every `lease / 3` seconds; a renewal that does not come back in time, or a process that
  wakes from a freeze past its lease (checked on the monotonic clock before any leader work), stops
  leading at once, without asking the database;
- every takeover raises the fencing number, and leader-only transactions check it inside
  themselves (`Elector.fenced`), so a leader that lost its lease cannot write;
- a replica stopping cleanly gives the lease up, so the next one leads at once; one that dies is
  replaced when its lease expires (at most one lease period plus one renewal interval).

Everything in the process asks `elector.is_leader` (a local read); only the elector talks to the
database about leadership. SQLite (one process) goes through the same table.

Every replica's elector, leading or not, also renews the process's heartbeat (store/heartbeats.py)
with each round trip: clicks claimed by a process whose heartbeat lapsed are reconciled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store import heartbeats, leases
from store.db import make_engine
from store.leases import Fence, Lease, LostLeadership

log = logging.getLogger(__name__)

LEASE_NAME = "background"
DEFAULT_LEASE = 15.0

__all__ = ["DEFAULT_LEASE", "Elector", "LeaseStatus", "LostLeadership"]


@dataclass(frozen=True)
class LeaseStatus:
    """What /healthz and /metrics tell about leadership, as of the elector's last look."""

    leading: bool
    holder: str | None  # the replica that holds a live lease, None when nobody does
    fence: int | None
    age: float | None  # seconds since the holder last renewed
    held_for: float | None  # seconds since the holder took it


def default_holder() -> str:
    """Unique per process start: a restarted replica must not mistake an old lease for its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Elector:
    def __init__(
        self,
        url: str,
        *,
        name: str = LEASE_NAME,
        holder: str | None = None,
        lease: float = DEFAULT_LEASE,
        renew_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.name = name
        self.holder = holder or default_holder()
        self.lease = lease
        self.renew_every = renew_every if renew_every is not None else lease / 3
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._fence: int | None = None
        self._valid_until = 0.0  # monotonic instant after which our lease may have ended
        self._alive_until = 0.0  # monotonic instant after which our heartbeat may have lapsed
        self._host = socket.gethostname()
        self._seen: Lease | None = None
        self._seen_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False
        self._tried = asyncio.Event()  # set once the first attempt has an answer

    # -- what the rest of the process reads -------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True only while our lease is certainly live: a frozen process reads False on waking."""
        if self._fence is None:
            return False
        if self._clock() >= self._valid_until:
            self._step_down("its lease ran out before it could renew (was the process frozen?)")
            return False
        return True

    async def check(self) -> bool:
        """Kept for callers of the former lock: the local answer, no database round trip."""
        return self.is_leader

    @property
    def instance(self) -> str | None:
        """This process's instance id while its heartbeat is certainly live, else None.

        A click records it with its claim (and checks it again before calling the vendor): only
        then may another replica, seeing the heartbeat lapse, settle that click without waiting."""
        return self.holder if self._clock() < self._alive_until else None

    @property
    def fence(self) -> Fence | None:
        if not self.is_leader or self._fence is None:
            return None
        return Fence(self.name, self.holder, self._fence)

    @contextlib.contextmanager
    def fenced(self) -> Iterator[Fence]:
        """Leader-only work: every store transaction begun inside checks our lease (store/db.py).

        Raises LostLeadership at once when we do not lead.
        """
        fence = self.fence
        if fence is None:
            raise LostLeadership("this replica does not lead")
        with leases.fenced(fence):
            yield fence

    def status(self) -> LeaseStatus:
        leading = self.is_leader
        seen = self._seen
        if seen is None:
            return LeaseStatus(leading, None, None, None, None)
        since = self._clock() - self._seen_at
        now = seen.now + since
        if seen.expires_at <= now and not leading:
            return LeaseStatus(leading, None, seen.fence, now - seen.renewed_at, None)
        return LeaseStatus(leading, seen.holder, seen.fence, now - seen.renewed_at, now - seen.acquired_at)

    # -- the loop ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Try once now (a lone replica leads before it serves), then keep renewing in the background."""
        try:
            await self.step()
        finally:
            self._tried.set()
        self._task = asyncio.create_task(self._run(), name="leader-elector")

    async def started(self) -> None:
        """Returns once the first attempt is answered (jobs scheduled at start wait for it)."""
        await self._tried.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        fence = self._fence
        self._fence = None
        self._seen = None  # gone: this process no longer knows who leads
        if fence is not None:
            try:
                connection = await self._connect()
                await asyncio.wait_for(
                    leases.give_up(connection, name=self.name, holder=self.holder, fence=fence),
                    self.lease / 3,
                )
                log.info("gave up the leader lease; another replica may take over at once")
            except Exception as exc:  # it expires by itself
                log.info("could not give the lease up (%s); it expires by itself", type(exc).__name__)
        await self._drop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            await self.step()

    async def step(self) -> bool:
        """One take-or-renew round trip; True when we lead after it."""
        sent = self._clock()
        try:
            lease = await self._round_trip(sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database or the connection: we cannot know we still lead
            await self._unanswered(exc)
            return False
        if self._unreachable:
            log.info("leader election: the database answers again")
            self._unreachable = False
        self._seen, self._seen_at = lease, self._clock()
        return self._lead_if_ours(lease, sent)

    async def _round_trip(self, sent: float) -> Lease | None:
        """Take or renew the lease (else read who holds it) and renew this process's heartbeat.
        Each statement is bounded: a round trip slower than the time left on the lease is as good
        as a failed one."""
        connection = await self._connect()
        lease = await asyncio.wait_for(
            leases.take_or_renew(connection, name=self.name, holder=self.holder, ttl=self.lease),
            max(0.5, self.lease / 3),
        )
        if lease is None:
            lease = await asyncio.wait_for(leases.read(connection, name=self.name), self.lease / 3)
        await asyncio.wait_for(
            heartbeats.beat(
                connection,
                instance=self.holder,
                host=self._host,
                ttl=self.lease,
                first=self._alive_until == 0.0,
            ),
            self.lease / 3,
        )
        # As for the lease: counted from before the round trip, so it ends before the row does.
        self._alive_until = sent + self.lease * 0.9
        return lease

    async def _unanswered(self, exc: Exception) -> None:
        """The round trip failed: a leader stops leading at once; a follower says so once, not
        every few seconds while it lasts. The connection is dropped, to be opened afresh."""
        if self._fence is not None:
            self._step_down(f"could not renew its lease ({type(exc).__name__})")
        elif not self._unreachable:
            log.warning("leader election: the database does not answer (%s)", type(exc).__name__)
        self._unreachable = True
        await self._drop()

    def _lead_if_ours(self, lease: Lease | None, sent: float) -> bool:
        """Lead when the live lease is ours (noting a new fence), else step down if we led."""
        if lease is not None and lease.holder == self.holder and lease.live:
            if self._fence != lease.fence:
                log.info("this replica now leads the background work (fence %d)", lease.fence)
            self._fence = lease.fence
            # Counted from before the statement was sent: the database's expiry is later than this.
            self._valid_until = sent + self.lease * 0.9
            return True
        if self._fence is not None:
            self._step_down(f"{lease.holder if lease else 'another replica'} holds the lease now")
        return False

    def _step_down(self, why: str) -> None:
        if self._fence is not None:
            log.warning("this replica stops leading: %s", why)
        self._fence = None

    async def _connect(self) -> AsyncConnection:
        if self._connection is None:
            if self._engine is None:
                # A statement that waits longer than a renewal interval has failed for our purpose.
                wait = f"{max(500, int(self.lease * 1000 / 3))}ms"
                settings = {"lock_timeout": wait, "statement_timeout": wait}
                self._engine = make_engine(self.url, dedicated=True, settings=settings)
            self._connection = await self._engine.connect()
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken
                await self._connection.close()
            self._connection = None
