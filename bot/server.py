"""The HTTP surface of `run`: /slack/events (Bolt), /healthz, /metrics, /greenhouse/webhook/<connector>."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot import metrics, webhooks
from bot.authz import health_detail_allowed

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
# Payload types whose answer carries nothing for Slack, so they are answered before Bolt runs.
EARLY = frozenset({"block_actions"})


def build_web(runtime: Runtime, *, slack: bool = True, healthz_token: str | None = None) -> web.Application:
    """`healthz_token`: APPROVALS_HEALTHZ_TOKEN, which shows /healthz detail to callers beyond loopback."""
    app = web.Application(client_max_size=MAX_BODY)
    secret = runtime.slack.signing_secret
    verifier = SignatureVerifier(secret) if secret and not runtime.slack.socket_mode else None

    def early(bolt_request: AsyncBoltRequest, headers: Mapping[str, str]) -> bool:
        """A signed click: Slack gets its 200 now, Bolt handles it next (bot/ack_first.py)."""
        body = bolt_request.body
        return (
            verifier is not None
            and isinstance(body, dict)
            and body.get("type") in EARLY
            and verifier.is_valid_request(bolt_request.raw_body, headers)
        )

    async def dispatch(bolt_app: AsyncApp, bolt_request: AsyncBoltRequest) -> None:
        try:
            response = await bolt_app.async_dispatch(bolt_request)
        except Exception as exc:  # as below: a payload Bolt cannot parse is logged, not raised
            log.info("dropped a malformed Slack click: %s", type(exc).__name__)
            return
        if response.status >= 400:
            log.info("a click acknowledged early was refused by Bolt (%s)", response.status)

    async def slack_events(request: web.Request) -> web.Response:
        with runtime.ack_first.answering():
            return await answer(request)

    async def answer(request: web.Request) -> web.Response:
        assert runtime.app is not None
        try:
            bolt_request = await to_bolt_request(request)
        except (UnicodeDecodeError, ValueError):
            return web.json_response({"error": "the request body could not be read"}, status=400)
        if early(bolt_request, request.headers):
            runtime.ack_first.later(dispatch(runtime.app, bolt_request), "a click")
            return web.Response(status=200)
        try:
            response = await runtime.app.async_dispatch(bolt_request)
        except Exception as exc:  # a payload Bolt cannot parse must not become a 500
            log.info("rejected a malformed Slack request: %s", type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(response)

    async def healthz(request: web.Request) -> web.Response:
        store_ok = await runtime.db.ping()
        status = 200 if store_ok else 503
        detail = health_detail_allowed(
            remote=request.remote, authorization=request.headers.get("Authorization"), token=healthz_token
        )
        if not detail:
            # Anyone else learns only ok or not ok: connector names and vendor errors stay inside.
            return web.json_response(
                {"ok": store_ok, "status": "ok" if store_ok else "not ok"}, status=status
            )
        body: dict[str, object] = {
            "ok": store_ok,
            "store": "ok" if store_ok else "unreachable",
            "connectors": {},
        }
        if store_ok:
            body["connectors"] = await runtime.services.health()
        return web.json_response(body, status=status)

    async def prometheus(_: web.Request) -> web.Response:
        payload = generate_latest(metrics.REGISTRY)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    if slack:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    webhooks.add_routes(app, runtime)
    return app
