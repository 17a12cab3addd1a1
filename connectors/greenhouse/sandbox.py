"""A Greenhouse Harvest simulator (approvals and what their cards need), for tests and the demo.

Faithful to the Harvest documentation where it speaks: Basic auth with the key as username,
`On-Behalf-Of` on writes, approval flows with sequential or parallel groups, pending approvals per
user that move from "waiting" to "due", request_approvals (403/422), replace_approvers (only in
unresolved groups), `Link: <…>; rel="next"` paging, `X-RateLimit-Limit/Remaining` per window and a
429 that carries neither. Where Greenhouse documents only a status code, the message text is ours.

Out-of-band decisions (`approve`, `reject`, `decide_flow`, `remind`) play the people who use
Greenhouse's own UI, since Harvest cannot approve or reject.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from yarl import URL

from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from connectors.registry import SandboxSetup

Fault = Literal["500", "timeout", "drop"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FORBIDDEN = "You do not have access to that record."
NOT_FOUND = "Resource not found"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _invalid(message: str, field: str) -> web.Response:
    return web.json_response(
        {"message": "Validation error", "errors": [{"message": message, "field": field}]}, status=422
    )


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
            "primary_email_address": self.emails[0] if self.emails else None,
            "emails": list(self.emails),
            "disabled": self.disabled,
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
            "departments": [{"id": self.id * 10, "name": self.department}] if self.department else [],
            "offices": [{"id": self.id * 10 + 1, "name": self.office}] if self.office else [],
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
        keyed = {
            name.lower().replace(" ", "_"): {"name": name, "type": "short_text", "value": value}
            for name, value in self.custom.items()
        }
        return {
            "id": self.id,
            "version": 1,
            "application_id": self.application_id,
            "job_id": self.job_id,
            "candidate_id": self.candidate_id,
            "starts_at": self.starts_at,
            "status": "unresolved",
            "custom_fields": {k: v["value"] for k, v in keyed.items()},
            "keyed_custom_fields": keyed,
        }


@dataclass
class Seat:
    """One approver in one group, with what they did and what Greenhouse sent them."""

    user_id: int
    approval_id: int
    added_at: datetime
    decision: str | None = None
    reminder_sent_at: datetime | None = None
    reminders_sent: int = 0
    reminder_sent_by_user_id: int | None = None


@dataclass
class Group:
    id: int
    priority: int
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


@dataclass(frozen=True)
class Write:
    """Every write that reached the sandbox, applied or not: who it claimed to be on behalf of."""

    method: str
    path: str
    on_behalf_of: str | None
    status: int


class GreenhouseSandbox:
    def __init__(
        self,
        *,
        api_key: str = "sandbox-harvest-key",
        page_size: int = 100,
        rate_limit: int = 50,
        rate_window: float = 10.0,
        slow_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api_key = api_key
        self.page_size = page_size
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.slow_seconds = slow_seconds
        self.clock = clock
        self.users: dict[int, User] = {}
        self.jobs: dict[int, Job] = {}
        self.candidates: dict[int, Candidate] = {}
        self.offers: dict[int, Offer] = {}
        self.flows: dict[int, Flow] = {}
        self.can_request: set[int] = set()
        self.denied: set[str] = set()  # endpoints ("candidates", "offers", …) the key may not use
        # Build `Link` headers on another origin (a misbehaving proxy): clients must not follow.
        self.link_origin: URL | None = None
        self.decisions: list[tuple[str, str, str]] = []
        self.writes: list[Write] = []
        self.requests: list[tuple[float, str, str, int]] = []  # (loop time, method, path, status)
        self._ids = itertools.count(4_000_001)
        self._planned: list[tuple[str, str | None]] = []  # (fault or "429", only this method)
        self._window_start = 0.0
        self._window_count = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware])
        v1 = "/v1"
        app.router.add_get(f"{v1}/users", self._list_users)
        app.router.add_get(f"{v1}/users/{{id}}", self._get_user)
        app.router.add_get(f"{v1}/users/{{id}}/pending_approvals", self._pending_approvals)
        app.router.add_get(f"{v1}/approval_flows/{{id}}", self._get_flow)
        app.router.add_post(f"{v1}/approval_flows/{{id}}/request_approvals", self._request_approvals)
        app.router.add_put(f"{v1}/approver_groups/{{id}}/replace_approvers", self._replace_approvers)
        app.router.add_get(f"{v1}/jobs/{{id}}", self._get_job)
        app.router.add_get(f"{v1}/jobs/{{id}}/approval_flows", self._job_flows)
        app.router.add_get(f"{v1}/offers/{{id}}", self._get_offer)
        app.router.add_get(f"{v1}/candidates/{{id}}", self._get_candidate)
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

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (a "timeout" fault applies after the client gave up)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # ------------------------------------------------------------------ faults and limits

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` requests (only those with HTTP `method`, when given): "500" answers
        500; "timeout" waits `slow_seconds`, then applies and answers; "drop" closes the
        connection without applying anything."""
        self._planned.extend([(fault, method)] * count)

    def throttle_next(self, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` requests (with `method`, when given) answer 429, as Greenhouse does
        when the window is spent."""
        self._planned.extend([("429", method)] * count)

    def _take(self, request: web.Request) -> str | None:
        """The first planned fault meant for this request (its method, or any method)."""
        for index, (what, method) in enumerate(self._planned):
            if method in (None, request.method):
                del self._planned[index]
                return what
        return None

    @property
    def throttled(self) -> int:
        return sum(1 for r in self.requests if r[3] == 429)

    def _rate(self) -> tuple[bool, dict[str, str]]:
        """A fixed window of `rate_window` seconds allowing `rate_limit` requests."""
        now = asyncio.get_running_loop().time()
        if now - self._window_start >= self.rate_window:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        if self._window_count > self.rate_limit:
            return False, {}
        remaining = self.rate_limit - self._window_count
        return True, {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining)}

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except ValueError:
            return False
        return decoded == f"{self.api_key}:"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._in_flight += 1
        self._idle.clear()
        status = 0
        try:
            response = await self._handle(request, handler)
            status = response.status
            return response
        finally:
            self.requests.append((asyncio.get_running_loop().time(), request.method, request.path, status))
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        fault = self._take(request)
        if fault == "500":
            return _error(500, "Server Error -- We had a problem with our server. Try again later.")
        if fault == "drop":
            request.protocol.force_close()
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault == "timeout":
            await request.read()  # keep the body: the client hangs up before we apply it
            await asyncio.sleep(self.slow_seconds)
        allowed, headers = self._rate()
        if fault == "429" or not allowed:
            # Greenhouse's 429 carries no X-RateLimit-* headers (and no Retry-After).
            return web.json_response({"message": "Too Many Requests"}, status=429)
        if not self._authorised(request):
            response: web.StreamResponse = _error(401, "Invalid Basic Auth credentials")
        elif request.path.split("/")[2] in self.denied:
            # Harvest keys are granted endpoint by endpoint in Dev Center.
            response = _error(403, FORBIDDEN)
        elif request.method in WRITE_METHODS:
            response = await handler(request)
            obo = request.headers.get("On-Behalf-Of")
            self.writes.append(Write(request.method, request.path, obo, response.status))
        else:
            response = await handler(request)
        response.headers.update(headers)
        return response

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
        groups: Sequence[tuple[Sequence[int], int]],
        *,
        approval_type: str = "open_job",
        offer_id: int | None = None,
        sequential: bool = True,
        requested_by: int | None = None,
    ) -> int:
        """A flow with `groups` = [(approver ids, approvals required), …] in priority order.
        With `requested_by`, approvals are requested at once (the first group becomes due)."""
        now = self.clock()
        built = [
            Group(
                self._next_id(),
                priority,
                required,
                [Seat(user_id, self._next_id(), now) for user_id in approvers],
                now,
            )
            for priority, (approvers, required) in enumerate(groups)
        ]
        flow = Flow(self._next_id(), job_id, approval_type, sequential, built, offer_id=offer_id)
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
                    seat.reminder_sent_by_user_id = by

    def _decide(self, flow_id: int, user_id: int, decision: str) -> None:
        flow = self.flows[flow_id]
        for group in self._due_groups(flow):
            for seat in group.seats:
                if seat.user_id == user_id and seat.decision is None:
                    seat.decision = decision
                    action = "approve" if decision == "approved" else "reject"
                    self.decisions.append((str(flow_id), action, str(user_id)))
                    self._advance(flow)
                    return
        raise ValueError(f"user {user_id} has nothing due in flow {flow_id}")

    # ------------------------------------------------------------------ flow rules

    def _due_groups(self, flow: Flow) -> list[Group]:
        if not flow.requested or flow.status != "pending":
            return []
        unresolved = sorted((g for g in flow.groups if g.resolved_at is None), key=lambda g: g.priority)
        if not unresolved:
            return []
        if not flow.sequential:
            return unresolved
        return [g for g in unresolved if g.priority == unresolved[0].priority]

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
                return
        for group in self._due_groups(flow):
            if group.due_at is None:
                group.due_at = now

    def _has_access(self, user: User, flow: Flow) -> bool:
        return user.site_admin or user.id in self.jobs[flow.job_id].access

    def _group(self, group_id: int) -> tuple[Flow, Group] | None:
        for flow in self.flows.values():
            for group in flow.groups:
                if group.id == group_id:
                    return flow, group
        return None

    # ------------------------------------------------------------------ wire shapes

    def _flow_wire(self, flow: Flow) -> dict[str, Any]:
        return {
            "id": flow.id,
            "offer_id": flow.offer_id,
            "sequential": flow.sequential,
            "version": flow.version,
            "approval_type": flow.approval_type,
            "approval_status": flow.status,
            "job_id": flow.job_id,
            "requested_by_user_id": flow.requested_by,
            "approver_groups": [
                {
                    "id": g.id,
                    "approvals_required": g.approvals_required,
                    "created_at": iso(g.created_at),
                    "resolved_at": iso(g.resolved_at),
                    "priority": g.priority,
                    "job_id": flow.job_id,
                    "offer_id": None,
                    "approvers": [
                        {
                            "id": s.user_id,
                            "name": self.users[s.user_id].name,
                            "employee_id": self.users[s.user_id].employee_id,
                            "email_addresses": list(self.users[s.user_id].emails),
                        }
                        for s in g.seats
                    ],
                }
                for g in flow.groups
            ],
        }

    def _pending_rows(self, user_id: int, kind: str | None) -> list[dict[str, Any]]:
        rows = []
        for flow in self.flows.values():
            if flow.status != "pending":
                continue
            if kind is not None and (kind == "offer") != (flow.offer_id is not None):
                continue
            due = {g.id for g in self._due_groups(flow)}
            for group in flow.groups:
                if group.resolved_at is not None:
                    continue
                for seat in group.seats:
                    if seat.user_id != user_id or seat.decision is not None:
                        continue
                    is_due = group.id in due
                    sent = max(group.due_at, seat.added_at) if is_due and group.due_at else None
                    rows.append(
                        {
                            "id": seat.approval_id,
                            "status": "due" if is_due else "waiting",
                            "created_at": iso(seat.added_at),
                            "resolved_at": None,
                            "request_sent_at": iso(sent),
                            "reminder_sent_at": iso(seat.reminder_sent_at),
                            "reminders_sent": seat.reminders_sent,
                            "approver_group_id": group.id,
                            "reminder_sent_by_user_id": seat.reminder_sent_by_user_id,
                            "hiring_plan_id": flow.job_id,
                            "offer_id": flow.offer_id,
                            "approval_flow_id": flow.id,
                            "approval_flow_type": flow.approval_type,
                            "approval_flow_status": flow.status,
                        }
                    )
        return sorted(rows, key=lambda r: r["id"])

    def _page(self, request: web.Request, rows: list[Any]) -> web.Response:
        """One page and, when more follow, a `Link: <…>; rel="next"` (Harvest's newer scheme)."""
        try:
            per_page = int(request.query.get("per_page", self.page_size))
            page = int(request.query.get("page", 1))
        except ValueError:
            return _invalid("Must be an integer", "per_page")
        if not 1 <= per_page <= 500 or page < 1:
            return _invalid("Must be an integer between 1 and 500", "per_page")
        start = (page - 1) * per_page
        response = web.json_response(rows[start : start + per_page])
        if start + per_page < len(rows):
            query = dict(request.query)
            query.update(page=str(page + 1), per_page=str(per_page))
            next_url = request.url.with_query(query)
            if self.link_origin:
                next_url = next_url.with_scheme(self.link_origin.scheme).with_host(
                    self.link_origin.host or ""
                )
                next_url = next_url.with_port(self.link_origin.port)
            response.headers["Link"] = f'<{next_url}>; rel="next"'
        return response

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _id(request: web.Request) -> int | None:
        raw = request.match_info["id"]
        return int(raw) if raw.isdigit() else None

    async def _list_users(self, request: web.Request) -> web.Response:
        email = request.query.get("email", "").strip().lower()
        users = sorted(self.users.values(), key=lambda u: u.id)
        if email:
            users = [u for u in users if email in (e.lower() for e in u.emails)]
        return self._page(request, [u.wire() for u in users])

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(self._id(request) or 0)
        return web.json_response(user.wire()) if user else _error(404, NOT_FOUND)

    async def _pending_approvals(self, request: web.Request) -> web.Response:
        user_id = self._id(request) or 0
        if user_id not in self.users:
            return _error(404, NOT_FOUND)
        kind = request.query.get("type") or None
        if kind not in (None, "job", "offer"):
            return _invalid("Must be one of: job, offer", "type")
        return self._page(request, self._pending_rows(user_id, kind))

    async def _get_flow(self, request: web.Request) -> web.Response:
        flow = self.flows.get(self._id(request) or 0)
        return web.json_response(self._flow_wire(flow)) if flow else _error(404, NOT_FOUND)

    async def _job_flows(self, request: web.Request) -> web.Response:
        job_id = self._id(request) or 0
        if job_id not in self.jobs:
            return _error(404, NOT_FOUND)
        flows = sorted((f for f in self.flows.values() if f.job_id == job_id), key=lambda f: f.id)
        return self._page(request, [self._flow_wire(f) for f in flows])

    async def _get_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(self._id(request) or 0)
        return web.json_response(job.wire()) if job else _error(404, NOT_FOUND)

    async def _get_offer(self, request: web.Request) -> web.Response:
        offer = self.offers.get(self._id(request) or 0)
        return web.json_response(offer.wire()) if offer else _error(404, NOT_FOUND)

    async def _get_candidate(self, request: web.Request) -> web.Response:
        candidate = self.candidates.get(self._id(request) or 0)
        return web.json_response(candidate.wire()) if candidate else _error(404, NOT_FOUND)

    def _on_behalf_of(self, request: web.Request) -> User | web.Response:
        raw = request.headers.get("On-Behalf-Of", "").strip()
        if not raw:
            return _invalid("Missing header: On-Behalf-Of", "On-Behalf-Of")
        user = self.users.get(int(raw)) if raw.isdigit() else None
        if user is None or user.disabled:
            return _invalid("On-Behalf-Of must be the id of an active user", "On-Behalf-Of")
        return user

    async def _request_approvals(self, request: web.Request) -> web.Response:
        actor = self._on_behalf_of(request)
        if isinstance(actor, web.Response):
            return actor
        flow = self.flows.get(self._id(request) or 0)
        if flow is None:
            return _error(404, NOT_FOUND)
        if not self._has_access(actor, flow):
            return _error(403, FORBIDDEN)
        if not (actor.site_admin or actor.id in self.can_request):
            return _error(403, "You do not have permission to request approvals.")
        if flow.status != "pending" or flow.requested or not flow.groups:
            return _invalid("This approval flow can't be started.", "approval_flow")
        self.request(flow.id, actor.id)
        self.decisions.append((str(flow.id), "request", str(actor.id)))
        return web.json_response({"success": True, "approval_flow_id": flow.id})

    async def _replace_approvers(self, request: web.Request) -> web.Response:
        actor = self._on_behalf_of(request)
        if isinstance(actor, web.Response):
            return actor
        found = self._group(self._id(request) or 0)
        if found is None:
            return _error(404, NOT_FOUND)
        flow, group = found
        if not self._has_access(actor, flow):
            return _error(403, FORBIDDEN)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _invalid("Must be a JSON object", "body")
        remove_id, add_id = body.get("remove_user_id"), body.get("add_user_id")
        if not isinstance(remove_id, int) or isinstance(remove_id, bool):
            return _invalid("Must be a user id", "remove_user_id")
        if not isinstance(add_id, int) or isinstance(add_id, bool):
            return _invalid("Must be a user id", "add_user_id")
        if flow.status != "pending" or group.resolved_at is not None:
            return _invalid("Only approvers in unresolved groups may be replaced.", "approver_group_id")
        seat = next((s for s in group.seats if s.user_id == remove_id), None)
        if seat is None:
            return _invalid("Is not an approver in this group", "remove_user_id")
        new = self.users.get(add_id)
        if new is None or new.disabled:
            return _invalid("Must be the id of an active user", "add_user_id")
        if any(s.user_id == add_id for s in group.seats):
            return _invalid("Is already an approver in this group", "add_user_id")
        if not self._has_access(new, flow):
            return _invalid("Must have access to this approval flow", "add_user_id")
        group.seats[group.seats.index(seat)] = Seat(add_id, self._next_id(), self.clock())
        self.decisions.append((str(flow.id), "reassign", str(actor.id)))
        self._advance(flow)
        return web.json_response(
            {
                "success": "true",
                "message": "Approver group updated.",
                "approval_flow_id": flow.id,
                "approver_group_id": group.id,
                "removed_user_id": remove_id,
                "added_user_id": add_id,
            }
        )

    async def _ui_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text=f"<html><body><h1>Greenhouse sandbox</h1><p>{request.path}</p></body></html>",
            content_type="text/html",
        )


async def demo() -> SandboxSetup:
    """A seeded Greenhouse for `approvals-bot demo`: a sequential two-group offer flow (group 1 due
    for Alice and Bob), a parallel job flow (Carol and Dave due), and a flow not yet requested."""
    sandbox = GreenhouseSandbox(api_key="demo-harvest-key")
    alice, bob, carol, dave = (sandbox.add_person(p) for p in (ALICE, BOB, CAROL, DAVE))
    rita = sandbox.add_user("Rita Recruiter", "rita.recruiter@example.com", site_admin=True)
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
        connector={"base_url": sandbox.url, "api_key": sandbox.api_key, "ui_url": sandbox.url},
        people={p.email: {} for p in (ALICE, BOB, CAROL, DAVE)},
        stop=sandbox.stop,
        describe=(
            f"Greenhouse sandbox at {sandbox.url}: an offer for Jordan Rivera waiting on Alice or Bob, "
            "then Carol; a Product Designer job waiting on Carol and Dave; offers on Product Designer "
            "not yet requested (Dave may request them)."
        ),
        extra={"sandbox": sandbox},
    )
