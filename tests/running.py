"""Started for a block, stopped after it: what every sandbox, kit and bot fixture does around its yield.

One place for the try/finally, so a fixture that fails halfway still stops what it started and no
sandbox is left listening on 127.0.0.1 for the next test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Stoppable(Protocol):
    # A method or a callable field (SandboxSetup.stop): only the awaiting matters.
    @property
    def stop(self) -> Callable[[], Awaitable[None]]: ...


S = TypeVar("S", bound=Service)
T = TypeVar("T", bound=Stoppable)


@asynccontextmanager
async def started(service: S) -> AsyncIterator[S]:
    """`service` started for the block and stopped after it, whatever the block raised."""
    await service.start()
    async with stopping(service):
        yield service


@asynccontextmanager
async def stopping(started: T) -> AsyncIterator[T]:
    """Something that came already started (a demo setup, a bot): stopped after the block."""
    try:
        yield started
    finally:
        await started.stop()
