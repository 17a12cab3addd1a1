"""A simulator of Herzum Approval's REST API and the Jira calls around it, on 127.0.0.1.

Documented behaviour kept: filters (username optional, status, issueids), the paging envelope
with startAt/maxResults, the action call with its username/password/comment rules and
configuration switches, every documented error body `{errorCode, errorMessage, status}`. Jira's
own side: a password is taken as HTTP Basic, a personal access token only as
`Authorization: Bearer` (a token sent as a Basic password is a 401, as on Jira Data Center), and
Jira's optional rate limiting answers 429 with Retry-After. Our own assumptions (not
documented): who may list for another user (the service account), that a listing without
`username` holds every approval the caller can see (all of them for the service account), and
that a decided approval answers `issueapproval.action.unauthorized` (the connector re-reads to
tell the two apart).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from connectors.registry import SandboxSetup
from connectors.sandbox_kit import CONTROL, KitSandbox, SandboxKit

API = "/rest/herzum-hap-services/1.0/api"
SERVICE_USER, SERVICE_PASSWORD = "jira-bot", "jira-bot-password"
_EMPTY = {
    "username": ("issueapproval.username.empty", "The username cannot be empty"),
    "status": ("issueapproval.status.empty", "If the paramenter status is present it cannot be empty "),
    "issueids": ("issue.ids.empty", "If the issueids parameter is present it cannot be empty"),
    "startAt": ("start.at.empty", "If the startAt parameter is present it cannot be empty"),
    "maxResults": ("max.results.empty", "If the maxResults parameter is present it cannot be empty"),
}


def pat_for(name: str) -> str:
    """A Jira Data Center personal access token: 44 base64 characters, like the real ones."""
    return base64.b64encode(hashlib.sha256(f"pat:{name}".encode()).digest()[:33]).decode()


STATUS_NAMES = {"1": "Open", "3": "In Progress", "10001": "Awaiting approval", "10002": "Done"}


@dataclass
class User:
    name: str
    display: str
    email: str | None
    password: str
    token: str


# Who the request authenticated as, set by the auth middleware for the handlers.
CALLER = web.RequestKey("caller", User)


@dataclass
class Approval:
    id: int
    issue_id: int
    name: str
    transition: str
    source_status: str
    approvers: set[str]
    status: str = "PENDING"
    approver_user: str | None = None
    date: str | None = None
    comment: str | None = None
    submitted: str = field(default_factory=lambda: datetime.now(UTC).strftime("%d/%m/%Y %H:%M:%S"))

    def wire(self, issue_status: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "issueId": self.issue_id,
            "approvalId": 2,
            "approvalName": self.name,
            "issueStatus": issue_status,
            "approvalStatus": self.status,
            "transitionId": "11",
            "transitionName": self.transition,
            "sourceStatusId": self.source_status,
            "type": "SINGLE_ISSUE",
            "notificationDate": "Not Sent",
            "submittedDate": self.submitted,
            "mra": -1.0,
            "mrr": -1.0,
            "awt": False,
            "nac": False,
            "rac": False,
            "sa": False,
            "abstainActionStatus": 0,
            "isOptionalApproval": False,
            "approverUser": self.approver_user,
            "date": self.date,
        }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errorCode": code, "errorMessage": message, "status": status}, status=status)


class HerzumSandbox(KitSandbox):
    """The vendor, seeded by helpers. `decisions` lists what the API applied; `served` every
    request as "METHOD /path?query". Faults, that request log and the control endpoints come from
    connectors/sandbox_kit.py; `rate_limit_next` is Jira's own 429 and `log` notes the auth scheme
    each request came with."""

    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.kit = SandboxKit(applies_to=lambda _: True, slow_seconds=slow_seconds)
        self.users: dict[str, User] = {}
        self.issues: dict[int, dict[str, str]] = {}
        self.approvals: dict[int, Approval] = {}
        self.decisions: list[tuple[str, str, str]] = []
        # (method, path, auth scheme) of every request, for tests that count calls.
        self.log: list[tuple[str, str, str]] = []
        self.rate_limit_next = 0
        self.require_comment = False
        self.require_password = False
        self.abstain_enabled = False
        self.reset_enabled = True
        self._ids = itertools.count(101)
        self._issue_ids = itertools.count(12301)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.add_user(SERVICE_USER, "Approvals Bot", None, SERVICE_PASSWORD)
        for person in (ALICE, BOB, CAROL, DAVE):
            self.add_person(person)

    # ---- seeding -----------------------------------------------------------------------------------

    def add_user(self, name: str, display: str, email: str | None, password: str) -> User:
        user = User(name, display, email, password, pat_for(name))
        self.users[name] = user
        return user

    def add_person(self, person: DemoPerson) -> User:
        return self.add_user(person.handle, person.name, person.email, f"{person.handle}-jira-password")

    def credentials(self, who: str, *, token: bool = False) -> dict[str, str]:
        user = self.users[who]
        return {"username": user.name, "secret": user.token if token else user.password}

    def add_issue(self, key: str, summary: str, status: str = "10001") -> int:
        issue_id = next(self._issue_ids)
        self.issues[issue_id] = {"key": key, "summary": summary, "status": status}
        return issue_id

    def add_approval(
        self,
        issue_id: int,
        approvers: Iterable[str],
        *,
        name: str = "Change approval",
        transition: str = "Release",
        source_status: str = "10001",
    ) -> int:
        approval = Approval(next(self._ids), issue_id, name, transition, source_status, set(approvers))
        self.approvals[approval.id] = approval
        return approval.id

    def decide(self, approval_id: int, status: str, by: str = "admin") -> None:
        """Decided in Jira's UI, outside the bot (not recorded in `decisions`)."""
        approval = self.approvals[approval_id]
        approval.status, approval.approver_user = status.upper(), by
        approval.date = datetime.now(UTC).strftime("%d/%m/%Y %H:%M:%S")

    # ---- server ------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # The kit first: a fault stands for trouble in front of Jira, before it authenticates.
        app = web.Application(middlewares=[self.kit.middleware, self._middleware])
        self.kit.add_control_routes(app)
        app.router.add_get(f"{API}/issueapprovals", self._list)
        app.router.add_post(f"{API}/issueapprovals/{{id}}/action", self._action)
        app.router.add_get("/rest/api/2/issue/{id}", self._issue)
        app.router.add_get("/rest/api/2/status/{id}", self._status)
        app.router.add_get("/rest/api/2/myself", self._myself)
        app.router.add_get("/rest/api/2/user", self._user)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.kit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def connector_settings(self, *, token: bool = False, **overrides: Any) -> dict[str, Any]:
        secret = {"token": self.users[SERVICE_USER].token} if token else {"password": SERVICE_PASSWORD}
        return {"base_url": self.url, "username": SERVICE_USER} | secret | overrides

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(f"{CONTROL}/"):
            return await handler(request)
        scheme = (request.headers.get("Authorization", "").split() or [" "])[0]  # " ": none sent
        self.log.append((request.method, request.path, scheme))
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return web.json_response(
                {"errorMessages": ["Rate limit exceeded."]}, status=429, headers={"Retry-After": "1"}
            )
        caller = self._caller(request)
        if caller is None:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        request[CALLER] = caller
        return await handler(request)

    def _caller(self, request: web.Request) -> User | None:
        """Basic takes a password; a personal access token is taken only as Bearer."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[7:].strip()
            return next((u for u in self.users.values() if token and u.token == token), None)
        if not header.startswith("Basic "):
            return None
        try:
            name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        user = self.users.get(name)
        return user if user is not None and secret == user.password else None

    async def _list(self, request: web.Request) -> web.Response:
        q = request.query
        for key, (code, message) in _EMPTY.items():
            if key in q and not q[key].strip():
                return _error(400, code, message)
        caller: User = request[CALLER]
        approvals = list(self.approvals.values())
        if "username" in q:
            if q["username"] not in self.users:
                return _error(404, "issueapproval.user.notfound", "User not found")
            if q["username"] != caller.name and caller.name != SERVICE_USER:
                return _error(403, "issueapproval.action.unauthorized", "Not allowed")
            approvals = [a for a in approvals if q["username"] in a.approvers]
        if "status" in q:
            if q["status"] not in ("PENDING", "APPROVED", "REJECTED", "ABSTAINED"):
                return _error(400, "issueapproval.status.notexist", "No such status")
            approvals = [a for a in approvals if a.status == q["status"]]
        if "issueids" in q:
            ids = {int(i) for i in q["issueids"].split(",") if i.strip().isdigit()}
            approvals = [a for a in approvals if a.issue_id in ids]
        wires = [a.wire(self.issues[a.issue_id]["status"]) for a in sorted(approvals, key=lambda a: a.id)]
        if "startAt" in q or "maxResults" in q:
            start_text, size_text = q.get("startAt", "0"), q.get("maxResults", "50")
            if not start_text.isdigit():
                return _error(404, "invalid.start.at", "startAt parameter is invalid")
            if not size_text.isdigit():
                return _error(404, "invalid.max.results", "maxResults parameter is invalid")
            start, size = int(start_text), int(size_text)
            return web.json_response(
                {
                    "startAt": start,
                    "maxResults": size,
                    "total": len(wires),
                    "issueApprovals": wires[start : start + size],
                }
            )
        return web.json_response(wires)

    async def _action(self, request: web.Request) -> web.Response:
        approval = (
            self.approvals.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        )
        if approval is None:
            return _error(404, "issueapproval.notexist", "The approval does not exist")
        caller: User = request[CALLER]
        body = await request.json()
        action = body.get("action")
        if not action:
            return _error(400, "issueapproval.action.required", "Action is required")
        if action not in ("APPROVE", "REJECT", "ABSTAIN", "RESET"):
            return _error(400, "issueapproval.action.notexist", "No such action")
        if body.get("username") and body["username"] != caller.name:
            return _error(403, "username.notcorrespond", "Username does not correspond to the logged-in user")
        if self.require_password:
            if not body.get("password"):
                return _error(400, "issueapproval.pwd.required", "Password is required")
            if body["password"] != caller.password:
                return _error(403, "issueapproval.credentials.wrong", "Wrong credentials")
        if self.require_comment and not body.get("comment"):
            return _error(400, "issueapproval.comment.required", "Comment is required")
        if (action == "ABSTAIN" and not self.abstain_enabled) or (
            action == "RESET" and not self.reset_enabled
        ):
            return _error(403, "issueapproval.action.disabled", f"{action} is disabled")
        in_source = self.issues[approval.issue_id]["status"] == approval.source_status
        if (
            caller.name not in approval.approvers
            or (approval.status != "PENDING" and action != "RESET")
            or not in_source
        ):
            return _error(
                403, "issueapproval.action.unauthorized", "You are not authorized to perform this action"
            )
        approval.status = {
            "APPROVE": "APPROVED",
            "REJECT": "REJECTED",
            "ABSTAIN": "ABSTAINED",
            "RESET": "PENDING",
        }[action]
        approval.approver_user, approval.comment = caller.name, body.get("comment")
        approval.date = datetime.now(UTC).strftime("%d/%m/%Y %H:%M:%S")
        self.decisions.append((str(approval.id), action.lower(), caller.name))
        return web.json_response(approval.wire(self.issues[approval.issue_id]["status"]))

    async def _issue(self, request: web.Request) -> web.Response:
        issue = self.issues.get(int(request.match_info["id"])) if request.match_info["id"].isdigit() else None
        if issue is None:
            return web.json_response({"errorMessages": ["Issue does not exist"]}, status=404)
        status = issue["status"]
        return web.json_response(
            {
                "id": request.match_info["id"],
                "key": issue["key"],
                "fields": {
                    "summary": issue["summary"],
                    "status": {"id": status, "name": STATUS_NAMES.get(status, status)},
                },
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        status = request.match_info["id"]
        return web.json_response({"id": status, "name": STATUS_NAMES.get(status, status)})

    async def _user(self, request: web.Request) -> web.Response:
        name = request.query.get("username", "")
        user = self.users.get(name)
        if user is None:
            return web.json_response(
                {"errorMessages": [f"The user named '{name}' does not exist"], "errors": {}}, status=404
            )
        body: dict[str, Any] = {"name": user.name, "displayName": user.display, "active": True}
        if user.email:
            body["emailAddress"] = user.email
        return web.json_response(body)

    async def _myself(self, request: web.Request) -> web.Response:
        user: User = request[CALLER]
        return web.json_response({"name": user.name, "displayName": user.display, "emailAddress": user.email})


async def demo() -> SandboxSetup:
    """Approvals on realistic issues; one waits for its issue to reach its source status."""
    sandbox = HerzumSandbox()
    ops = sandbox.add_issue("OPS-42", "Rotate the payment gateway certificates")
    sandbox.add_approval(ops, ["alice", "bob"], name="Security sign-off", transition="Release")
    hr = sandbox.add_issue("HR-7", "New hire laptop budget")
    sandbox.add_approval(hr, ["alice"], name="Budget approval", transition="Order")
    later = sandbox.add_issue("OPS-43", "Migrate the ledger database", status="3")
    sandbox.add_approval(later, ["alice", "carol"], name="DBA approval", transition="Go live")
    await sandbox.start()
    return SandboxSetup(
        connector=sandbox.connector_settings(),
        people={p.email: sandbox.credentials(p.handle) for p in (ALICE, BOB, CAROL, DAVE)},
        stop=sandbox.stop,
        describe="Herzum Approval for Jira: three approvals, one not yet in its source status",
        extra={"sandbox": sandbox},
    )
