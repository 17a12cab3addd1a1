"""The HTTP surface of `run`: /slack/events (Bolt), /healthz, /metrics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot import metrics

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


def build_web(runtime: Runtime, *, slack: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def slack_events(request: web.Request) -> web.Response:
        assert runtime.app is not None
        try:
            bolt_request = await to_bolt_request(request)
        except (UnicodeDecodeError, ValueError):
            return web.json_response({"error": "the request body could not be read"}, status=400)
        try:
            with runtime.ack_first.answering():
                response = await runtime.app.async_dispatch(bolt_request)
        except Exception as exc:  # a payload Bolt cannot parse must not become a 500
            log.info("rejected a malformed Slack request: %s", type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(response)

    async def healthz(_: web.Request) -> web.Response:
        store_ok = await runtime.db.ping()
        body: dict[str, object] = {
            "ok": store_ok,
            "store": "ok" if store_ok else "unreachable",
            "connectors": {},
        }
        if store_ok:
            body["connectors"] = await runtime.services.health()
        return web.json_response(body, status=200 if store_ok else 503)

    async def prometheus(_: web.Request) -> web.Response:
        payload = generate_latest(metrics.REGISTRY)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    if slack:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
