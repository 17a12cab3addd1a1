"""The vendor HTTP client shared by a connector's service account and its clickers.

A clicker's requests ride on the service account's connection pool with the clicker's own
credentials; nothing of one person's session may reach another person's request.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from connectors.http import VendorHTTP


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
async def vendor() -> AsyncIterator[tuple[str, list[tuple[str | None, str | None]]]]:
    """A vendor that answers every request with a session cookie, and notes what it was sent."""
    seen: list[tuple[str | None, str | None]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), request.headers.get("Cookie")))
        response = web.json_response({"ok": True})
        response.set_cookie("JSESSIONID", f"session-{len(seen)}")
        return response

    app = web.Application()
    app.router.add_route("*", "/api", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def test_each_person_sends_their_own_credentials_and_no_session_cookie(
    vendor: tuple[str, list[tuple[str | None, str | None]]],
) -> None:
    url, seen = vendor
    service = VendorHTTP(url, auth=("bot", "service-secret"))
    alice = service.as_user(httpx.BasicAuth("alice", "alice-secret"))
    bob = service.as_user(httpx.BasicAuth("bob", "bob-secret"))
    try:
        await service.get("/api")
        await alice.send("PUT", "/api")
        await bob.send("PUT", "/api")
        await service.get("/api")
    finally:
        await alice.aclose()
        await bob.aclose()
    auth = [a for a, _ in seen]
    assert auth == [
        _basic("bot", "service-secret"),
        _basic("alice", "alice-secret"),
        _basic("bob", "bob-secret"),
        _basic("bot", "service-secret"),
    ]
    assert [c for _, c in seen] == [None] * 4, "a session cookie from one answer never rides along"
    await service.get("/api")  # closing a person's view leaves the shared pool open
    await service.aclose()
