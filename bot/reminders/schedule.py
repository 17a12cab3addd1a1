"""Wakes the reminder pass at the earliest due instant, not on a fixed tick.

Why one timer re-armed on change: a reminder configured at a few seconds arrives on time, and a
digest at the start of its reader's day; an idle bot does one cheap query (the earliest `next_at`,
and the digest readers' next morning) instead of scanning every pending item each minute. `rearm()` is called when something may have brought a reminder forward (cards posted, a
sync, a click released); the timer also looks again at least every MAX_SLEEP, for safety.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

log = logging.getLogger(__name__)


class ReminderSchedule:
    MAX_SLEEP = 60.0
    # Two passes never follow closer than this (a row a pass could not move must not spin the loop).
    MIN_GAP = 0.2

    def __init__(
        self,
        *,
        earliest: Callable[[], Awaitable[datetime | None]],
        run: Callable[[datetime], Awaitable[int]],
        clock: Callable[[], datetime],
        may_run: Callable[[], Awaitable[bool]],
        queued: Callable[[], None],
    ) -> None:
        self._earliest = earliest
        self._run = run
        self._clock = clock
        self._may_run = may_run
        self._queued = queued
        self._rearm = asyncio.Event()

    def rearm(self) -> None:
        self._rearm.set()

    async def next_wait(self) -> float:
        """Seconds until the earliest reminder is due (0: due now)."""
        at = await self._earliest()
        if at is None:
            return self.MAX_SLEEP
        return max(0.0, min(self.MAX_SLEEP, (at - self._clock()).total_seconds()))

    async def run_forever(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._rearm.clear()  # before the query: a change from now on wakes the wait below
            wait = self.MAX_SLEEP
            try:
                wait = await self.next_wait()
                if wait <= 0:
                    wait = 5.0  # not the leader: look again in a while
                    if await self._may_run():
                        if await self._run(self._clock()):
                            self._queued()
                        wait = self.MIN_GAP
            except Exception:  # one failed pass must not end reminders for good
                log.exception("reminder pass failed")
                wait = 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rearm.wait(), wait)
