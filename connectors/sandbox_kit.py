"""What every vendor sandbox needs besides the vendor's API: faults on demand, a request log, and
endpoints to drive both from outside the process.

Why one kit: the bot's promises under trouble (a click is never reported as taken when it was not,
a failing connector is logged once) are proved against the same faults for every vendor, and a
fault means the same thing in each sandbox:

    "500" / "503"  answered with that status; the request is NOT applied
    "429"          Too Many Requests with `Retry-After: <retry_after>`; not applied
    "timeout"      applied at once, answered only after `slow_seconds` (a client with a shorter
                   timeout gives up on a call that did take effect)
    "hang"         not applied, never answered (until `hang_seconds` or the sandbox stops)
    "drop"         the connection is closed without an answer; not applied
    "slow_body"    applied; the status and headers come at once, the body trickles over
                   `slow_seconds`
    "garbage"      applied; answered 200 with a body that is not JSON (a proxy's HTML page)

Faults come one at a time (`fail_next`: the next N matching requests) or at a rate (`fail_rate`:
each matching request fails with probability `rate`, the kind picked at random; seeded, so a run
can be repeated). Control endpoints, under `/_sandbox/`:

    GET    /_sandbox/requests        the request log as JSON
    POST   /_sandbox/faults          {"fault": "500", "count": 1, "method": "PUT"}
    POST   /_sandbox/faults/rate     {"rate": 0.3, "faults": ["500", "timeout"], "method": null}
    DELETE /_sandbox/faults          no more faults
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from aiohttp import web

Fault = Literal["500", "503", "429", "timeout", "hang", "drop", "slow_body", "garbage"]
FAULTS: tuple[Fault, ...] = get_args(Fault)
# The mix a fault-rate run uses unless told otherwise: everything that is not plain slowness.
DEFAULT_MIX: tuple[Fault, ...] = ("500", "503", "429", "timeout", "drop", "slow_body", "garbage")
CONTROL = "/_sandbox"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Served:
    """One request the sandbox received, and the fault it met (None: answered normally)."""

    method: str
    path_qs: str
    fault: Fault | None

    def line(self) -> str:
        return f"{self.method} {self.path_qs}"


@dataclass
class _Rate:
    rate: float
    faults: tuple[Fault, ...]
    method: str | None
    rng: random.Random


@dataclass
class SandboxKit:
    """Mount with `kit.middleware` on the sandbox's aiohttp app and `kit.add_control_routes(app)`.

    `applies_to(request)`: which requests count as the vendor's API (logged and faulted); pages
    and the control endpoints never are. `error_response(status, reason)`: how this vendor words
    a 5xx (its documented error body), so a client meets the same shape as from the real API;
    plain text when not given."""

    applies_to: Callable[[web.Request], bool]
    slow_seconds: float = 1.0
    hang_seconds: float = 300.0
    retry_after: str = "1"
    error_response: Callable[[int, str], web.StreamResponse] | None = None
    served: list[Served] = field(default_factory=list)
    _queue: list[tuple[Fault, str | None]] = field(default_factory=list)
    _rate: _Rate | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    # -- arming ---------------------------------------------------------------------------------

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` API requests (of `method` only, when given) meet `fault`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._queue.extend([(fault, method)] * count)

    def fail_rate(
        self,
        rate: float,
        faults: Sequence[Fault] = DEFAULT_MIX,
        *,
        method: str | None = None,
        seed: int | None = None,
    ) -> None:
        """From now on each API request (of `method`, when given) fails with probability `rate`."""
        if not 0 <= rate <= 1:
            raise ValueError("rate is a fraction between 0 and 1")
        unknown = [f for f in faults if f not in FAULTS]
        if unknown or not faults:
            raise ValueError(f"unknown faults {unknown!r}; choose among {', '.join(FAULTS)}")
        self._rate = _Rate(rate, tuple(faults), method, random.Random(seed))

    def clear(self) -> None:
        self._queue.clear()
        self._rate = None

    def stop(self) -> None:
        """Release every request held by "hang", "timeout" or "slow_body" (call before cleanup)."""
        self._stopping.set()

    def count(self, method: str, path_prefix: str = "") -> int:
        return sum(1 for s in self.served if s.method == method and s.path_qs.startswith(path_prefix))

    # -- serving --------------------------------------------------------------------------------

    def _pick(self, method: str) -> Fault | None:
        index = next((i for i, (_, m) in enumerate(self._queue) if m in (None, method)), None)
        if index is not None:
            return self._queue.pop(index)[0]
        rate = self._rate
        if rate is not None and rate.method in (None, method) and rate.rng.random() < rate.rate:
            return rate.rng.choice(rate.faults)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(f"{CONTROL}/") or not self.applies_to(request):
            return await handler(request)
        fault = self._pick(request.method)
        self.served.append(Served(request.method, request.path_qs, fault))
        if fault is None:
            return await handler(request)
        if fault in ("500", "503"):
            reason = "Internal Server Error" if fault == "500" else "Service Unavailable"
            if self.error_response is not None:
                return self.error_response(int(fault), reason)
            return web.Response(status=int(fault), text=reason)
        if fault == "429":
            return web.Response(
                status=429, text="Too Many Requests", headers={"Retry-After": self.retry_after}
            )
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # never sent: the connection is gone
        if fault == "hang":
            await self._wait(self.hang_seconds)
            return web.Response(status=504, text="Gateway Timeout")
        response = await handler(request)  # the rest apply the request
        if fault == "timeout":
            await self._wait(self.slow_seconds)
            return response
        if fault == "garbage":
            return web.Response(
                status=200, text="<html><body>Proxy error: upstream sent an invalid response</body></html>"
            )
        return await self._trickle(request, response)

    async def _trickle(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        body = response.body if isinstance(response, web.Response) else None
        data = body if isinstance(body, bytes) else b""
        slow = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type})
        slow.content_length = len(data)
        await slow.prepare(request)
        pieces = max(1, min(10, len(data)))
        step = -(-len(data) // pieces) if data else 0
        for start in range(0, len(data), step or 1):
            await slow.write(data[start : start + step])
            await self._wait(self.slow_seconds / pieces)
        await slow.write_eof()
        return slow

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- control endpoints ----------------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.add_routes(
            [
                web.get(f"{CONTROL}/requests", self._requests),
                web.post(f"{CONTROL}/faults", self._arm),
                web.post(f"{CONTROL}/faults/rate", self._arm_rate),
                web.delete(f"{CONTROL}/faults", self._disarm),
            ]
        )

    async def _requests(self, _: web.Request) -> web.Response:
        return web.json_response(
            [{"method": s.method, "path": s.path_qs, "fault": s.fault} for s in self.served]
        )

    async def _arm(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.fail_next(
                cast(Fault, str(body["fault"])), int(body.get("count", 1)), method=body.get("method")
            )
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _arm_rate(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            faults = [cast(Fault, str(f)) for f in body.get("faults", DEFAULT_MIX)]
            self.fail_rate(float(body["rate"]), faults, method=body.get("method"), seed=body.get("seed"))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _disarm(self, _: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})


class KitSandbox:
    """What every vendor sandbox exposes of its kit, written once: the requests it served, how long
    a "timeout" fault holds its answer, and arming a fault. A sandbox sets `self.kit`."""

    kit: SandboxKit

    @property
    def served(self) -> list[str]:
        """Every API request served, as "METHOD /path?query"."""
        return [entry.line() for entry in self.kit.served]

    @property
    def slow_seconds(self) -> float:
        return self.kit.slow_seconds

    @slow_seconds.setter
    def slow_seconds(self, seconds: float) -> None:
        self.kit.slow_seconds = seconds

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` requests (of `method` only, when given) meet `fault` (see the module's table)."""
        self.kit.fail_next(fault, count, method=method)
