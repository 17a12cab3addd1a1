"""An Approval Path for Jira simulator (plus the bit of Jira Cloud it needs) on one local server.

    <url>/webapi/...   the Approval Path Web API (Bearer key): approvals per issue, definitions,
                       create and delete, with the key's privileges and "Change Performer Origin"
    <url>/jira/...     Jira Cloud REST v3 (jira_sandbox.py) and a small browse page per issue
                       where demo users decide steps, as they would in the Jira issue panel

What the vendor document leaves open is filled in as NOTES.md section 5 infers it, and marked:
- path status: IN_PROGRESS, SUCCESS, REJECTED, EXPIRED (only the first two are documented);
- step status: WAITING, IN_PROGRESS, SUCCESS, REJECTED; decision ACCEPTED or REJECTED;
- `activeSteps` repeats the active steps whole;
- error bodies `{"message": "..."}` (none are documented), with the failure cases the document
  names: an unknown or empty performer without a default user, a performer outside the key's
  group, a key without the privilege;
- a decision in the issue panel changes the issue's `updated` stamp (`vote(..., touch_issue=False)`
  simulates a site where it does not).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

from aiohttp import web

from connectors.approval_path.jira_sandbox import JiraIssueRecord, JiraSite
from connectors.base import Status
from connectors.people import ALICE, BOB, CAROL, CAST, DAVE, MALLORY, DemoPerson
from connectors.registry import SandboxSetup
from connectors.sandbox_kit import Fault, KitSandbox, SandboxKit

API_KEY = "ap-sandbox-9f3c2e1d7b"
JIRA_EMAIL = "approvals-bot@example.com"
JIRA_TOKEN = "jira-sandbox-token-41d8"

# Atlassian account ids of the cast (Mallory has no Atlassian account).
ACCOUNTS: dict[str, str] = {
    ALICE.email: "557058:a11ce000-0000-4000-8000-000000000001",
    BOB.email: "557058:b0b00000-0000-4000-8000-000000000002",
    CAROL.email: "557058:ca401000-0000-4000-8000-000000000003",
    DAVE.email: "557058:dave0000-0000-4000-8000-000000000004",
}

# A Jira user whose profile hides her email (no Slack account in the cast).
ERIN_ACCOUNT = "557058:e4170000-0000-4000-8000-000000000005"

Who = DemoPerson | str
_DECIDING = ("APPROVAL", "CONSENT")


def account_of(who: Who) -> str:
    return ACCOUNTS[who.email] if isinstance(who, DemoPerson) else who


def _ap_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _message(status: int, text: str) -> web.Response:
    return web.json_response({"message": text}, status=status)


@dataclass
class Step:
    """A step of a definition, and (copied) of a running path."""

    type: str
    action: str = "APPROVAL"
    user_id: str | None = None
    display_name: str | None = None
    group_id: str | None = None
    email: str | None = None
    parallel: int | None = None
    required_votes: int = 1
    required_reject_votes: int = 1
    status: str = "WAITING"
    decision: str | None = None
    decision_date: str | None = None
    accepts: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)

    def copy(self) -> Step:
        return Step(
            self.type,
            self.action,
            self.user_id,
            self.display_name,
            self.group_id,
            self.email,
            self.parallel,
            self.required_votes,
            self.required_reject_votes,
        )

    @property
    def deciding(self) -> bool:
        return self.action in _DECIDING

    def wire(self, *, definition: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "parallelGroupNumber": self.parallel,
            "action": self.action,
        }
        if self.type == "USER":
            data |= {"userId": self.user_id, "displayName": self.display_name}
        elif self.type == "GROUP":
            data |= {
                "groupId": self.group_id,
                "displayName": self.display_name,
                "requiredVotes": self.required_votes,
                "requiredRejectVotes": self.required_reject_votes,
                "approvalCreatorExcluded": False,
                "skipFromApprovalWhenEmpty": False,
            }
        elif self.type == "EMAIL":
            data["email"] = self.email
        if definition:
            return data | {"lastUpdated": None, "issueWatchersNotification": "ENABLED"}
        return data | {
            "status": self.status,
            "decision": self.decision,
            "decisionDate": self.decision_date,
            "lastUpdated": None,
        }


@dataclass
class Definition:
    id: str
    name: str
    steps: list[Step]
    project_id: str | None = None
    description: str = ""

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "collectionId": self.project_id,
            "steps": [s.wire(definition=True) for s in self.steps],
            "rejectionSteps": [],
            "createApprovalCondition": None,
            "availableForJSMCustomers": False,
        }


@dataclass
class Approval:
    id: str
    definition_id: str
    name: str
    summary: str
    issue: JiraIssueRecord
    steps: list[Step]
    status: str = "IN_PROGRESS"
    modification_date: str = ""

    @property
    def external_id(self) -> str:
        return f"{self.issue.key}:{self.id}"

    def active(self) -> list[Step]:
        return [s for s in self.steps if s.status == "IN_PROGRESS"]

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "definitionId": self.definition_id,
            "name": self.name,
            "summary": self.summary,
            "collectionId": self.issue.project_id,
            "refId": self.issue.id,
            "steps": [s.wire() for s in self.steps],
            "status": self.status,
            "activeSteps": [s.wire() for s in self.active()],
            "modificationDate": self.modification_date,
        }


class ApprovalPathSandbox(KitSandbox):
    """The vendor, seeded by helpers; `decisions` lists what the API applied (start, cancel)."""

    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        # Faults, the request log and the control endpoints: connectors/sandbox_kit.py. The Jira
        # pages a person clicks in (/jira/browse/) are never faulted nor logged.
        self.kit = SandboxKit(
            applies_to=lambda r: not r.path.startswith("/jira/browse/"),
            slow_seconds=slow_seconds,
            error_response=_message,
        )
        self.api_key = API_KEY
        self._last = datetime.now(UTC)
        self.jira = JiraSite(email=JIRA_EMAIL, token=JIRA_TOKEN, stamp=self._now)
        for person in CAST:
            if person.email in ACCOUNTS:
                self.jira.add_user(ACCOUNTS[person.email], person.name, person.email)
        # Jira's groups (the group steps name them; Jira lists their members).
        self.groups: dict[str, tuple[str, set[str]]] = self.jira.groups
        self.definitions: dict[str, Definition] = {}
        self.approvals: dict[str, list[Approval]] = {}
        # The API key's settings (vendor document: privileges and "Change Performer Origin").
        self.privileges: set[str] = {"list", "definitions", "create", "delete"}
        self.performer_origin: Literal["api_call", "fixed"] = "api_call"
        self.fixed_performer: str | None = None
        self.default_performer: str | None = None
        self.performer_group: str | None = self.add_group(
            "approval-path-users", [ALICE, BOB, CAROL], group_id="0a9b1c2d-0000-4000-8000-0000000000ap"
        )
        self.decisions: list[tuple[str, str, str]] = []
        self._rate_limits: list[str] = []
        self._ids = 100
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- server --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # The kit first: a fault stands for trouble in front of the vendor.
        app = web.Application(middlewares=[self.kit.middleware, self._rate_limit_middleware])
        self.kit.add_control_routes(app)
        app.add_routes(self.jira.routes("/jira"))
        app.add_routes(
            [
                web.get("/webapi/approvals/{ref}", self._list),
                web.post("/webapi/approvals/{ref}", self._create),
                web.delete("/webapi/approvals/{ref}", self._delete),
                web.delete("/webapi/approvals/{ref}/{id}", self._delete),
                web.get("/webapi/approval-definitions", self._definitions),
                web.get("/webapi/approval-definitions/{ref}", self._definitions),
                web.get("/jira/browse/{key}", self._browse),
                web.post("/jira/browse/{key}", self._browse_vote),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.kit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"{self.url}/webapi"

    @property
    def jira_url(self) -> str:
        return f"{self.url}/jira"

    def connector_settings(self, **overrides: Any) -> dict[str, Any]:
        """The [[connectors]] keys (without name/type) that point a connector here."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "jira_url": self.jira_url,
            "jira_email": JIRA_EMAIL,
            "jira_token": JIRA_TOKEN,
            "jql": "project in (" + ", ".join(sorted(self.jira.projects)) + ")",
        } | overrides

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every API request, Approval Path's and Jira's."""
        return [(s.method, unquote(s.path_qs.partition("?")[0])) for s in self.kit.served]

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` API requests (of `method` only, when given) fail (see sandbox_kit):
        "500" answers the vendor's 500 without applying; "timeout" applies the request at once
        and answers only after `slow_seconds`; "drop" closes the connection without applying it."""
        self.kit.fail_next(fault, count, method=method)

    def rate_limit_next(self, count: int = 1, *, retry_after: str = "1") -> None:
        """The next `count` Jira requests get Atlassian's 429 with this Retry-After."""
        self._rate_limits.extend([retry_after] * count)

    @web.middleware
    async def _rate_limit_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self._rate_limits and request.path.startswith("/jira/rest/"):
            retry_after = self._rate_limits.pop(0)
            return web.json_response(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                status=429,
                headers={"Retry-After": retry_after},
            )
        return await handler(request)

    # -- seeding -------------------------------------------------------------------------------

    def _now(self) -> datetime:
        """Wall-clock time, strictly increasing so that every change gets a new stamp."""
        now = datetime.now(UTC)
        self._last = now if now > self._last else self._last + timedelta(milliseconds=1)
        return self._last

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def add_group(self, name: str, members: Iterable[Who], *, group_id: str | None = None) -> str:
        group_id = group_id or f"group-{self._next_id()}"
        self.groups[group_id] = (name, {account_of(m) for m in members})
        return group_id

    def user_step(self, who: Who, *, parallel: int | None = None, action: str = "APPROVAL") -> Step:
        account = account_of(who)
        user = self.jira.users.get(account)
        return Step(
            "USER",
            action,
            user_id=account,
            display_name=user.display_name if user else account,
            parallel=parallel,
        )

    def group_step(
        self, group_id: str, *, votes: int = 1, reject_votes: int = 1, parallel: int | None = None
    ) -> Step:
        return Step(
            "GROUP",
            group_id=group_id,
            display_name=self.groups[group_id][0],
            required_votes=votes,
            required_reject_votes=reject_votes,
            parallel=parallel,
        )

    def add_definition(
        self, name: str, steps: list[Step], *, project: str | None = None, description: str = ""
    ) -> str:
        project_id = self.jira.add_project(project) if project else None
        definition = Definition(self._next_id(), name, steps, project_id, description)
        self.definitions[definition.id] = definition
        return definition.id

    def add_issue(self, project: str, summary: str) -> str:
        return self.jira.add_issue(project, summary).key

    def start_path(self, issue_key: str, definition_id: str, *, by: Who, summary: str | None = None) -> str:
        """A path started in Jira by `by` (not through the API: nothing is recorded)."""
        issue = self.jira.issues[issue_key]
        return self._start(issue, self.definitions[definition_id], account_of(by), summary).id

    def _start(
        self, issue: JiraIssueRecord, definition: Definition, performer: str, summary: str | None
    ) -> Approval:
        now = _ap_time(self._now())
        user = self.jira.users.get(performer)
        started = Step(
            "USER",
            "STARTED",
            user_id=performer,
            display_name=user.display_name if user else performer,
            status="SUCCESS",
            decision="ACCEPTED",
            decision_date=now,
        )
        approval = Approval(
            id=self._next_id(),
            definition_id=definition.id,
            name=definition.name,
            summary=summary or f"{issue.key} {issue.summary}",
            issue=issue,
            steps=[started, *(s.copy() for s in definition.steps)],
            modification_date=now,
        )
        _advance(approval)
        self.approvals.setdefault(issue.key, []).append(approval)
        self.jira.touch(issue.key)
        return approval

    def approval(self, issue_key: str, approval_id: str) -> Approval | None:
        return next((a for a in self.approvals.get(issue_key, []) if a.id == approval_id), None)

    def vote(
        self, issue_key: str, approval_id: str, who: Who, *, accept: bool = True, touch_issue: bool = True
    ) -> None:
        """`who` decides their active step in the Jira issue panel (not through the API)."""
        approval = self.approval(issue_key, approval_id)
        if approval is None or approval.status != "IN_PROGRESS":
            raise ValueError(f"{issue_key}:{approval_id} is not in progress")
        account = account_of(who)
        step = next((s for s in approval.active() if self._may_vote(s, account)), None)
        if step is None:
            raise ValueError(f"{account} has no active step on {issue_key}:{approval_id}")
        now = _ap_time(self._now())
        (step.accepts if accept else step.rejects).append(account)
        tally, needed = (
            (step.accepts, step.required_votes) if accept else (step.rejects, step.required_reject_votes)
        )
        if step.type == "USER" or len(tally) >= needed:
            step.status = step.decision = "REJECTED"
            if accept:
                step.status, step.decision = "SUCCESS", "ACCEPTED"
            step.decision_date = now
        _advance(approval)
        approval.modification_date = now
        if touch_issue:
            self.jira.touch(issue_key)

    def _may_vote(self, step: Step, account: str) -> bool:
        if step.type == "USER":
            return step.user_id == account
        if step.type == "GROUP" and step.group_id in self.groups:
            return account in self.groups[step.group_id][1] and account not in step.accepts + step.rejects
        return False

    def decide(self, issue_key: str, approval_id: str, status: Status) -> None:
        """The path ends outside the bot: approved or rejected in Jira, expired, or deleted."""
        approval = self.approval(issue_key, approval_id)
        if approval is None:
            raise ValueError(f"no approval {issue_key}:{approval_id}")
        now = _ap_time(self._now())
        if status is Status.CANCELLED:
            self.approvals[issue_key].remove(approval)
        elif status is Status.EXPIRED:
            approval.status = "EXPIRED"
        else:
            accepted = status is Status.APPROVED
            for step in approval.steps if accepted else approval.active()[:1]:
                if step.deciding and step.decision is None:
                    step.status = "SUCCESS" if accepted else "REJECTED"
                    step.decision, step.decision_date = ("ACCEPTED" if accepted else "REJECTED"), now
            _advance(approval)
        approval.modification_date = now
        self.jira.touch(issue_key)

    # -- the Approval Path Web API --------------------------------------------------------------

    def _refusal(self, request: web.Request, privilege: str) -> web.Response | None:
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _message(401, "Invalid API key")
        if privilege not in self.privileges:
            return _message(403, "The API key does not allow this operation")
        return None

    def _performer(self, user_id: Any) -> str | web.Response:
        """The vendor's "Change Performer Origin": a fixed user, or the user from the call
        (optionally limited to a group, falling back to a default user when empty or invalid)."""
        if self.performer_origin == "fixed":
            assert self.fixed_performer
            return self.fixed_performer
        user = self.jira.users.get(user_id) if isinstance(user_id, str) else None
        if user is None or not user.active:
            if self.default_performer:
                return self.default_performer
            return _message(400, "The performer could not be resolved: userId is empty or not a valid user")
        if self.performer_group and user.account_id not in self.groups[self.performer_group][1]:
            return _message(403, "The performer is not a member of the group allowed for this API key")
        return user.account_id

    async def _list(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request, "list"):
            return refusal
        issue = self.jira.find_issue(request.match_info["ref"])
        if issue is None:
            return _message(404, "Issue not found")
        approvals = [a.wire() for a in self.approvals.get(issue.key, [])]
        return web.json_response({"result": approvals, "totalCount": len(approvals)})

    async def _create(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request, "create"):
            return refusal
        issue = self.jira.find_issue(request.match_info["ref"])
        if issue is None:
            return _message(404, "Issue not found")
        body = await _body(request)
        definition = self.definitions.get(str(body.get("definitionId", "")))
        if definition is None or definition.project_id not in (None, issue.project_id):
            return _message(400, "Approval definition not found for this issue")
        performer = self._performer(body.get("userId"))
        if isinstance(performer, web.Response):
            return performer
        summary = body.get("summary")
        approval = self._start(issue, definition, performer, summary if isinstance(summary, str) else None)
        self.decisions.append((approval.external_id, "request", performer))
        return web.json_response({"result": [approval.wire()], "totalCount": 1})

    async def _delete(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request, "delete"):
            return refusal
        issue = self.jira.find_issue(request.match_info["ref"])
        if issue is None:
            return _message(404, "Issue not found")
        existing = self.approvals.get(issue.key, [])
        wanted = request.match_info.get("id")
        doomed = [a for a in existing if a.id == wanted] if wanted else list(existing)
        if not doomed:
            return _message(404, "Approval not found")
        body = await _body(request)
        performer = self._performer(body.get("userId"))
        if isinstance(performer, web.Response):
            return performer
        for approval in doomed:
            existing.remove(approval)
            self.decisions.append((approval.external_id, "cancel", performer))
        if body.get("createComment") is True:
            # "The creator of the API will be specified as the agent."
            names = ", ".join(a.name for a in doomed)
            issue.comments.append((performer, f"Approval path deleted: {names}"))
            self.jira.touch(issue.key)
        remaining = [a.wire() for a in existing]
        return web.json_response({"result": remaining, "totalCount": len(remaining)})

    async def _definitions(self, request: web.Request) -> web.Response:
        if refusal := self._refusal(request, "definitions"):
            return refusal
        ref = request.match_info.get("ref")
        if ref is None:
            chosen = [d for d in self.definitions.values() if d.project_id is None]
        else:
            project = self.jira.find_project(ref)
            if project is None:
                return _message(404, "Project not found")
            chosen = [d for d in self.definitions.values() if d.project_id == project[1]]
        return web.json_response({"result": [d.wire() for d in chosen], "totalCount": len(chosen)})

    # -- the issue page (demo): the Approval Path panel, where people decide --------------------

    async def _browse(self, request: web.Request) -> web.Response:
        issue = self.jira.find_issue(request.match_info["key"])
        if issue is None:
            raise web.HTTPNotFound(text="No such issue")
        return web.Response(text=self._page(issue), content_type="text/html")

    async def _browse_vote(self, request: web.Request) -> web.Response:
        issue = self.jira.find_issue(request.match_info["key"])
        if issue is None:
            raise web.HTTPNotFound(text="No such issue")
        form = await request.post()
        with contextlib.suppress(ValueError):
            self.vote(
                issue.key,
                str(form.get("approval", "")),
                str(form.get("who", "")),
                accept=form.get("accept") == "1",
            )
        raise web.HTTPSeeOther(f"/jira/browse/{issue.key}")

    def _page(self, issue: JiraIssueRecord) -> str:
        esc = html.escape
        parts = [f"<h1>{esc(issue.key)} {esc(issue.summary)}</h1>"]
        for approval in self.approvals.get(issue.key, []):
            parts.append(f"<h2>{esc(approval.name)} ({esc(approval.status)})</h2><ol>")
            for step in approval.steps:
                who = step.display_name or step.email or ""
                parts.append(
                    f"<li>{esc(step.type)} {esc(who)}: {esc(step.status)} {esc(step.decision or '')}"
                )
                for account in self._voters(step) if step.status == "IN_PROGRESS" else ():
                    name = esc(self.jira.users[account].display_name)
                    for accept, label in (("1", "Approve"), ("0", "Reject")):
                        parts.append(
                            f'<form method="post" style="display:inline">'
                            f'<input type="hidden" name="approval" value="{esc(approval.id)}">'
                            f'<input type="hidden" name="who" value="{esc(account)}">'
                            f'<input type="hidden" name="accept" value="{accept}">'
                            f"<button>{label} as {name}</button></form>"
                        )
                parts.append("</li>")
            parts.append("</ol>")
        return "<!doctype html><title>Jira sandbox</title>" + "".join(parts)

    def _voters(self, step: Step) -> list[str]:
        if step.type == "USER" and step.user_id in self.jira.users:
            return [step.user_id]
        if step.type == "GROUP" and step.group_id in self.groups:
            return sorted(self.groups[step.group_id][1] - set(step.accepts) - set(step.rejects))
        return []


def _advance(approval: Approval) -> None:
    """Move a path on: a rejection ends it; a finished stage (a step, or a parallel group)
    opens the next; notification steps pass by themselves; no stage left means success."""
    if approval.status != "IN_PROGRESS":
        return
    if any(step.decision == "REJECTED" for step in approval.steps):
        approval.status = "REJECTED"
        for step in approval.active():
            step.status = "WAITING"
        return
    stages: list[list[Step]] = []
    for step in approval.steps[1:]:
        if step.parallel is not None and stages and stages[-1][-1].parallel == step.parallel:
            stages[-1].append(step)
        else:
            stages.append([step])
    for stage in stages:
        open_steps = [s for s in stage if s.status != "SUCCESS"]
        for step in open_steps:
            if not step.deciding:
                step.status = "SUCCESS"
        if any(s.deciding for s in open_steps):
            for step in open_steps:
                step.status = "IN_PROGRESS"
            return
    approval.status = "SUCCESS"


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def demo() -> SandboxSetup:
    """Two issues with running paths: a user step due for Alice, a group step for finance."""
    sandbox = ApprovalPathSandbox()
    release = sandbox.add_group("release-managers", [BOB, CAROL])
    # Erin's Jira profile hides her email: the finance card says so and stays in the channel.
    sandbox.jira.add_user(ERIN_ACCOUNT, "Erin Private", "erin@example.com", email_hidden=True)
    finance = sandbox.add_group("finance", [CAROL, DAVE, ERIN_ACCOUNT])
    change = sandbox.add_definition(
        "Change approval",
        [sandbox.user_step(ALICE), sandbox.group_step(release)],
        project="OPS",
        description="Production changes: the service owner, then a release manager.",
    )
    sandbox.add_definition(
        "Emergency change",
        [sandbox.user_step(ALICE, parallel=1), sandbox.user_step(CAROL, parallel=1)],
        project="OPS",
        description="Service owner and on-call lead in parallel.",
    )
    travel = sandbox.add_definition(
        "Travel approval",
        [sandbox.user_step(BOB), sandbox.group_step(finance, votes=1, reject_votes=2)],
        project="HR",
    )
    sandbox.add_definition("Manager sign-off", [sandbox.user_step(BOB)], description="Any project.")
    deploy = sandbox.add_issue("OPS", "Deploy payments service 2.4 to production")
    sandbox.start_path(deploy, change, by=DAVE)
    trip = sandbox.add_issue("HR", "Team offsite in Lisbon")
    trip_path = sandbox.start_path(trip, travel, by=ALICE)
    sandbox.vote(trip, trip_path, BOB)
    sandbox.add_issue("OPS", "Rotate the database credentials")
    await sandbox.start()
    people: dict[str, dict[str, str]] = {p.email: {} for p in (ALICE, BOB, CAROL, DAVE)}
    assert sandbox.jira.users[ERIN_ACCOUNT].email_hidden
    assert MALLORY.email not in ACCOUNTS
    return SandboxSetup(
        connector=sandbox.connector_settings(recheck_after="1m"),
        people=people,
        stop=sandbox.stop,
        describe=(
            f"Approval Path sandbox: Web API {sandbox.base_url}, Jira {sandbox.jira_url} "
            f"(decide steps on {sandbox.jira_url}/browse/{deploy})"
        ),
        extra={"sandbox": sandbox},
    )
