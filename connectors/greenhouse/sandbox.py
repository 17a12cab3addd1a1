"""A Greenhouse Harvest v3 simulator (approvals and what their cards need), for tests and the demo.

Faithful to the v3 document (../vendor-docs/greenhouse-harvest-v3.md) where it speaks:
- the token endpoint (`POST /token`): Basic client id and secret, form `grant_type` and `sub`;
  its documented errors (400 for a malformed client id or grant type, 401 `invalid_client`) and
  an expiry (`expires_at`, or `expires_in` with `expiry_field="expires_in"`);
- Bearer tokens acting as their `sub`; lists answer only Site Admins (403 otherwise);
- bare-array lists in descending id order, cursor paging through `Link: <…>; rel="next"`, and the
  422 when a cursor request carries any other parameter; `per_page` 1..500 (422 outside);
- a fixed 30-second window with `X-RateLimit-Limit/Remaining/Reset` on every answer, and 429 with
  `Retry-After` when it is spent;
- approver slots that move from waiting to due as groups resolve (sequential by `sort_order`,
  equal `sort_order` in parallel);
- replace_approver and request_approvals recorded with the token's `sub`, their bodies checked
  strictly against the shape the client builds (the real shape is undocumented: section 10);
- signed webhook deliveries (`Signature: sha256 <hex>`, `Greenhouse-Event-ID`) on approval.
Where Greenhouse documents only a status code, the message text is ours.

Out-of-band decisions (`approve`, `reject`, `decide_flow`, `remind`) play the people who use
Greenhouse's own UI, since Harvest cannot approve or reject.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from connectors.greenhouse.client import replace_approver_body, request_approvals_body
from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from connectors.registry import SandboxSetup
from connectors.sandbox_kit import Fault, KitSandbox, SandboxKit

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FORBIDDEN = "Forbidden"
NOT_FOUND = "Resource not found"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CURSOR_ALONE = "When passing a cursor, do not include other query params."


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _unprocessable(*errors: Any) -> web.Response:
    return web.json_response({"message": "Unprocessable Content", "errors": list(errors)}, status=422)


def sign(secret: str, body: bytes) -> str:
    """Greenhouse's webhook signature header value for `body`."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class User:
    id: int
    first_name: str
    last_name: str
    emails: list[str]
    site_admin: bool = False
    disabled: bool = False
    employee_id: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "primary_email": self.emails[0] if self.emails else "",
            "emails": list(self.emails),
            "deactivated": self.disabled,
            "site_admin": self.site_admin,
            "employee_id": self.employee_id,
        }


@dataclass
class Job:
    id: int
    name: str
    requisition_id: str | None = None
    department: str | None = None
    office: str | None = None
    status: str = "open"
    access: set[int] = field(default_factory=set)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "requisition_id": self.requisition_id,
            "status": self.status,
        }


@dataclass
class Candidate:
    id: int
    first_name: str
    last_name: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name}


@dataclass
class Offer:
    id: int
    job_id: int
    candidate_id: int
    application_id: int
    starts_at: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)  # display name → value

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": 1,
            "application_id": self.application_id,
            "job_id": self.job_id,
            "candidate_id": self.candidate_id,
            "starts_on": self.starts_at,
            "status": "Created",
            "custom_fields": {name.lower().replace(" ", "_"): value for name, value in self.custom.items()},
        }


@dataclass
class Seat:
    """One approver slot in one group, with what they did and what Greenhouse sent them."""

    user_id: int
    approval_id: int
    added_at: datetime
    decision: str | None = None
    decided_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    reminders_sent: int = 0
    reminder_sent_by_id: int | None = None


@dataclass
class Group:
    id: int
    sort_order: int
    approvals_required: int
    seats: list[Seat]
    created_at: datetime
    resolved_at: datetime | None = None
    outcome: str | None = None
    due_at: datetime | None = None


@dataclass
class Flow:
    id: int
    job_id: int
    approval_type: str
    sequential: bool
    groups: list[Group]
    offer_id: int | None = None
    status: str = "pending"
    requested: bool = False
    requested_by: int | None = None
    version: int = 1
    created_at: datetime | None = None


@dataclass(frozen=True)
class Write:
    """Every write that reached the sandbox, applied or not: the `sub` of its token, its body."""

    method: str
    path: str
    sub: int | None
    status: int
    body: Any = None


class GreenhouseSandbox(KitSandbox):
    """The vendor, seeded by helpers. Faults on the v3 API, its request log and the control
    endpoints come from connectors/sandbox_kit.py; the rate-limit window (X-RateLimit-* on every
    answer, 429 with Retry-After when spent, `throttle_next`) and `requests` (with each answer's
    status, for counting 429s and 401s) are Greenhouse's own."""

    def __init__(
        self,
        *,
        client_id: str = "sandbox-client-1",
        client_secret: str = "sandbox-secret",
        page_size: int = 100,
        rate_limit: int = 75,
        rate_window: float = 30.0,
        retry_after: int = 1,
        token_seconds: int = 3600,
        expiry_field: Literal["expires_at", "expires_in"] = "expires_at",
        slow_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_size = page_size
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.retry_after = retry_after
        self.token_seconds = token_seconds
        self.expiry_field = expiry_field
        self.kit = SandboxKit(
            applies_to=lambda r: r.path.startswith("/v3/"),
            slow_seconds=slow_seconds,
            retry_after=str(retry_after),
            error_response=_error,
        )
        self.clock = clock
        self._seed_nothing()
        self._record_nothing()
        # Build `Link` headers on another origin (a misbehaving proxy): clients must not follow.
        self.link_origin: str | None = None
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.on_due: Callable[[Flow, Group], None] | None = None
        self._cursors: dict[
            str, tuple[str, list[Any], int, int]
        ] = {}  # cursor → (path, rows, start, per_page)
        self._ids = itertools.count(4_000_001)
        self._pace_nothing()
        self._deliveries_running: set[asyncio.Task[int]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _seed_nothing(self) -> None:
        """The vendor's data, empty until the seeding helpers fill it."""
        self.users: dict[int, User] = {}
        self.jobs: dict[int, Job] = {}
        self.candidates: dict[int, Candidate] = {}
        self.offers: dict[int, Offer] = {}
        self.flows: dict[int, Flow] = {}
        self.can_request: set[int] = set()
        self.denied: set[str] = set()  # resources ("candidates", "offers", …) the credential lacks

    def _pace_nothing(self) -> None:
        """The rate-limit window and the requests in flight (what `settle` waits on), all at rest."""
        self._throttles: list[str | None] = []  # a 429 for the next request (of this method)
        self._window_start = 0.0
        self._window_count = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _record_nothing(self) -> None:
        """What tests read back afterwards: decisions, writes, requests, tokens and deliveries."""
        self.decisions: list[tuple[str, str, str]] = []
        self.writes: list[Write] = []
        self.requests: list[tuple[float, str, str, int]] = []  # (loop time, method, path, status)
        self.tokens: dict[str, tuple[int, datetime]] = {}  # token → (sub, expiry)
        self.minted: list[int] = []  # the sub of every token minted
        self.deliveries: list[tuple[str, int]] = []  # (event id, HTTP status of the delivery)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware, self.kit.middleware, self._api])
        self.kit.add_control_routes(app)
        app.router.add_post("/token", self._token)
        for resource, handler in (
            ("users", self._list_users),
            ("user_emails", self._list_user_emails),
            ("approvers", self._list_approvers),
            ("approver_groups", self._list_groups),
            ("approval_flows", self._list_flows),
            ("jobs", self._list_jobs),
            ("offers", self._list_offers),
            ("candidates", self._list_candidates),
        ):
            app.router.add_get(f"/v3/{resource}", handler)
        app.router.add_post("/v3/approval_flows/{id}/request_approvals", self._request_approvals)
        app.router.add_put("/v3/approver_groups/{id}/replace_approver", self._replace_approver)
        # Stand-ins for Greenhouse's web UI, so the demo's "Open in Greenhouse" lands somewhere.
        app.router.add_get("/plans/{id}", self._ui_page)
        app.router.add_get("/people/{id}", self._ui_page)
        app.router.add_get("/dashboard", self._ui_page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=max(2.0, self.slow_seconds + 1))
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/token"

    async def stop(self) -> None:
        self.kit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (a "timeout" fault answers after the client gave up)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    def expire_tokens(self) -> None:
        """Every token minted so far expires now (as an hour passing would do)."""
        past = self.clock() - timedelta(seconds=1)
        self.tokens = {t: (sub, past) for t, (sub, _) in self.tokens.items()}

    # ------------------------------------------------------------------ faults and limits

    @property
    def query_log(self) -> list[tuple[str, dict[str, str]]]:
        """(path, query) of every v3 API request."""
        out = []
        for entry in self.kit.served:
            path, _, query = entry.path_qs.partition("?")
            out.append((path, dict(parse_qsl(query, keep_blank_values=True))))
        return out

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` API requests (only those with HTTP `method`, when given) meet `fault`
        (see sandbox_kit): "500" answers Greenhouse's 500 without applying; "timeout" applies at
        once and answers after `slow_seconds`; "drop" closes the connection without applying."""
        self.kit.fail_next(fault, count, method=method)

    def throttle_next(self, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` API requests answer 429 with Retry-After, as when the window is spent."""
        self._throttles.extend([method] * count)

    def _throttle(self, request: web.Request) -> bool:
        for index, method in enumerate(self._throttles):
            if method in (None, request.method):
                del self._throttles[index]
                return True
        return False

    @property
    def throttled(self) -> int:
        return sum(1 for r in self.requests if r[3] == 429)

    def _rate(self) -> tuple[bool, dict[str, str]]:
        """A fixed window of `rate_window` seconds allowing `rate_limit` requests."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._window_start >= self.rate_window:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        remaining = max(0, self.rate_limit - self._window_count)
        reset = int(datetime.now(UTC).timestamp() + (self._window_start + self.rate_window - now)) + 1
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        return self._window_count <= self.rate_limit, headers

    def _sub(self, request: web.Request) -> int | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        held = self.tokens.get(header[7:])
        if held is None or held[1] <= self.clock():
            return None
        return held[0]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._in_flight += 1
        self._idle.clear()
        status = 0
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            self.requests.append((asyncio.get_running_loop().time(), request.method, request.path, status))
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @web.middleware
    async def _api(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v3/"):
            return await handler(request)
        allowed, headers = self._rate()
        if self._throttle(request) or not allowed:
            response: web.StreamResponse = web.json_response({"message": "Too Many Requests"}, status=429)
            response.headers.update(headers)
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        sub = self._sub(request)
        user = self.users.get(sub) if sub is not None else None
        if sub is None or user is None or user.disabled:
            response = web.json_response(
                {
                    "message": "Unauthorized",
                    "errors": [
                        "Token could not be decoded. Please ensure your token is from a trusted source."
                    ],
                },
                status=401,
            )
        elif request.path.split("/")[2] in self.denied:
            response = _error(403, FORBIDDEN)  # the credential lacks this resource's scope
        elif request.method == "GET" and not user.site_admin:
            response = _error(403, FORBIDDEN)  # v3 lists answer only Site Admins
        elif request.method in WRITE_METHODS:
            raw = await request.read()
            response = await handler(request)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            self.writes.append(Write(request.method, request.path, sub, response.status, body))
        else:
            response = await handler(request)
        response.headers.update(headers)
        return response

    # ------------------------------------------------------------------ token endpoint

    async def _token(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return web.json_response(
                {"message": "Unauthorized", "errorId": "err-" + uuid.uuid4().hex[:8]}, status=401
            )
        try:
            client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except ValueError:
            return web.json_response({"message": "Unauthorized", "errorId": "err-1"}, status=401)
        if not client_id.rpartition("-")[2].isdigit():
            return web.json_response(
                {
                    "message": f"client_id={client_id} does not contain a valid client ID suffix",
                    "errorId": "err-" + uuid.uuid4().hex[:8],
                },
                status=400,
            )
        if client_id != self.client_id or secret != self.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = str(form.get("grant_type") or "")
        if not grant:
            return web.json_response({"message": "Must include `grant_type` parameter"}, status=400)
        if grant != "client_credentials":
            return web.json_response(
                {"message": f"grant_type={grant} is invalid, please use one of: client_credentials"},
                status=400,
            )
        raw_sub = str(form.get("sub", ""))
        user = self.users.get(int(raw_sub)) if raw_sub.isdigit() else None
        if user is None or user.disabled:
            # Undocumented (open question 2): the OAuth word for a grant that cannot be made.
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = secrets.token_urlsafe(24)
        expires = self.clock() + timedelta(seconds=self.token_seconds)
        self.tokens[token] = (user.id, expires)
        self.minted.append(user.id)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expiry_field == "expires_in":
            body["expires_in"] = self.token_seconds
        else:
            body["expires_at"] = iso(expires)
        return web.json_response(body)

    # ------------------------------------------------------------------ webhooks

    def deliver_later(self, flow: Flow) -> None:
        """Greenhouse sends its webhook shortly after the approval completes."""
        if not self.webhook_url:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.deliver(flow))
        self._deliveries_running.add(task)
        task.add_done_callback(self._deliveries_running.discard)

    async def deliver(self, flow: Flow, *, secret: str | None = None, event_id: str | None = None) -> int:
        """POST Greenhouse's `job_approved`/`offer_approved` for `flow` to `webhook_url`, signed."""
        assert self.webhook_url
        action = "offer_approved" if flow.approval_type == "offer_candidate" else "job_approved"
        payload: dict[str, Any] = {
            "action": action,
            "payload": {
                "approval_flow": {"id": flow.id, "approval_flow_type": flow.approval_type},
                "job": {"id": flow.job_id},
            },
        }
        if flow.offer_id:
            payload["payload"]["offer"] = {"id": flow.offer_id, "job_id": flow.job_id}
        body = json.dumps(payload).encode()
        event = event_id or uuid.uuid4().hex
        headers = {"Content-Type": "application/json", "Greenhouse-Event-ID": event}
        key = secret if secret is not None else self.webhook_secret
        if key:
            headers["Signature"] = sign(key, body)
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.webhook_url, data=body, headers=headers) as answer,
        ):
            self.deliveries.append((event, answer.status))
            return answer.status

    # ------------------------------------------------------------------ seeding

    def _next_id(self) -> int:
        return next(self._ids)

    def add_user(
        self,
        name: str,
        email: str,
        *,
        site_admin: bool = False,
        disabled: bool = False,
        extra_emails: Iterable[str] = (),
    ) -> int:
        first, _, last = name.partition(" ")
        user = User(
            self._next_id(),
            first,
            last,
            [email, *extra_emails],
            site_admin,
            disabled,
            f"E{len(self.users) + 1:03d}",
        )
        self.users[user.id] = user
        return user.id

    def add_person(self, person: DemoPerson, **kwargs: Any) -> int:
        return self.add_user(person.name, person.email, **kwargs)

    def user_id(self, email: str) -> int:
        for user in self.users.values():
            if email.lower() in (e.lower() for e in user.emails):
                return user.id
        raise KeyError(email)

    def add_job(
        self,
        name: str,
        *,
        requisition_id: str | None = None,
        department: str | None = None,
        office: str | None = None,
        access: Iterable[int] = (),
    ) -> int:
        job = Job(self._next_id(), name, requisition_id, department, office, access=set(access))
        self.jobs[job.id] = job
        return job.id

    def grant(self, job_id: int, *user_ids: int) -> None:
        self.jobs[job_id].access.update(user_ids)

    def add_candidate(self, first_name: str, last_name: str) -> int:
        candidate = Candidate(self._next_id(), first_name, last_name)
        self.candidates[candidate.id] = candidate
        return candidate.id

    def add_offer(
        self,
        job_id: int,
        candidate_id: int,
        *,
        starts_at: str | None = None,
        custom: dict[str, Any] | None = None,
    ) -> int:
        offer = Offer(self._next_id(), job_id, candidate_id, self._next_id(), starts_at, dict(custom or {}))
        self.offers[offer.id] = offer
        return offer.id

    def add_flow(
        self,
        job_id: int,
        groups: Sequence[tuple[Sequence[int], int] | tuple[Sequence[int], int, int]],
        *,
        approval_type: str = "open_job",
        offer_id: int | None = None,
        sequential: bool = True,
        requested_by: int | None = None,
    ) -> int:
        """A flow with `groups` = [(approver ids, approvals required[, sort_order]), …]; the
        sort_order defaults to the position (equal sort_orders run in parallel). With
        `requested_by`, approvals are requested at once (the first group becomes due)."""
        now = self.clock()
        built = []
        for position, spec in enumerate(groups):
            approvers, required = spec[0], spec[1]
            order = spec[2] if len(spec) > 2 else position
            seats = [Seat(user_id, self._next_id(), now) for user_id in approvers]
            built.append(Group(self._next_id(), order, required, seats, now))
        flow = Flow(
            self._next_id(), job_id, approval_type, sequential, built, offer_id=offer_id, created_at=now
        )
        self.flows[flow.id] = flow
        self.grant(job_id, *(s.user_id for g in built for s in g.seats))
        if requested_by is not None:
            self.request(flow.id, requested_by)
        return flow.id

    # ------------------------------------------------------------------ what people do in Greenhouse

    def request(self, flow_id: int, by: int) -> None:
        flow = self.flows[flow_id]
        flow.requested = True
        flow.requested_by = by
        self._advance(flow)

    def approve(self, flow_id: int, user_id: int) -> None:
        self._decide(flow_id, user_id, "approved")

    def reject(self, flow_id: int, user_id: int) -> None:
        self._decide(flow_id, user_id, "rejected")

    def decide_flow(
        self, flow_id: int, status: Literal["approved", "rejected"], by: int | None = None
    ) -> None:
        """A recruiter settles the whole flow in Greenhouse (e.g. an admin override)."""
        flow = self.flows[flow_id]
        now = self.clock()
        for group in flow.groups:
            if group.resolved_at is None and (status == "approved" or group.due_at is not None):
                group.resolved_at, group.outcome = now, status
        flow.status = status
        if status == "approved":
            self.deliver_later(flow)
        actor = by if by is not None else flow.requested_by or 0
        self.decisions.append((str(flow_id), "approve" if status == "approved" else "reject", str(actor)))

    def remind(self, flow_id: int, by: int, at: datetime | None = None) -> None:
        """Greenhouse's "Send Reminder": every approver of the due groups who has not acted."""
        flow = self.flows[flow_id]
        moment = at or self.clock()
        for group in self._due_groups(flow):
            for seat in group.seats:
                if seat.decision is None:
                    seat.reminder_sent_at = moment
                    seat.reminders_sent += 1
                    seat.reminder_sent_by_id = by

    def _decide(self, flow_id: int, user_id: int, decision: str) -> None:
        flow = self.flows[flow_id]
        for group in self._due_groups(flow):
            for seat in group.seats:
                if seat.user_id == user_id and seat.decision is None:
                    seat.decision, seat.decided_at = decision, self.clock()
                    action = "approve" if decision == "approved" else "reject"
                    self.decisions.append((str(flow_id), action, str(user_id)))
                    self._advance(flow)
                    return
        raise ValueError(f"user {user_id} has nothing due in flow {flow_id}")

    # ------------------------------------------------------------------ flow rules

    def _due_groups(self, flow: Flow) -> list[Group]:
        if not flow.requested or flow.status != "pending":
            return []
        unresolved = sorted((g for g in flow.groups if g.resolved_at is None), key=lambda g: g.sort_order)
        if not unresolved:
            return []
        if not flow.sequential:
            return unresolved
        return [g for g in unresolved if g.sort_order == unresolved[0].sort_order]

    def _advance(self, flow: Flow) -> None:
        """Resolve groups that have enough answers, settle the flow, make the next groups due."""
        now = self.clock()
        changed = True
        while changed and flow.status == "pending":
            changed = False
            for group in self._due_groups(flow):
                approvals = sum(1 for s in group.seats if s.decision == "approved")
                rejections = sum(1 for s in group.seats if s.decision == "rejected")
                if approvals >= group.approvals_required:
                    group.resolved_at, group.outcome, changed = now, "approved", True
                elif len(group.seats) - rejections < group.approvals_required:
                    group.resolved_at, group.outcome = now, "rejected"
                    flow.status = "rejected"
                    return
            if all(g.outcome == "approved" for g in flow.groups):
                flow.status = "approved"
                self.deliver_later(flow)
                return
        for group in self._due_groups(flow):
            if group.due_at is None:
                group.due_at = now
                if self.on_due is not None:
                    self.on_due(flow, group)

    def _has_access(self, user: User, flow: Flow) -> bool:
        return user.site_admin or user.id in self.jobs[flow.job_id].access

    def _group(self, group_id: int) -> tuple[Flow, Group] | None:
        for flow in self.flows.values():
            for group in flow.groups:
                if group.id == group_id:
                    return flow, group
        return None

    # ------------------------------------------------------------------ wire shapes

    def _slot_status(self, flow: Flow, group: Group, seat: Seat, due: set[int]) -> str:
        if seat.decision is not None:
            return seat.decision
        if group.id in due or group.due_at is not None:
            # A member who never voted keeps `due` after their group resolved without them
            # (open question 5): clients must check the group and the flow.
            return "due"
        return "waiting"

    def _approver_rows(self) -> list[dict[str, Any]]:
        rows = []
        for flow in self.flows.values():
            due = {g.id for g in self._due_groups(flow)}
            for group in flow.groups:
                for position, seat in enumerate(group.seats):
                    status = self._slot_status(flow, group, seat, due)
                    sent = max(group.due_at, seat.added_at) if group.due_at and status != "waiting" else None
                    rows.append(
                        {
                            "id": seat.approval_id,
                            "approver_group_id": group.id,
                            "user_id": seat.user_id,
                            "status": status,
                            "sort_order": position,
                            "request_sent_at": iso(sent),
                            "resolved_at": iso(seat.decided_at),
                            "resolved_by_id": seat.user_id if seat.decision else None,
                            "reminder_sent_at": iso(seat.reminder_sent_at),
                            "reminder_sent_by_id": seat.reminder_sent_by_id,
                            "reminders_sent": seat.reminders_sent,
                            "auto_reminders_sent": 0,
                            "send_auto_reminder_at": None,
                            "version_sent": flow.version if sent else None,
                            "created_at": iso(seat.added_at),
                        }
                    )
        return rows

    def _group_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": g.id,
                "approval_flow_id": f.id,
                "approvals_required": g.approvals_required,
                "sort_order": g.sort_order,
                "resolved_at": iso(g.resolved_at),
                "required_for_exception": False,
                "created_at": iso(g.created_at),
            }
            for f in self.flows.values()
            for g in f.groups
        ]

    def _flow_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f.id,
                "job_id": f.job_id,
                "offer_id": f.offer_id,
                "approval_type": f.approval_type,
                "approval_status": f.status,
                "sequential": f.sequential,
                "version": f.version,
                "requested_by_id": f.requested_by,
                "created_at": iso(f.created_at),
            }
            for f in self.flows.values()
        ]

    def _page(
        self, request: web.Request, rows: list[dict[str, Any]], filters: dict[str, str]
    ) -> web.Response:
        """A bare array and, when more follow, `Link: <…?cursor=…>; rel="next"` (v3 paging)."""
        query = request.query
        if "cursor" in query:
            if len(query) > 1:
                return _unprocessable(CURSOR_ALONE)
            held = self._cursors.pop(query["cursor"], None)
            if held is None or held[0] != request.path:
                return _unprocessable("Invalid cursor")
            _, rows, start, per_page = held
        else:
            refused = self._refuse_first_page(query, filters)
            if refused is not None:
                return refused
            per_page = int(query.get("per_page", str(self.page_size)))
            for key, wire_field in filters.items():
                if key in query:
                    wanted = {v.strip().lower() for v in query[key].split(",") if v.strip()}
                    rows = [r for r in rows if str(r.get(wire_field)).lower() in wanted]
            rows = sorted(rows, key=lambda r: -int(r["id"]))
            start = 0
        response = web.json_response(rows[start : start + per_page])
        if start + per_page < len(rows):
            cursor = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()
            self._cursors[cursor] = (request.path, rows, start + per_page, per_page)
            response.headers["Link"] = (
                f'<{self.link_origin or self.url}{request.path}?cursor={cursor}>; rel="next"'
            )
        return response

    def _refuse_first_page(self, query: Mapping[str, str], filters: dict[str, str]) -> web.Response | None:
        """Harvest's 422 for a first page's parameters: unknown ones, per_page out of 1..500, over
        50 ids; None when they are fine."""
        known = {*filters, "per_page", "fields"}
        for key in query:
            if key not in known:
                return _unprocessable({key: "is not a known parameter"})
        raw = query.get("per_page", str(self.page_size))
        if not raw.isdigit():
            return _unprocessable({"per_page": f"`{raw}` is not a number"})
        per_page = int(raw)
        if per_page > 500:
            return _unprocessable({"per_page": f"`{per_page}` number is greater than: 500"})
        if per_page < 1:
            return _unprocessable({"per_page": f"`{per_page}` number is less than: 1"})
        for key in query:
            if key.endswith("ids") and len(query[key].split(",")) > 50:
                return _unprocessable({key: "at most 50 ids"})
        return None

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _id(request: web.Request) -> int | None:
        raw = request.match_info["id"]
        return int(raw) if raw.isdigit() else None

    async def _list_users(self, request: web.Request) -> web.Response:
        rows = [u.wire() for u in self.users.values()]
        return self._page(request, rows, {"ids": "id", "primary_email": "primary_email"})

    async def _list_user_emails(self, request: web.Request) -> web.Response:
        # Secondary addresses only (whether primaries have rows is open question 7).
        rows = [
            {"id": u.id * 100 + n, "user_id": u.id, "email": e, "verified": True}
            for u in self.users.values()
            for n, e in enumerate(u.emails[1:], start=1)
        ]
        return self._page(request, rows, {"email": "email", "user_ids": "user_id"})

    async def _list_approvers(self, request: web.Request) -> web.Response:
        filters = {
            "ids": "id",
            "approver_group_ids": "approver_group_id",
            "user_ids": "user_id",
            "status": "status",
        }
        return self._page(request, self._approver_rows(), filters)

    async def _list_groups(self, request: web.Request) -> web.Response:
        return self._page(request, self._group_rows(), {"ids": "id", "approval_flow_ids": "approval_flow_id"})

    async def _list_flows(self, request: web.Request) -> web.Response:
        return self._page(request, self._flow_rows(), {"ids": "id", "job_ids": "job_id"})

    async def _list_jobs(self, request: web.Request) -> web.Response:
        return self._page(request, [j.wire() for j in self.jobs.values()], {"ids": "id"})

    async def _list_offers(self, request: web.Request) -> web.Response:
        return self._page(request, [o.wire() for o in self.offers.values()], {"ids": "id"})

    async def _list_candidates(self, request: web.Request) -> web.Response:
        return self._page(request, [c.wire() for c in self.candidates.values()], {"ids": "id"})

    def _actor(self, request: web.Request) -> User:
        sub = self._sub(request)
        assert sub is not None  # the middleware refused requests without a live token
        return self.users[sub]

    async def _request_approvals(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _unprocessable({"body": "must be JSON"})
            if body != request_approvals_body():
                return _unprocessable(
                    {"body": f"unexpected fields: {sorted(body) if isinstance(body, dict) else body}"}
                )
        flow = self.flows.get(self._id(request) or 0)
        if flow is None:
            return _error(404, NOT_FOUND)
        if not self._has_access(actor, flow):
            return _error(403, FORBIDDEN)
        if not (actor.site_admin or actor.id in self.can_request):
            return _error(403, "You do not have permission to request approvals.")
        if flow.status != "pending" or flow.requested or not flow.groups:
            return _unprocessable("This approval flow can't be started.")
        self.request(flow.id, actor.id)
        self.decisions.append((str(flow.id), "request", str(actor.id)))
        return web.json_response({"approval_flow_id": flow.id})

    async def _replace_approver(self, request: web.Request) -> web.Response:
        actor = self._actor(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _unprocessable({"body": "must be a JSON object"})
        expected = set(replace_approver_body(remove_user_id=1, add_user_id=2))
        if not isinstance(body, dict) or set(body) != expected:
            return _unprocessable({"body": f"expected exactly {sorted(expected)}"})
        remove_id, add_id = body["remove_user_id"], body["add_user_id"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (remove_id, add_id)):
            return _unprocessable({"body": "user ids must be integers"})
        found = self._group(self._id(request) or 0)
        if found is None:
            return _error(404, NOT_FOUND)
        flow, group = found
        if not self._has_access(actor, flow):
            return _error(403, FORBIDDEN)
        if flow.status != "pending" or group.resolved_at is not None:
            return _unprocessable("Only approvers in unresolved groups may be replaced.")
        seat = next((s for s in group.seats if s.user_id == remove_id and s.decision is None), None)
        if seat is None:
            return _unprocessable({"remove_user_id": "Is not an undecided approver in this group"})
        new = self.users.get(add_id)
        if new is None or new.disabled:
            return _unprocessable({"add_user_id": "Must be the id of an active user"})
        if any(s.user_id == add_id for g in flow.groups for s in g.seats):
            return _unprocessable({"add_user_id": "Is already an approver in this approval flow"})
        if not self._has_access(new, flow):
            return _unprocessable({"add_user_id": "Must have access to this approval flow"})
        group.seats[group.seats.index(seat)] = Seat(add_id, self._next_id(), self.clock())
        self.decisions.append((str(flow.id), "reassign", str(actor.id)))
        self._advance(flow)
        return web.json_response({"approval_flow_id": flow.id, "approver_group_id": group.id})

    async def _ui_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=f"<html><body><h1>Greenhouse sandbox</h1><p>{request.path}</p></body></html>",
            content_type="text/html",
        )


async def demo() -> SandboxSetup:
    """A seeded Greenhouse for `approvals-bot demo`: a sequential two-group offer flow (group 1 due
    for Alice and Bob), a parallel job flow (Carol and Dave due), and a flow not yet requested."""
    sandbox = GreenhouseSandbox(client_id="demo-client-1", client_secret="demo-secret")
    alice, bob, carol, dave = (sandbox.add_person(p) for p in (ALICE, BOB, CAROL, DAVE))
    rita = sandbox.add_user("Rita Recruiter", "rita.recruiter@example.com", site_admin=True)
    service = sandbox.add_user("Approvals Bot", "approvals-bot@example.com", site_admin=True)
    sandbox.can_request.update({dave, rita})

    backend = sandbox.add_job(
        "Senior Backend Engineer", requisition_id="REQ-1042", department="Engineering", office="Berlin"
    )
    designer = sandbox.add_job(
        "Product Designer", requisition_id="REQ-1051", department="Design", office="Remote"
    )
    jordan = sandbox.add_candidate("Jordan", "Rivera")
    offer = sandbox.add_offer(
        backend,
        jordan,
        starts_at="2027-01-11",
        custom={"Salary": "EUR 86,000", "Employment Type": "Full-time", "Signing Bonus": "EUR 5,000"},
    )
    sandbox.add_flow(
        backend,
        [([alice, bob], 1), ([carol], 1)],
        approval_type="offer_candidate",
        offer_id=offer,
        sequential=True,
        requested_by=rita,
    )
    sandbox.add_flow(
        designer, [([carol], 1), ([dave], 1)], approval_type="open_job", sequential=False, requested_by=rita
    )
    sandbox.add_flow(designer, [([alice], 1), ([dave], 1)], approval_type="offer_job", sequential=True)
    sandbox.grant(backend, dave)
    sandbox.grant(designer, bob)

    await sandbox.start()
    return SandboxSetup(
        connector={
            "base_url": sandbox.url,
            "auth_url": sandbox.auth_url,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "service_user_id": service,
            "ui_url": sandbox.url,
        },
        people={p.email: {} for p in (ALICE, BOB, CAROL, DAVE)},
        stop=sandbox.stop,
        describe=(
            f"Greenhouse (Harvest v3) sandbox at {sandbox.url}: an offer for Jordan Rivera waiting on "
            "Alice or Bob, then Carol; a Product Designer job waiting on Carol and Dave; offers on "
            "Product Designer not yet requested (Dave may request them)."
        ),
        extra={"sandbox": sandbox},
    )
