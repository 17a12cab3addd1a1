"""A FlexDeploy simulator: the v1 Approval Tasks API, and the slice of the v1 User API the bot reads.

    <url>/flexdeploy/rest/v1/tasks/approval                GET: every task the caller may see;
                                                            the documented filters, names and
                                                            values case-insensitive
    <url>/flexdeploy/rest/v1/tasks/approval/{id}           GET one task
    <url>/flexdeploy/rest/v1/tasks/approval/approve/{id}   PUT ?notes=  (reject/{id} alike)
    <url>/flexdeploy/rest/v1/tasks/approval/approve        PUT by query (reject alike): exactly
                                                            one task must match, or it throws
    <url>/flexdeploy/rest/v1/administration/security/user  GET ?userName= (User API v1)
    <url>/flexdeploy/                                       "Tasks → Approval Tasks": a page that
                                                            lists tasks and decides them out of band

What the vendor document leaves open is filled in as NOTES.md section 4 infers it:
- Basic auth with a password, or an API token in its place. A wrong one: 401, plain text
  "Authentication failure" with a `WWW-Authenticate: Basic` challenge.
- Each task belongs to one approval group; any member decides it for the group. Administrators
  see and may decide every task; other users see only their groups' tasks.
- Error bodies (none are documented) are JSON `{"message": "..."}`:
  403 "User dave is not a member of approval group 'CAB' of approval task 10001",
  404 "Approval task 99 was not found",
  400 "Approval task 10001 is not pending: its status is APPROVED",
  500 for the query forms' documented exception when several tasks match:
  "FlexDeployException: 2 approval tasks match the query parameters; only one approval task
  can be approved or rejected at a time".
- The User API answers administrators, and anyone asking about themselves; others get 403.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.base import Status
from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from connectors.registry import SandboxSetup
from connectors.sandbox_kit import Fault, KitSandbox, SandboxKit

ROOT = "/flexdeploy"
API = f"{ROOT}/rest/v1"
SERVICE_USER = "approvals-bot"
SERVICE_PASSWORD = "fd-sandbox-service-5c1e"

Who = DemoPerson | str

# The documented list filters (lower-cased, as the server compares them) and the attribute
# each one matches. `pipelineStageExecId` filters the release task's pipelineStageGateExecId.
_FILTERS = {
    "workflowrequestid": "workflowRequestId",
    "folderrequestid": "folderRequestId",
    "pipelinestageexecid": "pipelineStageGateExecId",
    "projectid": "projectId",
    "applicationid": "applicationId",
    "environmentid": "environmentId",
    "externalid": "externalId",
    "externalsystemtype": "externalSystemType",
    "externalsystemid": "externalSystemId",
}


def _message(status: int, text: str) -> web.Response:
    return web.json_response({"message": text}, status=status)


def _handle(who: Who) -> str:
    return who.handle if isinstance(who, DemoPerson) else who


@dataclass
class SandboxUser:
    user_id: int
    username: str
    first_name: str
    last_name: str
    email: str | None
    password: str
    tokens: list[str] = field(default_factory=list)
    admin: bool = False
    active: bool = True

    def accepts(self, secret: str) -> bool:
        """FlexDeploy takes the password, or any of the user's API tokens in its place."""
        candidates = [self.password, *self.tokens]
        return any(hmac.compare_digest(secret.encode(), c.encode()) for c in candidates if c)

    @property
    def token(self) -> str:
        return self.tokens[0] if self.tokens else ""

    def credentials(self, *, token: bool = False) -> dict[str, str]:
        """What this person types into the bot's linking modal."""
        return {"username": self.username, "secret": self.token if token else self.password}


@dataclass
class SandboxTask:
    task_id: int
    request_type: str
    group: str
    # The attributes of the request type (pipelineName, projectName, ...), as on the wire.
    attributes: dict[str, Any]
    status: str = "PENDING"
    environment_id: int | None = None
    requestor_path: str = ""
    # Kept as the server would send them (their shape is not documented; tests may bend it).
    flex_fields: list[Any] = field(default_factory=list)
    external_id: str | None = None
    external_system_id: int | None = None
    external_system_type: str | None = None
    notes: str | None = None

    def wire(self) -> dict[str, Any]:
        return {
            **self.attributes,
            "taskId": self.task_id,
            "status": self.status,
            "environmentId": self.environment_id,
            "requestType": self.request_type,
            "flexFields": [dict(f) if isinstance(f, Mapping) else f for f in self.flex_fields],
            "requestorPath": self.requestor_path,
            "externalId": self.external_id,
            "externalSystemId": self.external_system_id,
            "externalSystemType": self.external_system_type,
            "notes": self.notes,
        }

    def matches(self, filters: Mapping[str, str]) -> bool:
        wire = self.wire()
        for name, wanted in filters.items():
            value = wire.get(_FILTERS[name])
            if value is None or str(value).lower() != wanted.lower():
                return False
        return True


class FlexDeploySandbox(KitSandbox):
    """The vendor, seeded by helpers. `decisions` lists what the API applied:
    (task id, "approve" | "reject", username); `served` every API request as "METHOD /path?query".
    Faults, the request log and the control endpoints come from connectors/sandbox_kit.py."""

    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.kit = SandboxKit(
            applies_to=lambda r: r.path.startswith(f"{ROOT}/rest/"), slow_seconds=slow_seconds
        )
        # The vendor's reject-by-query example answers "notes": null although notes were sent;
        # False answers every decision that way.
        self.echo_notes = True
        # True: the User API answers administrators only (some sites restrict it).
        self.user_api_for_admins_only = False
        self.users: dict[str, SandboxUser] = {}
        self.groups: dict[str, tuple[int, set[str]]] = {}
        self.tasks: dict[int, SandboxTask] = {}
        self.decisions: list[tuple[str, str, str]] = []
        self._task_ids = itertools.count(10001)
        self._user_ids = itertools.count(10101)
        self._group_ids = itertools.count(11101)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.add_user(SERVICE_USER, "Approvals Bot", None, password=SERVICE_PASSWORD, admin=True)
        for person in (ALICE, BOB, CAROL, DAVE):
            self.add_person(person)

    # -- server --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self.kit.middleware])
        self.kit.add_control_routes(app)
        app.add_routes(
            [
                web.get(f"{API}/tasks/approval", self._list),
                web.get(f"{API}/tasks/approval/{{id}}", self._get),
                web.put(f"{API}/tasks/approval/{{verb:approve|reject}}/{{id}}", self._decide_by_id),
                web.put(f"{API}/tasks/approval/{{verb:approve|reject}}", self._decide_by_query),
                web.get(f"{API}/administration/security/user", self._users),
                web.get(ROOT, self._page),
                web.get(f"{ROOT}/", self._page),
                web.post(f"{ROOT}/sandbox/tasks/{{id}}", self._page_decide),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.kit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """The FlexDeploy root, as the connector's `base_url` (the bot appends /rest/v1/...)."""
        return f"{self.url}{ROOT}"

    def connector_settings(self, **overrides: Any) -> dict[str, Any]:
        """The [[connectors]] keys (without name/type) that point a connector here."""
        return {"base_url": self.base_url, "username": SERVICE_USER, "password": SERVICE_PASSWORD} | overrides

    @property
    def retry_after(self) -> str:
        return self.kit.retry_after

    @retry_after.setter
    def retry_after(self, value: str) -> None:
        self.kit.retry_after = value

    def fail_next(self, fault: Fault, count: int = 1, *, method: str | None = None) -> None:
        """The next `count` API requests (of `method` only, when given) fail (see sandbox_kit):
        "500" answers 500 without applying; "timeout" applies the request at once and answers only
        after `slow_seconds`; "drop" closes the connection without applying it; "429" answers Too
        Many Requests with `retry_after`. Pass method="PUT" to fail a decision rather than the read
        the connector makes just before it. `kit.fail_rate` fails a share of all requests."""
        self.kit.fail_next(fault, count, method=method)

    # -- seeding -------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        name: str,
        email: str | None,
        *,
        password: str,
        token: str | None = None,
        admin: bool = False,
    ) -> SandboxUser:
        first, _, last = name.partition(" ")
        user = SandboxUser(
            next(self._user_ids),
            username,
            first,
            last,
            email,
            password,
            [token] if token else [],
            admin,
        )
        self.users[username] = user
        return user

    def add_person(self, person: DemoPerson) -> SandboxUser:
        """One of the shared cast, with a password and an API token of their own."""
        return self.add_user(
            person.handle,
            person.name,
            person.email,
            password=f"{person.handle}-fd-password",
            token=f"fdt_{person.handle}_0c9a7e51b2",
        )

    def user(self, who: Who) -> SandboxUser:
        return self.users[_handle(who)]

    def credentials(self, who: Who, *, token: bool = False) -> dict[str, str]:
        return self.user(who).credentials(token=token)

    def add_group(self, name: str, members: Iterable[Who]) -> str:
        self.groups[name] = (next(self._group_ids), {_handle(m) for m in members})
        return name

    def _add_task(
        self,
        request_type: str,
        attributes: dict[str, Any],
        *,
        group: str,
        requestor_path: str,
        environment_id: int | None,
        flex_fields: Mapping[str, str] | None,
        external: tuple[str, str] | None,
    ) -> int:
        if group not in self.groups:
            raise ValueError(f"no approval group {group!r}; add_group() it first")
        task_id = next(self._task_ids)
        task = SandboxTask(
            task_id,
            request_type,
            group,
            attributes,
            environment_id=environment_id,
            requestor_path=requestor_path,
            flex_fields=[{"name": k, "value": v} for k, v in (flex_fields or {}).items()],
        )
        if external is not None:
            task.external_system_type, task.external_id = external
            task.external_system_id = 20001 if external[0].upper() == "JIRA" else 20002
        self.tasks[task_id] = task
        return task_id

    def add_release_task(
        self,
        *,
        pipeline: str,
        environment: str,
        gate: str,
        release: str,
        snapshot: str,
        group: str,
        requestor_path: str = "FlexDeploy / Releases",
        environment_id: int | None = 16109,
        flex_fields: Mapping[str, str] | None = None,
        external: tuple[str, str] | None = None,
    ) -> int:
        """A release pipeline waiting at an approval gate. `external` = (system type, ticket)."""
        n = len(self.tasks)
        attributes = {
            "snapshotId": 31001 + n,
            "pipelineName": pipeline,
            "environmentName": environment,
            "gateName": gate,
            "releaseName": release,
            "releaseDefinitionId": 30001,
            "releaseSnapshot": snapshot,
            "pipelineStageGateExecId": 32001 + n,
        }
        return self._add_task(
            "Release",
            attributes,
            group=group,
            requestor_path=requestor_path,
            environment_id=environment_id,
            flex_fields=flex_fields,
            external=external,
        )

    def add_project_task(
        self,
        *,
        project: str,
        version: str,
        group: str,
        requestor_path: str = "FlexDeploy / Projects",
        environment_id: int | None = 16109,
        project_id: int = 10002,
        flex_fields: Mapping[str, str] | None = None,
        external: tuple[str, str] | None = None,
    ) -> int:
        """A project deployment request waiting for approval."""
        attributes = {
            "projectId": project_id,
            "projectName": project,
            "projectVersionName": version,
            "workflowRequestId": 11701 + len(self.tasks),
        }
        return self._add_task(
            "Project",
            attributes,
            group=group,
            requestor_path=requestor_path,
            environment_id=environment_id,
            flex_fields=flex_fields,
            external=external,
        )

    def add_application_task(
        self,
        *,
        application: str,
        version: str,
        group: str,
        requestor_path: str = "FlexDeploy / Applications",
        environment_id: int | None = 16109,
        application_id: int = 10500,
        flex_fields: Mapping[str, str] | None = None,
        external: tuple[str, str] | None = None,
    ) -> int:
        """A (legacy) application deployment request waiting for approval."""
        attributes = {
            "applicationId": application_id,
            "applicationName": application,
            "folderVersionName": version,
            "folderRequestId": str(12001 + len(self.tasks)),
        }
        return self._add_task(
            "Application",
            attributes,
            group=group,
            requestor_path=requestor_path,
            environment_id=environment_id,
            flex_fields=flex_fields,
            external=external,
        )

    def decide(self, task_id: int | str, status: Status | str, notes: str | None = None) -> None:
        """The task is decided outside the bot (in FlexDeploy's UI, by email, by the Jira ticket,
        or cancelled with its request). Not recorded in `decisions`: the API did not apply it."""
        task = self.tasks[int(task_id)]
        word = status.value if isinstance(status, Status) else status
        task.status = word.upper()
        task.notes = notes

    def remove(self, task_id: int | str) -> None:
        """The task disappears (its request was deleted)."""
        del self.tasks[int(task_id)]

    def seed_demo(self) -> dict[str, int]:
        """Realistic work for `approvals-bot demo`: a release gate, a project deployment and one
        that waits on a Jira ticket. Alice and Bob are in the groups of all three."""
        self.add_group("Change Advisory Board", [ALICE, BOB])
        self.add_group("Release Managers", [ALICE, BOB, CAROL])
        self.add_group("QA Leads", [CAROL, DAVE])
        gate = self.add_release_task(
            pipeline="Retail Web",
            environment="Production",
            gate="CAB approval",
            release="2026.11",
            snapshot="2026.11-RC3",
            group="Change Advisory Board",
            requestor_path="FlexDeploy / Releases / Retail Web 2026.11",
            flex_fields={"Change window": "Sat 02:00–04:00 UTC", "Risk": "Medium"},
        )
        deploy = self.add_project_task(
            project="Payments API",
            version="4.2.1",
            group="Release Managers",
            requestor_path="FlexDeploy / Payments / Payments API",
            environment_id=16110,
            project_id=10020,
        )
        ticket = self.add_project_task(
            project="Inventory Service",
            version="7.0.0",
            group="Change Advisory Board",
            requestor_path="FlexDeploy / Supply Chain / Inventory Service",
            project_id=10030,
            external=("JIRA", "OPS-1234"),
        )
        return {"release_gate": gate, "project_deploy": deploy, "jira_ticket": ticket}

    # -- the API -------------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> SandboxUser | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        user: SandboxUser | None = None
        if scheme.lower() == "basic":
            try:
                username, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                username, secret = "", ""
            user = self.users.get(username)
            if user is not None and not (user.active and user.accepts(secret)):
                user = None
        if user is None:
            return web.Response(
                status=401,
                text="Authentication failure",
                headers={"WWW-Authenticate": 'Basic realm="FlexDeploy"'},
            )
        return user

    def _member(self, user: SandboxUser, task: SandboxTask) -> bool:
        return user.admin or user.username in self.groups[task.group][1]

    async def _list(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        filters = _filters(request)
        found = [
            t.wire()
            for t in sorted(self.tasks.values(), key=lambda t: t.task_id)
            if self._member(caller, t) and t.matches(filters)
        ]
        return web.json_response(found)

    async def _get(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        task = self._task(request.match_info["id"])
        if isinstance(task, web.Response):
            return task
        if not self._member(caller, task):
            return _message(403, f"User {caller.username} may not view approval task {task.task_id}")
        return web.json_response(task.wire())

    async def _decide_by_id(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        task = self._task(request.match_info["id"])
        if isinstance(task, web.Response):
            return task
        return self._apply(caller, task, request.match_info["verb"], _query(request).get("notes"))

    async def _decide_by_query(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        verb = request.match_info["verb"]
        filters = _filters(request)
        matching = [t for t in self.tasks.values() if t.matches(filters)]
        if not matching:
            return _message(404, "No approval task matches the query parameters")
        if len(matching) > 1:
            # The document: "If more than one task matches the query parameters an exception
            # will be thrown."
            return _message(
                500,
                f"FlexDeployException: {len(matching)} approval tasks match the query parameters; "
                "only one approval task can be approved or rejected at a time",
            )
        return self._apply(caller, matching[0], verb, _query(request).get("notes"))

    def _apply(self, caller: SandboxUser, task: SandboxTask, verb: str, notes: str | None) -> web.Response:
        if not self._member(caller, task):
            return _message(
                403,
                f"User {caller.username} is not a member of approval group '{task.group}' "
                f"of approval task {task.task_id}",
            )
        if task.status != "PENDING":
            return _message(400, f"Approval task {task.task_id} is not pending: its status is {task.status}")
        task.status = "APPROVED" if verb == "approve" else "REJECTED"
        task.notes = notes
        self.decisions.append((str(task.task_id), verb, caller.username))
        answer = task.wire()
        if not self.echo_notes:
            answer["notes"] = None
        return web.json_response(answer)

    def _task(self, raw_id: str) -> SandboxTask | web.Response:
        task = self.tasks.get(int(raw_id)) if raw_id.isdigit() else None
        if task is None:
            return _message(404, f"Approval task {raw_id} was not found")
        return task

    async def _users(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        query = _query(request)
        wanted = query.get("username")
        itself = (wanted or "").lower() == caller.username.lower() and not self.user_api_for_admins_only
        if not caller.admin and not itself:
            return _message(403, f"User {caller.username} is not authorized to read users")
        found = [u for u in self.users.values() if _user_matches(u, query, self.groups)]
        return web.json_response([self._user_wire(u) for u in found])

    def _user_wire(self, user: SandboxUser) -> dict[str, Any]:
        return {
            "userId": user.user_id,
            "userName": user.username,
            "password": "*****",
            "firstName": user.first_name,
            "lastName": user.last_name,
            "email": user.email,
            "isActive": user.active,
            "isLocalUser": True,
            "groups": sorted(gid for gid, members in self.groups.values() if user.username in members),
            "attributes": [],
        }

    # -- the UI (demo): Tasks → Approval Tasks -------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        esc = html.escape
        rows = []
        for task in sorted(self.tasks.values(), key=lambda t: t.task_id):
            wire = task.wire()
            what = " ".join(
                str(wire[k])
                for k in ("pipelineName", "gateName", "releaseName", "projectName", "applicationName")
                if wire.get(k)
            )
            version = wire.get("projectVersionName") or wire.get("folderVersionName") or ""
            external = f"{task.external_system_type} {task.external_id}" if task.external_id else ""
            forms = ""
            if task.status == "PENDING":
                forms = "".join(
                    f'<form method="post" action="{ROOT}/sandbox/tasks/{task.task_id}" style="display:inline">'
                    f'<input type="hidden" name="status" value="{word}"><button>{label}</button></form>'
                    for word, label in (("APPROVED", "Approve"), ("REJECTED", "Reject"))
                )
            rows.append(
                f"<tr><td>{task.task_id}</td><td>{esc(task.request_type)}</td><td>{esc(what)} "
                f"{esc(str(version))}</td><td>{esc(task.group)}</td><td>{esc(external)}</td>"
                f"<td>{esc(task.status)}</td><td>{esc(task.notes or '')}</td><td>{forms}</td></tr>"
            )
        page = (
            "<!doctype html><title>FlexDeploy sandbox</title><h1>Tasks → Approval Tasks</h1>"
            "<table border=1 cellpadding=4><tr><th>Task</th><th>Type</th><th>What</th><th>Group</th>"
            "<th>External</th><th>Status</th><th>Notes</th><th></th></tr>" + "".join(rows) + "</table>"
        )
        return web.Response(text=page, content_type="text/html")

    async def _page_decide(self, request: web.Request) -> web.Response:
        form = await request.post()
        raw_id = request.match_info["id"]
        task = self.tasks.get(int(raw_id)) if raw_id.isdigit() else None
        status = str(form.get("status", ""))
        if task is not None and task.status == "PENDING" and status in ("APPROVED", "REJECTED"):
            self.decide(task.task_id, status, notes="Decided in the FlexDeploy UI")
        raise web.HTTPSeeOther(f"{ROOT}/")


def _query(request: web.Request) -> dict[str, str]:
    """Query parameters with their names lower-cased: FlexDeploy compares them case-insensitively."""
    return {k.lower(): v for k, v in request.query.items()}


def _filters(request: web.Request) -> dict[str, str]:
    """The documented filters among the query parameters (`notes` adds a note, it never filters)."""
    return {k: v for k, v in _query(request).items() if k in _FILTERS}


def _user_matches(
    user: SandboxUser, query: Mapping[str, str], groups: Mapping[str, tuple[int, set[str]]]
) -> bool:
    # User API v1: userName is an equals search; first and last name "contains, ignore case".
    if "username" in query and user.username.lower() != query["username"].lower():
        return False
    if "firstname" in query and query["firstname"].lower() not in user.first_name.lower():
        return False
    if "lastname" in query and query["lastname"].lower() not in user.last_name.lower():
        return False
    if "groupid" in query:
        members = {m for gid, ms in groups.values() if str(gid) == query["groupid"] for m in ms}
        if user.username not in members:
            return False
    return True


async def demo() -> SandboxSetup:
    """The seeded sandbox for `approvals-bot demo`; each cast member links with their own login
    (Alice and Dave with an API token, Bob and Carol with a password: FlexDeploy takes either)."""
    sandbox = FlexDeploySandbox()
    seeded = sandbox.seed_demo()
    await sandbox.start()
    people = {
        ALICE.email: sandbox.credentials(ALICE, token=True),
        BOB.email: sandbox.credentials(BOB),
        CAROL.email: sandbox.credentials(CAROL),
        DAVE.email: sandbox.credentials(DAVE, token=True),
    }
    return SandboxSetup(
        connector=sandbox.connector_settings(),
        people=people,
        stop=sandbox.stop,
        describe=(
            f"FlexDeploy sandbox: {sandbox.base_url} (Tasks → Approval Tasks: {sandbox.base_url}/); "
            f"release gate task {seeded['release_gate']}, project deploy {seeded['project_deploy']}, "
            f"Jira-tied task {seeded['jira_ticket']} (OPS-1234)"
        ),
        extra={"sandbox": sandbox, "tasks": seeded},
    )
