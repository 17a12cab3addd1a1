"""The HTTP surface of `run`: /slack/events (Bolt), /healthz, /metrics, /greenhouse/webhook/<connector>."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot import metrics, slack_payload, webhooks
from bot.authz import health_detail_allowed
from store.leader import LeaseStatus
from store.repo import now_utc
from store.stats import outbox_backlog

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Slack's largest payloads (a view_submission of a full modal) are tens of kB; anything past this
# is refused with a 413 before it is read whole.
MAX_BODY = 1024 * 1024
# Payload types whose answer carries nothing for Slack, so they are answered before Bolt runs.
EARLY = frozenset({"block_actions"})
# Slack's timestamps are unix seconds; anything longer is not one (and int() of a huge string is slow).
_STAMP_DIGITS = 12


def signature_problem(verifier: SignatureVerifier, raw: bytes, headers: Mapping[str, str]) -> str | None:
    """Why this request is not signed by Slack (None when it is), in words safe to log.

    slack_sdk's verifier raises on a non-numeric timestamp or a signature with non-ASCII
    characters (such a request is simply not signed), and on a body that is not UTF-8 (checked here
    on the bytes, so a signed one gets its 400 rather than a 401).
    """
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "unsigned"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _STAMP_DIGITS):
        return "a malformed timestamp"
    if not signature.isascii():
        return "a bad signature"
    if abs(verifier.clock.now() - int(timestamp)) > 60 * 5:
        return "a stale timestamp"
    try:
        valid = verifier.is_valid(raw.decode("utf-8"), timestamp, signature)
    except UnicodeDecodeError:  # the same HMAC over the bytes, which the SDK insists on decoding first
        base = b"v0:" + timestamp.encode() + b":" + raw
        digest = hmac.new(verifier.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(f"v0={digest}", signature)
    return None if valid else "a bad signature"


def _leader_json(lease: LeaseStatus) -> dict[str, object]:
    return {
        "this_replica": lease.leading,
        "holder": lease.holder,
        "fence": lease.fence,
        "lease_age_seconds": None if lease.age is None else round(lease.age, 1),
        "held_seconds": None if lease.held_for is None else round(lease.held_for, 1),
    }


async def _refresh_metrics(runtime: Runtime) -> None:
    """The figures that live in the store or the elector, read when Prometheus asks."""
    lease = runtime.leadership()
    if lease is not None:
        metrics.observe_lease(
            leading=lease.leading, holder=lease.holder, fence=lease.fence, age=lease.age, held=lease.held_for
        )
    try:
        states = await runtime.store.connector_states()
        backlog = await outbox_backlog(runtime.db)
    except Exception as exc:  # an unreachable store shows in /healthz; the process's own figures still serve
        log.warning("metrics: the store could not be read (%s: %s)", type(exc).__name__, exc)
        return
    metrics.observe_store(
        last_success={name: state.last_success_at for name, state in states.items()},
        failures={name: state.failures for name, state in states.items()},
        outbox_depth=backlog.depth,
        outbox_oldest=backlog.oldest,
        now=now_utc(),
    )


def build_web(runtime: Runtime, *, slack: bool = True, healthz_token: str | None = None) -> web.Application:
    """`healthz_token`: APPROVALS_HEALTHZ_TOKEN, which shows /healthz detail to callers beyond loopback."""
    app = web.Application(client_max_size=MAX_BODY)
    if slack:
        app.router.add_post("/slack/events", SlackEvents(runtime).handle)
    app.router.add_get("/healthz", _healthz_handler(runtime, healthz_token))
    app.router.add_get("/metrics", _prometheus_handler(runtime))
    webhooks.add_routes(app, runtime)
    return app


class _Refused(Exception):
    """A request to /slack/events answered with an error status before Bolt sees it."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


class SlackEvents:
    """POST /slack/events: signature first, on the raw bytes; only a signed body is parsed
    (bot/slack_payload.py); a click is acknowledged before Bolt runs its listener."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        secret = runtime.slack.signing_secret
        self.verifier = SignatureVerifier(secret) if secret and not runtime.slack.socket_mode else None

    async def handle(self, request: web.Request) -> web.Response:
        with self.runtime.ack_first.answering():
            try:
                return await self._answer(request)
            except _Refused as refused:
                # One short line, never the body: anyone can send these, so the log must not grow by more.
                why = refused.why[:120]
                log.info("refused a request to /slack/events (%s): %s", refused.status, why)
                return web.json_response({"error": why}, status=refused.status)

    async def _answer(self, request: web.Request) -> web.Response:
        app = self.runtime.app
        assert app is not None
        raw = await self._signed_body(request)
        bolt_request, body = _parse(raw, request)
        if self.verifier is not None and body.get("type") in EARLY:
            self.runtime.ack_first.later(_dispatch_late(app, bolt_request), "a click")
            return web.Response(status=200)
        try:
            response = await app.async_dispatch(bolt_request)
        except Exception as exc:  # a payload Bolt cannot parse must not become a 500
            raise _Refused(400, f"malformed request ({type(exc).__name__})") from exc
        return await to_aiohttp_response(response)

    async def _signed_body(self, request: web.Request) -> bytes:
        """The raw body, refused when too large (before it is read whole) or not signed by Slack."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise _Refused(413, "the body is too large")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise _Refused(413, "the body is too large") from exc
        if self.verifier is not None:
            problem = signature_problem(self.verifier, raw, request.headers)
            if problem is not None:
                raise _Refused(401, f"{problem} request")
        return raw


def _parse(raw: bytes, request: web.Request) -> tuple[AsyncBoltRequest, Mapping[str, object]]:
    """Bolt's request and the checked payload, or why the body is refused with a 400."""
    try:
        text = raw.decode("utf-8")
        # Bolt parses the body here (once: parsing a click's form body is its costliest step).
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]  # as slack_bolt's aiohttp adapter does
        )
        return bolt_request, slack_payload.check(bolt_request.body)
    except UnicodeDecodeError as exc:
        raise _Refused(400, "the body is not UTF-8") from exc
    except slack_payload.Unreadable as exc:
        raise _Refused(400, exc.why) from exc
    except RecursionError as exc:
        raise _Refused(400, "the body nests too deeply") from exc
    except ValueError as exc:
        raise _Refused(400, "the body is not JSON") from exc
    except Exception as exc:  # Bolt's reading of ids from a body of a shape Slack never sends
        raise _Refused(400, f"the body has an unexpected shape ({type(exc).__name__})") from exc


async def _dispatch_late(bolt_app: AsyncApp, bolt_request: AsyncBoltRequest) -> None:
    """Run a click's listener after its early 200: failures can only be logged now."""
    try:
        response = await bolt_app.async_dispatch(bolt_request)
    except Exception as exc:  # as in SlackEvents: a payload Bolt cannot handle is logged, not raised
        log.info("dropped a malformed Slack click: %s", type(exc).__name__)
        return
    if response.status >= 400:
        log.info("a click acknowledged early was refused by Bolt (%s)", response.status)


def _healthz_handler(runtime: Runtime, token: str | None) -> Handler:
    """GET /healthz: ok while the store answers and some replica leads the background work; the
    detail (connectors, leader) only for loopback or a caller with the token."""

    async def healthz(request: web.Request) -> web.Response:
        store_ok = await runtime.db.ping()
        lease = runtime.leadership()
        # This process runs the background work: some replica must lead it, or nothing moves.
        led = lease is None or lease.holder is not None
        ok = store_ok and led
        status = 200 if ok else 503
        detail = health_detail_allowed(
            remote=request.remote, authorization=request.headers.get("Authorization"), token=token
        )
        if not detail:
            # Anyone else learns only ok or not ok: connector names and vendor errors stay inside.
            return web.json_response({"ok": ok, "status": "ok" if ok else "not ok"}, status=status)
        body: dict[str, object] = {
            "ok": ok,
            "store": "ok" if store_ok else "unreachable",
            "connectors": await runtime.services.health() if store_ok else {},
        }
        if lease is not None:
            body["leader"] = _leader_json(lease)
        return web.json_response(body, status=status)

    return healthz


def _prometheus_handler(runtime: Runtime) -> Handler:
    """GET /metrics: the process's figures, with the store's read fresh for each scrape."""

    async def prometheus(_: web.Request) -> web.Response:
        await _refresh_metrics(runtime)
        payload = generate_latest(metrics.REGISTRY)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return prometheus
