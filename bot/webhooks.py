"""POST /greenhouse/webhook/<connector>: Greenhouse's `job_approved` and `offer_approved` deliveries.

Why a push path at all: polling stays the source of truth for "due", but an approval finished in
Greenhouse should end every card at once, not a poll interval later. So a delivery does only this:
prove it is Greenhouse's (`Signature: sha256 <hex>`, an HMAC-SHA256 of the raw body with the
connector's `webhook_secret`), checked before anything else is read; skip an event already seen
(`Greenhouse-Event-ID`, through the store's processed event ids); then run the connector's normal
sync, so the flow is re-read and its cards updated by the same code a poll uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from connectors.greenhouse.connector import GreenhouseConnector

log = logging.getLogger(__name__)

EVENTS = frozenset({"job_approved", "offer_approved"})
MAX_BODY = 256 * 1024


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """Greenhouse signs with `Signature: sha256 <hex digest>`."""
    scheme, _, digest = header.strip().partition(" ")
    if scheme.lower() != "sha256" or not digest:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


def flow_id(payload: object) -> int | None:
    """The approval flow a delivery is about, when it names one."""
    if not isinstance(payload, dict):
        return None
    inner = payload.get("payload")
    flow = inner.get("approval_flow") if isinstance(inner, dict) else None
    raw = flow.get("id") if isinstance(flow, dict) else None
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


def add_routes(app: web.Application, runtime: Runtime) -> None:
    app.router.add_post("/greenhouse/webhook/{connector}", GreenhouseWebhook(runtime).handle)


class GreenhouseWebhook:
    """One Greenhouse delivery: signature, event id once, then a sync in the background (the
    answer does not wait for it: Greenhouse retries a slow delivery)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tasks: set[asyncio.Task[object]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        # Imported here: the bot's HTTP surface must not depend on one vendor's package at import.
        from connectors.greenhouse.connector import GreenhouseConnector

        name = request.match_info["connector"]
        connector = self.runtime.connectors.get(name)
        if not isinstance(connector, GreenhouseConnector):
            return web.json_response({"error": "no such Greenhouse connector"}, status=404)
        body = await _signed_body(request, name, connector.webhook_secret)
        if isinstance(body, web.Response):
            return body
        event = request.headers.get("Greenhouse-Event-ID", "").strip()
        if not event:
            return web.json_response({"error": "missing Greenhouse-Event-ID"}, status=400)
        key = "gh:" + hashlib.sha256(f"{name}\0{event}".encode()).hexdigest()[:48]
        if not await self.runtime.store.first_time_event(event_id=key):
            return web.json_response({"ok": True, "duplicate": True})
        return self._accept(name, connector, body)

    def _accept(self, name: str, connector: GreenhouseConnector, body: bytes) -> web.Response:
        """A first-seen delivery: an approval event drops the connector's cached flow and starts
        the connector's sync; any other event is acknowledged and ignored."""
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        action = payload.get("action") if isinstance(payload, dict) else None
        if action not in EVENTS:
            return web.json_response({"ok": True, "ignored": str(action)[:40]})
        connector.forget(flow_id(payload))
        if self.runtime.coordinators.get(name) is not None:
            task: asyncio.Task[object] = asyncio.create_task(
                _sync(self.runtime, name), name=f"webhook-sync-{name}"
            )
            self.tasks.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self.tasks.discard)
        return web.json_response({"ok": True})


async def _signed_body(request: web.Request, name: str, secret: str | None) -> bytes | web.Response:
    """The whole body when Greenhouse signed it, else the refusal (too large, or a bad signature)."""
    if (request.content_length or 0) > MAX_BODY:
        return web.json_response({"error": "body too large"}, status=413)
    body = await request.read()  # the whole body (the app caps it): the signature covers every byte
    if not secret or not signature_ok(secret, body, request.headers.get("Signature", "")):
        log.info("refused an unsigned or badly signed Greenhouse delivery for %s", name)
        return web.json_response({"error": "bad or missing signature"}, status=401)
    return body


async def _sync(runtime: Runtime, name: str) -> object:
    """The connector's normal sync cycle, then delivery of the cards it changed."""
    coordinator = runtime.coordinators[name]
    await coordinator.idle()  # a poll already running may have read before the approval
    result = await coordinator.run_once()
    runtime.outbox.kick()
    return result
