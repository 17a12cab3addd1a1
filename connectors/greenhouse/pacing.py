"""Keeping under Harvest's rate limit instead of running into it.

Harvest v3 allows `X-RateLimit-Limit` requests per fixed 30-second window and counts down in
`X-RateLimit-Remaining` on every answer, errors included. Going over answers 429 with `Retry-After`
(seconds): the pacer then holds everything back that long (a whole window when the header is
missing).

The pacer reserves a start time for each request before it is sent (synchronously, so concurrent
requests do not all see the same budget), spreads requests out once the budget runs low, and holds
everything back for a window when it is spent. Polling one `pending_approvals` call per mapped
due approver's groups, flows and people would otherwise burn a 75-per-30-seconds budget in one
burst on a large organisation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Harvest v3's rate-limiting guide: a fixed window of 30 seconds.
HARVEST_WINDOW_SECONDS = 30.0


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class RatePacer:
    """Decides when the next Harvest request may start, from the answers seen so far."""

    def __init__(
        self,
        window: float = HARVEST_WINDOW_SECONDS,
        *,
        low_water: float = 0.2,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.window = window
        self._low_water = low_water
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._limit: int | None = None
        self._remaining: int | None = None  # our estimate: the last answer minus what we sent since
        self._spent_at = 0.0  # when the budget was last seen (or estimated) spent
        self._hold = window  # how long a spent budget holds requests back (Retry-After when given)
        self._next_start = 0.0
        self.waited = 0.0  # total seconds held back (for logs and tests)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer."""
        now = self._clock()
        if status == 429:
            retry_after = _int(headers.get("Retry-After"))
            self._remaining = 0
            self._spent_at = now
            self._hold = float(retry_after) if retry_after is not None and retry_after >= 0 else self.window
            return
        limit = _int(headers.get("X-RateLimit-Limit"))
        remaining = _int(headers.get("X-RateLimit-Remaining"))
        if limit is None or remaining is None:
            return
        self._limit = limit
        self._remaining = remaining
        if remaining <= 0:
            self._spent_at = now
            # X-RateLimit-Reset (epoch seconds) says when the window ends; a whole window without it.
            reset = _int(headers.get("X-RateLimit-Reset"))
            until = reset - self._wall() if reset is not None else None
            self._hold = min(self.window, max(0.0, until)) if until is not None else self.window

    async def wait(self) -> None:
        """Hold the caller until its request may start; reserves its slot before sleeping."""
        now = self._clock()
        start = max(now, self._next_start)
        if self._remaining is not None:
            if self._remaining <= 0:
                start = max(start, self._spent_at + self._hold)
                self._remaining = None  # a fresh window: unknown until the next answer says
            else:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._spent_at = start
                    self._hold = self.window
                if self._limit and self._remaining <= self._limit * self._low_water:
                    # Running low: spread what is left evenly over a window.
                    self._next_start = max(self._next_start, start + self.window / self._limit)
        self._next_start = max(self._next_start, start)
        if start > now:
            self.waited += start - now
            await self._sleep(start - now)
