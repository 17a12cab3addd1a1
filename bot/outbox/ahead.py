"""Performance device: render-ahead, the next card built while the current one waits on Slack.

Justified by the fan-out benchmark, README Performance table, "fan-out 2,000 cards" (at least 95 %
of the rate Slack allows): rendering a card takes about as long as Slack takes to answer, and done
one after the other the two would cap a busy channel well below its rate. The delivery pass
(bot/outbox/deliver.py) starts a render ahead for the next row of a lane and takes it when that
row's turn comes; whatever a lane or the pass did not reach is dropped when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class RenderAhead(Generic[_T]):
    """Renders started early, by the key of the row they are for."""

    def __init__(self) -> None:
        self._work: dict[Hashable, asyncio.Future[_T]] = {}

    def start(self, key: Hashable, render: Awaitable[_T]) -> None:
        self._work[key] = asyncio.ensure_future(render)

    async def take(self, key: Hashable, otherwise: Callable[[], Awaitable[_T]]) -> _T:
        """The render started for `key`, else one made now."""
        ahead = self._work.pop(key, None)
        return await ahead if ahead is not None else await otherwise()

    def discard(self, key: Hashable) -> None:
        """Cancel the render for `key`: its lane stopped before it, and a later turn renders afresh."""
        task = self._work.pop(key, None)
        if task is not None:
            task.cancel()
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the row's own delivery will meet it again

    def drop(self) -> None:
        """Cancel the renders no row took (the pass ended before reaching them)."""
        for key in list(self._work):
            self.discard(key)
