"""Acknowledgements before background work.

Slack gives an app 3 seconds to acknowledge a click, and the person sees nothing happen until it
does. The work a click starts (the vendor call, redrawing cards, the App Home) runs in the same
event loop, so under a burst of clicks it would slow every acknowledgement still to come. Work
therefore waits, a bounded while, until no Slack request is being answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class AckFirst:
    def __init__(self, patience: float = 2.0) -> None:
        # Work waits at most this long: under sustained load it goes ahead anyway.
        self.patience = patience
        self._answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one Slack request, until its response is ready."""
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            if not self._answering:
                self._quiet.set()

    async def wait(self) -> None:
        """Return once no Slack request is being answered (or after `patience` seconds)."""
        if self._quiet.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.patience)


async def no_wait() -> None:
    """The stand-in for AckFirst.wait where nothing is being answered (tests, the CLI)."""
    return None
