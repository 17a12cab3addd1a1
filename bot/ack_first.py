"""Performance device: acknowledgements before background work.

Justified by the click benchmark, README Performance table, "click ack p99, 1 / 50 / 200
concurrent": with it the bot answers below the bare-Bolt floor; without it Bolt's 10 ms poll and
the work of earlier clicks were most of each acknowledgement.

Slack gives an app 3 seconds to acknowledge a click, and the person sees nothing happen until it
does. The work a click starts (the vendor call, redrawing cards, the App Home) runs in the same
event loop, so under a burst of clicks it would slow every acknowledgement still to come. Work
therefore waits, a bounded while, until no Slack request is being answered.

Button clicks (`block_actions`) are answered before Bolt sees them: Slack ignores the body of
that answer, and Bolt's own acknowledgement waits for its listener on a 10 ms poll, which would be
most of the time a person waits. The click then goes through Bolt as work started here (`later`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

log = logging.getLogger(__name__)


class _UnderWay:
    """How many of something are under way, and an event set whenever none is."""

    def __init__(self) -> None:
        self.count = 0
        self.none = asyncio.Event()
        self.none.set()

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        self.count += 1
        self.none.clear()
        try:
            yield
        finally:
            self.count -= 1
            if not self.count:
                self.none.set()


class AckFirst:
    def __init__(self, patience: float = 2.0, settle: float = 0.003) -> None:
        # Work waits at most this long: under sustained load it goes ahead anyway.
        self.patience = patience
        # A burst of clicks arrives over a few milliseconds, between which nothing is being answered;
        # work waits until none has come for this long, so it does not start in the gaps.
        self.settle = settle
        self._last = 0.0
        self._answers = _UnderWay()
        self._work = _UnderWay()
        self._later: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one Slack request, until its response is ready."""
        try:
            with self._answers.one():
                yield
        finally:
            self._last = asyncio.get_running_loop().time()

    async def wait(self) -> None:
        """Return once no Slack request is being answered or has been for `settle` seconds (or after
        `patience` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        while (now := loop.time()) < deadline:
            if self._answers.count:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._answers.none.wait(), deadline - now)
            elif (calm := now - self._last) < self.settle:
                await asyncio.sleep(self.settle - calm)
            else:
                return

    def working(self) -> contextlib.AbstractContextManager[None]:
        """Around the work a click starts, which Bolt runs in a task of its own after the
        acknowledgement, so `drain` can wait for it."""
        return self._work.one()

    def later(self, work: Coroutine[Any, Any, object], what: str) -> None:
        """Run `work` once the answers in flight are out; `drain` waits for it at shutdown."""

        async def run() -> None:
            await self.wait()
            try:
                await work
            except Exception:  # the person already has their answer; the error is the log's
                log.exception("%s failed after it was acknowledged", what)

        task = asyncio.create_task(run(), name=what)
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def drain(self, timeout: float) -> None:
        """Let acknowledged work finish before the process stops, so no click is dropped half-done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._later:
            await asyncio.wait(set(self._later), timeout=timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.none.wait(), max(0.0, deadline - loop.time()))


async def no_wait() -> None:
    """The stand-in for AckFirst.wait where nothing is being answered (tests, the CLI)."""
    return None
