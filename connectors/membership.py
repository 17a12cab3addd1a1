"""Who is in a vendor's approver group, remembered for a while (Harness user groups, Jira groups).

Why a cache: every waiting step names its groups again on every poll, and membership changes
rarely. A group is read once (every page of it) and then again only when its entry is older than
`ttl`, so a poll in which nothing is due for refresh makes no membership call at all.

What is remembered is the outcome, readable or not: a group the service account may not read
(403) is not asked again on every poll either. A transient failure keeps the last known members
when there are any (a stale list beats a card that suddenly reaches nobody) and is raised
otherwise, so the poll fails the way any unreadable vendor answer fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from connectors.base import Person
from connectors.errors import TransientError

K = TypeVar("K", bound=Hashable)
Clock = Callable[[], float]

DEFAULT_TTL = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Members:
    """A group's people, or why there are none to name (`unreadable` says what is missing)."""

    people: tuple[Person, ...] = ()
    unreadable: str | None = None
    # People the vendor lists without an email (a Jira profile that hides it).
    hidden_emails: int = 0


@dataclass
class _Entry:
    members: Members
    read_at: float


class MembershipCache(Generic[K]):
    """Members per group key, refreshed when older than `ttl` (clock injectable for tests)."""

    def __init__(self, ttl: timedelta = DEFAULT_TTL, *, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl.total_seconds()
        self._clock = clock
        self._entries: dict[K, _Entry] = {}

    def known(self, key: K) -> Members | None:
        entry = self._entries.get(key)
        return entry.members if entry else None

    def due(self, keys: Iterable[K]) -> list[K]:
        """The keys never read, or read longer than `ttl` ago (each once, in first-seen order)."""
        now = self._clock()
        out: list[K] = []
        for key in keys:
            entry = self._entries.get(key)
            if key not in out and (entry is None or now - entry.read_at >= self.ttl):
                out.append(key)
        return out

    async def refresh(self, key: K, load: Callable[[], Awaitable[Members]]) -> Members:
        try:
            members = await load()
        except TransientError:
            stale = self._entries.get(key)
            if stale is None:
                raise
            return stale.members
        self._entries[key] = _Entry(members, self._clock())
        return members
