"""A simulator of the Harness calls the connector uses, on 127.0.0.1.

Kept from Harness (vendor document, NOTES.md section 1): both listing calls (execution summary
filtered on ApprovalWaiting, paged; WAITING instances per execution), both acting routes (by
instance; by execution with callback_id and its "no instance / more than 1" errors), user groups,
minimumCount, approver inputs, deadlines that expire, auto-reject of older executions,
disallowPipelineExecutor, the documented error messages, 429 without Retry-After, and faults.

User groups live at a scope: a step names them as "account.x", "org.x" or a bare project-level
"x" (`approvers.userGroups`) and, as newer builds do, in `validatedApprovalUserGroups` with their
display name and scope. Their members come from `POST /ng/api/user-groups/{id}/users` (paged with
pageIndex/pageSize, at most 100 a page, `data.content` of UserMetadata), which needs
`core_usergroup_view`: a group in `unviewable` answers 403 NG_ACCESS_DENIED to the service token,
as Harness does to a token whose role lacks it. A group that does not exist answers 404 (our
assumption: the body is not documented).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.harness.groups import readable_name
from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from connectors.registry import SandboxSetup
from connectors.sandbox_kit import CONTROL, KitSandbox, SandboxKit

ACCOUNT = "acct1"
SERVICE_TOKEN = f"sat.{ACCOUNT}.bot.viewonly"
# The x-api-key a request came with, set by the auth middleware for the handlers.
API_KEY = web.RequestKey("api_key", str)


@dataclass
class Execution:
    id: str
    org: str
    project: str
    pipeline: str
    run: int
    triggered_by: str


@dataclass
class Instance:
    id: str
    execution: Execution
    groups: list[str]
    minimum: int = 1
    message: str = "Approve this deployment?"
    disallow_executor: bool = False
    auto_reject: bool = False
    inputs: list[dict[str, Any]] = field(default_factory=list)
    callback_id: str | None = None
    disallowed: list[str] = field(default_factory=list)  # emails that may not decide
    deadline_ms: int = 0
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    status: str = "WAITING"
    activities: list[dict[str, Any]] = field(default_factory=list)

    def wire(self, validated: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "HarnessApproval",
            "status": self.status,
            "deadline": self.deadline_ms,
            "created": self.created_ms,
            "updated": self.created_ms,
            "error_message": None,
            "details": {
                "approvalMessage": self.message,
                "includePipelineExecutionHistory": True,
                "approvers": {
                    "userGroups": self.groups,
                    "minimumCount": self.minimum,
                    "disallowPipelineExecutor": self.disallow_executor,
                },
                "approvalActivities": self.activities,
                "approverInputs": self.inputs,
                "isAutoRejectEnabled": self.auto_reject,
                "callbackId": self.callback_id,
                **({"validatedApprovalUserGroups": validated} if validated is not None else {}),
            },
        }


def _bad(message: str) -> web.Response:
    return web.json_response(
        {"status": "ERROR", "code": "INVALID_REQUEST", "message": f"Invalid request: {message}"}, status=400
    )


class HarnessSandbox(KitSandbox):
    """The vendor, seeded by helpers. `decisions` lists what the API applied; `served` every
    request as "METHOD /path?query". Faults, the request log and the control endpoints come from
    connectors/sandbox_kit.py; `rate_limit_next` is Harness's own 429 (no Retry-After)."""

    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.kit = SandboxKit(applies_to=lambda _: True, slow_seconds=slow_seconds)
        self.users: dict[str, dict[str, str]] = {}  # key → {uuid, name, email}
        self.groups: dict[str, set[str]] = {}  # group reference as a step names it → user emails
        self.group_names: dict[str, str] = {}  # group reference → display name
        self.unviewable: set[str] = set()  # groups the service token may not read (403)
        # Newer Harness builds send validatedApprovalUserGroups; False answers like older ones.
        self.send_validated = True
        self.executions: dict[str, Execution] = {}
        self.instances: dict[str, Instance] = {}
        self.decisions: list[tuple[str, str, str]] = []
        self.rate_limit_next = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        for person in (ALICE, BOB, CAROL, DAVE):
            self.add_person(person)

    def add_person(self, person: DemoPerson) -> str:
        key = f"pat.{ACCOUNT}.{person.handle}.s3cr3t"
        self.users[key] = {"uuid": f"u-{person.handle}", "name": person.name, "email": person.email}
        return key

    def key(self, handle: str) -> str:
        return f"pat.{ACCOUNT}.{handle}.s3cr3t"

    def add_group(
        self, name: str, members: Iterable[DemoPerson | str], *, display: str | None = None
    ) -> None:
        """`name` as a step names it ("x" project level, "org.x", "account.x"); members by
        person or email (an email not yet a user becomes one)."""
        emails = set()
        for member in members:
            if isinstance(member, DemoPerson):
                emails.add(member.email)
            else:
                emails.add(member)
                if not any(u["email"] == member for u in self.users.values()):
                    handle = member.split("@")[0]
                    self.users[f"pat.{ACCOUNT}.{handle}.s3cr3t"] = {
                        "uuid": f"u-{handle}",
                        "name": handle.replace(".", " ").title(),
                        "email": member,
                    }
        self.groups[name] = emails
        # Every Harness group has a display name; the built-in ones are named as Harness names them.
        self.group_names[name] = display or readable_name(name.rpartition(".")[2])

    def _validated(self, instance: Instance) -> list[dict[str, Any]] | None:
        if not self.send_validated:
            return None
        out = []
        for ref in instance.groups:
            if ref not in self.groups:
                continue  # Harness validates the references: unknown ones are left out
            scope, _, identifier = ref.rpartition(".")
            row: dict[str, Any] = {
                "identifier": identifier,
                "name": self.group_names[ref],
                "accountIdentifier": ACCOUNT,
            }
            if scope != "account":
                row["orgIdentifier"] = instance.execution.org
                if not scope:
                    row["projectIdentifier"] = instance.execution.project
            out.append(row)
        return out

    def add_waiting(
        self,
        *,
        pipeline: str = "deploy_prod",
        groups: list[str],
        org: str = "default",
        project: str = "payments",
        triggered_by: str = "dave@example.com",
        **options: Any,
    ) -> str:
        n = next(self._ids)
        execution = Execution(f"exec{n:04d}", org, project, pipeline, n, triggered_by)
        self.executions[execution.id] = execution
        instance = Instance(f"appr{n:04d}", execution, groups, **options)
        if not instance.deadline_ms:
            instance.deadline_ms = int((time.time() + 3600) * 1000)
        self.instances[instance.id] = instance
        return instance.id

    def decide(self, instance_id: str, status: str, by: str = "admin@example.com") -> None:
        instance = self.instances[instance_id]
        instance.status = status
        instance.activities.append(
            {
                "user": {"name": by, "email": by},
                "action": "APPROVE" if status == "APPROVED" else "REJECT",
                "comments": "decided in Harness",
                "approvedAt": int(time.time() * 1000),
            }
        )

    def connector_settings(self, **overrides: Any) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "account": ACCOUNT,
            "projects": ["default/payments"],
            "token": SERVICE_TOKEN,
            "ui_url": self.url,
        } | overrides

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # The kit first: a fault stands for trouble in front of Harness, before it reads the key.
        app = web.Application(middlewares=[self.kit.middleware, self._middleware])
        self.kit.add_control_routes(app)
        app.router.add_post("/pipeline/api/pipelines/execution/summary", self._summary)
        app.router.add_get(
            "/pipeline/api/v1/orgs/{org}/projects/{project}/approvals/execution/{eid}", self._list
        )
        app.router.add_post(
            "/pipeline/api/v1/orgs/{org}/projects/{project}/approvals/execution/{eid}", self._act_execution
        )
        app.router.add_get("/pipeline/api/approvals/{id}", self._get)
        app.router.add_post("/pipeline/api/approvals/{id}/harness/activity", self._act_instance)
        app.router.add_get("/ng/api/user/currentUser", self._me)
        app.router.add_post("/ng/api/user-groups/{identifier}/users", self._members)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self.kit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(f"{CONTROL}/"):
            return await handler(request)
        key = request.headers.get("x-api-key", "")
        if key != SERVICE_TOKEN and key not in self.users:
            return web.json_response(
                {"status": "ERROR", "code": "INVALID_TOKEN", "message": "Token is not valid"}, status=401
            )
        request[API_KEY] = key
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return web.json_response(
                {"status": "ERROR", "message": "Too many requests"}, status=429
            )  # no Retry-After
        return await handler(request)

    def _expire(self) -> None:
        now = int(time.time() * 1000)
        for instance in self.instances.values():
            if instance.status == "WAITING" and instance.deadline_ms and instance.deadline_ms < now:
                instance.status = "EXPIRED"

    async def _summary(self, request: web.Request) -> web.Response:
        self._expire()
        q = request.query
        body = await request.json()
        waiting = body.get("status") == ["ApprovalWaiting"]
        rows = [
            e
            for e in self.executions.values()
            if e.org == q.get("orgIdentifier")
            and e.project == q.get("projectIdentifier")
            and (
                not waiting
                or any(i.execution is e and i.status == "WAITING" for i in self.instances.values())
            )
        ]
        page, size = int(q.get("page", 0)), int(q.get("size", 50))
        content = [
            {
                "planExecutionId": e.id,
                "pipelineIdentifier": e.pipeline,
                "name": e.pipeline.replace("_", " "),
                "runSequence": e.run,
                "status": "ApprovalWaiting",
                "executionTriggerInfo": {
                    "triggeredBy": {"identifier": e.triggered_by, "extraInfo": {"email": e.triggered_by}}
                },
            }
            for e in rows[page * size : (page + 1) * size]
        ]
        return web.json_response(
            {
                "status": "SUCCESS",
                "data": {
                    "content": content,
                    "totalPages": (len(rows) + size - 1) // size,
                    "totalElements": len(rows),
                },
            }
        )

    async def _list(self, request: web.Request) -> web.Response:
        self._expire()
        if not request.headers.get("Harness-Account"):
            return _bad("harnessAccount param value is required")
        status = request.query.get("approval_status", "WAITING")
        rows = [
            i.wire(self._validated(i))
            for i in self.instances.values()
            if i.execution.id == request.match_info["eid"] and i.status == status
        ]
        return web.json_response(rows)

    async def _members(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("accountIdentifier") != ACCOUNT:
            return _bad("accountIdentifier is required")
        identifier = request.match_info["identifier"]
        if "projectIdentifier" in q and "orgIdentifier" in q:
            ref = identifier
        elif "orgIdentifier" in q:
            ref = f"org.{identifier}"
        else:
            ref = f"account.{identifier}"
        if ref in self.unviewable and request[API_KEY] == SERVICE_TOKEN:
            return web.json_response(
                {
                    "status": "ERROR",
                    "code": "NG_ACCESS_DENIED",
                    "message": f"Missing permission core_usergroup_view on usergroup with identifier {identifier}",
                },
                status=403,
            )
        if ref not in self.groups:
            return web.json_response(
                {
                    "status": "ERROR",
                    "code": "RESOURCE_NOT_FOUND",
                    "message": f"User Group {identifier} not found",
                },
                status=404,
            )
        try:
            page, size = int(q.get("pageIndex", "0")), min(100, int(q.get("pageSize", "50")))
        except ValueError:
            return _bad("pageIndex and pageSize must be numbers")
        people = sorted(
            (u for u in self.users.values() if u["email"] in self.groups[ref]), key=lambda u: u["email"]
        )
        content = [
            {
                "name": u["name"],
                "email": u["email"],
                "uuid": u["uuid"],
                "locked": False,
                "disabled": False,
                "externallyManaged": False,
            }
            for u in people[page * size : (page + 1) * size]
        ]
        return web.json_response(
            {
                "status": "SUCCESS",
                "data": {
                    "totalPages": (len(people) + size - 1) // size,
                    "totalItems": len(people),
                    "pageItemCount": len(content),
                    "pageSize": size,
                    "content": content,
                    "pageIndex": page,
                    "empty": not content,
                },
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        self._expire()
        instance = self.instances.get(request.match_info["id"])
        if instance is None:
            return web.json_response({"status": "ERROR", "message": "not found"}, status=404)
        return web.json_response({"status": "SUCCESS", "data": instance.wire(self._validated(instance))})

    async def _me(self, request: web.Request) -> web.Response:
        user = self.users.get(request[API_KEY])
        if user is None:
            return _bad("SERVICE_ACCOUNT is not supported for Harness Approval Step yet")
        return web.json_response({"status": "SUCCESS", "data": user})

    async def _act_instance(self, request: web.Request) -> web.Response:
        self._expire()
        instance = self.instances.get(request.match_info["id"])
        if instance is None:
            return web.json_response({"status": "ERROR", "message": "not found"}, status=404)
        body = await request.json()
        return self._apply(request[API_KEY], instance, body, body.get("approverInputs") or [])

    async def _act_execution(self, request: web.Request) -> web.Response:
        self._expire()
        eid, callback = request.match_info["eid"], request.query.get("callback_id")
        if eid not in self.executions:
            return _bad(f"execution_id param value provided doesn't belong to Account: {ACCOUNT}")
        waiting = [
            i
            for i in self.instances.values()
            if i.execution.id == eid
            and i.status == "WAITING"
            and (callback is None or i.callback_id == callback)
        ]
        if not waiting:
            return _bad(
                f"Found no Harness Approval Instance waiting for pipeline execution id {eid} callback id {callback}"
            )
        if len(waiting) > 1:
            return _bad(
                f"Found more than 1 Harness Approval Instance waiting for pipeline execution id {eid}"
            )
        body = await request.json()
        return self._apply(request[API_KEY], waiting[0], body, body.get("approver_inputs") or [])

    def _refusal(self, user: dict[str, str], instance: Instance, inputs: list[dict[str, Any]]) -> str | None:
        """Why Harness refuses this person's decision on this instance (in its words), or None."""
        if instance.status == "EXPIRED":
            return "Harness approval instance has already expired"
        if instance.status != "WAITING":
            return f"Harness approval instance has already completed. Status: {instance.status}"
        if any(a["user"]["email"] == user["email"] for a in instance.activities):
            return "You have already approved/rejected the pipeline"
        if instance.disallow_executor and instance.execution.triggered_by == user["email"]:
            return "Pipeline executor is not allowed to approve/reject"
        if user["email"] in instance.disallowed:
            return (
                f"Action not permitted: You [{user['email']}] are on the disallowed user list for this step"
            )
        if not any(user["email"] in self.groups.get(g, set()) for g in instance.groups):
            return "User not authorized to approve/reject"
        for definition in instance.inputs:
            if definition.get("required") and not any(
                i.get("name") == definition["name"] and i.get("value") for i in inputs
            ):
                return f"Approver input {definition['name']} is required"
        return None

    def _apply(
        self, key: str, instance: Instance, body: dict[str, Any], inputs: list[dict[str, Any]]
    ) -> web.Response:
        user = self.users.get(key)
        if user is None:
            return _bad("SERVICE_ACCOUNT is not supported for Harness Approval Step yet")
        refusal = self._refusal(user, instance, inputs)
        if refusal is not None:
            return _bad(refusal)
        action = body.get("action")
        instance.activities.append(
            {
                "user": {"name": user["name"], "email": user["email"]},
                "action": action,
                "comments": body.get("comments") or "",
                "approvedAt": int(time.time() * 1000),
                "approverInputs": inputs,
            }
        )
        self.decisions.append((instance.id, str(action).lower(), user["uuid"]))
        if action == "REJECT":
            instance.status = "REJECTED"
        elif sum(1 for a in instance.activities if a["action"] == "APPROVE") >= instance.minimum:
            instance.status = "APPROVED"
            if instance.auto_reject:
                for other in self.instances.values():
                    if (
                        other.execution.pipeline == instance.execution.pipeline
                        and other.status == "WAITING"
                        and other.created_ms <= instance.created_ms
                        and other is not instance
                    ):
                        other.status = "REJECTED"
        return web.json_response({"status": "SUCCESS", "data": instance.wire(self._validated(instance))})


async def demo() -> SandboxSetup:
    sandbox = HarnessSandbox()
    sandbox.add_group("_project_all_approvers", [ALICE, BOB, CAROL], display="Project approvers")
    sandbox.add_waiting(
        pipeline="deploy_prod",
        groups=["_project_all_approvers"],
        message="Deploy payments 2.4 to production?",
        inputs=[
            {
                "name": "risk",
                "defaultValue": "low",
                "allowedValues": ["low", "medium", "high"],
                "required": True,
            }
        ],
    )
    sandbox.add_waiting(
        pipeline="db_migration",
        groups=["_project_all_approvers"],
        minimum=2,
        message="Run the ledger migration (needs two approvers)",
    )
    sandbox.add_waiting(
        pipeline="deploy_web",
        groups=["_project_all_approvers"],
        auto_reject=True,
        message="Promote web 7.1 to production?",
    )
    await sandbox.start()
    return SandboxSetup(
        connector=sandbox.connector_settings(),
        people={p.email: {"api_key": sandbox.key(p.handle)} for p in (ALICE, BOB, CAROL, DAVE)},
        stop=sandbox.stop,
        describe="Harness: three waiting approval steps",
        extra={"sandbox": sandbox},
    )
