"""FlexDeploy as an approvals-bot connector: the reference the other vendors follow.

Why it is shaped this way:
- Listing uses the service account (`username` + `password` or `token` in the config). The v1
  API has no status filter and no paging, so every task is read and the PENDING ones kept. An
  administrator sees every task; any other account only those of its approval groups.
- The v1 task has no approval-group field, so the connector cannot tell who may decide. Cards
  go to the connector's channel (no recipients) and FlexDeploy itself says no (403) to anyone
  outside the task's group, which the bot words for them.
- Acting is by task id only, with a client built for that one call from the clicker's own
  linked credentials; the service account never approves or rejects. Before the call, the
  task is re-read with the service account (the one that listed it) so that a task decided
  elsewhere is reported as such instead of being decided again.
- Tasks with an externalId are decided in Jira or ServiceNow (FlexDeploy approves its own task
  when that ticket is approved); they get no buttons, only a notice naming the ticket.
- The API tells neither who decided nor when: a decided item carries only FlexDeploy's notes.
- No per-task UI address is documented: the link opens the FlexDeploy UI and a field says
  where the task is (Tasks → Approval Tasks, task N).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from connectors.base import (
    Action,
    ActionSpec,
    Actor,
    ApprovalItem,
    Capabilities,
    Connector,
    CredentialField,
    Field,
    LinkedUser,
    Status,
    VendorIdentity,
)
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    Conflict,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
    Unsupported,
    VendorUnavailable,
)
from connectors.flexdeploy import FlexDeploySettings
from connectors.flexdeploy.client import FlexDeployClient, WireTask
from connectors.http import Sleep

log = logging.getLogger(__name__)

KIND_RELEASE = "Release gate"
KIND_PROJECT = "Project deployment"
KIND_APPLICATION = "Application deployment"

# FlexDeploy's externalSystemType values as people write them.
_SYSTEMS = {"JIRA": "Jira", "SERVICENOW": "ServiceNow", "SNOW": "ServiceNow"}

APPROVE_SPEC = ActionSpec(Action.APPROVE)
REJECT_SPEC = ActionSpec(
    Action.REJECT,
    comment="optional",
    confirm="Reject this approval task in FlexDeploy? What it gates will not go ahead.",
)
_EXPECTED = {Action.APPROVE: Status.APPROVED, Action.REJECT: Status.REJECTED}


def system_label(system_type: str | None) -> str:
    raw = (system_type or "").strip()
    return _SYSTEMS.get(raw.upper().replace(" ", ""), raw or "another system")


def _value(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


class FlexDeployConnector(Connector):
    type: ClassVar[str] = "flexdeploy"
    vendor_label: ClassVar[str] = "FlexDeploy"
    capabilities: ClassVar[Capabilities] = Capabilities(
        approve=True,
        reject=True,
        comments=True,
        link_mode="credentials",
        notes=(
            "Approve and reject by task id, as the clicker (username + password or API token).",
            "The v1 API does not say who is in a task's approval group: cards go to the channel.",
            "Tasks tied to a Jira or ServiceNow ticket are decided there, not from Slack.",
        ),
    )
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField(key="username", label="Username", secret=False),
        CredentialField(
            key="secret",
            label="Password or API token",
            hint="SSO users: create an API token in FlexDeploy (your profile → Tokens) and paste it here.",
        ),
    )

    def __init__(
        self,
        name: str,
        settings: FlexDeploySettings,
        *,
        timeout: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = 0.5,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self._timeout = timeout
        self.request_timeout = timeout
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._service = FlexDeployClient(
            settings.base_url,
            settings.username,
            settings.secret,
            timeout=timeout,
            sleep=sleep,
            backoff_base=backoff_base,
        )

    def _client(self, username: str, secret: str) -> FlexDeployClient:
        """A clicker's client: their credentials on each request, over the service account's pool."""
        return FlexDeployClient(self.settings.base_url, username, secret, pool=self._service.http)

    async def aclose(self) -> None:
        await self._service.aclose()

    # -- reading -------------------------------------------------------------------------------

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        items = [self._item(t) for t in await self._service.tasks() if t.state is Status.PENDING]
        items.sort(key=lambda i: (len(i.external_id), i.external_id))
        return items

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        return self._item(await self._service.task(_task_id(item)))

    async def check(self) -> str:
        states = [t.state for t in await self._service.tasks()]
        pending = states.count(Status.PENDING)
        return f"reachable as {self.settings.username}: {pending} pending of {len(states)} approval tasks"

    # -- mapping -------------------------------------------------------------------------------

    def _item(self, task: WireTask) -> ApprovalItem:
        kind, title, summary, fields = _describe(task)
        status = task.state
        fields.append(Field("Requestor path", _value(task.requestorPath) or "not given"))
        notices: list[str] = []
        if task.external:
            system = system_label(task.externalSystemType)
            fields.append(Field("Decided in", f"{system} {task.externalId}"))
            if status is Status.PENDING:
                notices.append(
                    f"Decided in {system} ({task.externalId}): approve or reject the {system} ticket; "
                    "FlexDeploy follows its decision."
                )
        fields.append(Field("In FlexDeploy", f"Tasks → Approval Tasks, task {task.taskId}"))
        fields.extend(Field(name, value) for name, value in sorted(task.flex_fields()))
        if status is Status.CANCELLED:
            notices.append(f"FlexDeploy reports this task as {_value(task.status) or 'without a status'}.")
        actions: tuple[ActionSpec, ...] = ()
        if status is Status.PENDING and not task.external:
            actions = (APPROVE_SPEC, REJECT_SPEC)
        ref = {"task_id": task.taskId, "request_type": task.requestType or ""}
        if task.external:
            ref |= {"external_id": task.externalId or "", "external_system": task.externalSystemType or ""}
        return ApprovalItem(
            connector=self.name,
            external_id=task.taskId,
            kind=kind,
            title=title,
            status=status,
            summary=summary,
            url=self.settings.link_url,
            fields=tuple(fields),
            actions=actions,
            notices=tuple(notices),
            decision_note=_value(task.notes) if status.final else None,
            ref=ref,
        )

    # -- acting --------------------------------------------------------------------------------

    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        """Decide as the clicker, with their own login, on a task re-read just before. A refusal
        that is not about the person is re-read again: the task may have moved on, and FlexDeploy's
        words do not always say what it became."""
        expected = _EXPECTED.get(action)
        if expected is None:
            raise Unsupported(f"FlexDeploy cannot {action.value} an approval task; only approve or reject")
        task_id = _task_id(item)
        username, secret = _credentials(actor)
        await self._still_decidable(task_id)
        notes = (comment or "").strip() or None
        async with self._client(username, secret) as client:
            decide = client.approve if action is Action.APPROVE else client.reject
            try:
                answer = await decide(task_id, notes)
            except (AlreadyDecided, NotFound, Conflict, InvalidInput) as exc:
                # A refusal that is not about the person: the task moved on since the re-read
                # above, or FlexDeploy's words did not say what it became.
                if isinstance(exc, AlreadyDecided) and exc.status is not None:
                    raise
                decided = await self._decided_after(task_id)
                if decided is None:
                    raise
                raise decided from exc
        return self._item(_settled(answer, expected, notes, task_id))

    async def _still_decidable(self, task_id: str) -> None:
        """Raise unless the task is pending and decided in FlexDeploy itself (not in an external
        system such as ServiceNow, whose approval FlexDeploy only mirrors)."""
        current = await self._current(task_id)
        if current.state is not Status.PENDING:
            raise AlreadyDecided(
                f"task {task_id} is {current.status}, no longer pending", status=current.state
            )
        if current.external:
            system = system_label(current.externalSystemType)
            raise Unsupported(
                f"task {task_id} is decided in {system} ({current.externalId}), not in FlexDeploy"
            )

    async def _current(self, task_id: str) -> WireTask:
        """The task as the service account reads it now; gone means nobody can decide it."""
        try:
            return await self._service.task(task_id)
        except NotFound as exc:
            raise AlreadyDecided(
                f"FlexDeploy no longer has approval task {task_id}", status=Status.CANCELLED
            ) from exc
        except NotAllowed as exc:
            # The service account listed this task but may not read it now: the account's
            # permissions changed, not the clicker's.
            raise NotAllowed(
                f"the bot's FlexDeploy account {self.settings.username} may not read task {task_id}",
                reason="service_permission",
                detail=exc.detail,
            ) from exc

    async def _decided_after(self, task_id: str) -> AlreadyDecided | None:
        """After a refusal on a decision: what the task became, or None while it is still pending
        (or cannot be read, in which case the refusal itself is the best answer)."""
        try:
            current = await self._service.task(task_id)
        except NotFound:
            return AlreadyDecided(
                f"FlexDeploy no longer has approval task {task_id}", status=Status.CANCELLED
            )
        except ConnectorError:
            return None
        if current.state.final:
            return AlreadyDecided(f"task {task_id} is {current.status}", status=current.state)
        return None

    # -- linking -------------------------------------------------------------------------------

    async def verify(self, credentials: Mapping[str, str]) -> VendorIdentity:
        """Check the credentials with the approval tasks API itself (the one acting needs), then
        look the person up in FlexDeploy's User API for a name and email, when it lets them."""
        username = (credentials.get("username") or "").strip()
        secret = credentials.get("secret") or ""
        if not username or not secret:
            raise AuthExpired("a FlexDeploy username and a password or API token are both needed")
        async with self._client(username, secret) as client:
            try:
                await client.tasks()
            except NotAllowed as exc:
                raise NotAllowed(
                    f"FlexDeploy accepted {username} but refuses them the approval tasks API",
                    reason="permission",
                    detail=exc.detail,
                ) from exc
            try:
                users = await client.users_named(username)
            except ConnectorError as exc:
                # Reading users may need more rights than approving; the name is a nicety.
                log.info("%s: no profile for %s (%s)", self.name, username, type(exc).__name__)
                users = []
        me = next((u for u in users if u.userName.lower() == username.lower()), None)
        if me is None:
            return VendorIdentity(user_id=username)
        return VendorIdentity(user_id=username, display_name=me.display_name, email=_value(me.email))


def _task_id(item: ApprovalItem) -> str:
    return item.ref.get("task_id") or item.external_id


def _credentials(actor: Actor) -> tuple[str, str]:
    """The clicker's own FlexDeploy login, as linked; never the service account's."""
    username = (actor.credentials.get("username") or actor.vendor_user_id or "").strip()
    secret = actor.credentials.get("secret") or ""
    if not username or not secret:
        raise AuthExpired(f"Slack user {actor.slack_user_id} has no FlexDeploy credentials linked")
    return username, secret


def _settled(answer: WireTask, expected: Status, notes: str | None, task_id: str) -> WireTask:
    """The task as the decision left it, or why the decision did not take."""
    if answer.state is expected:
        if answer.notes is None and notes:
            # The vendor's own reject example drops the notes from the echo (NOTES.md 4.3).
            return answer.model_copy(update={"notes": notes})
        return answer
    if answer.state.final:
        raise AlreadyDecided(f"task {task_id} is {answer.status}", status=answer.state)
    # Accepted without changing the task: the truth is unknown until the next re-read.
    raise VendorUnavailable(f"PUT task {task_id}: FlexDeploy answered but the task is still {answer.status}")


def _describe(task: WireTask) -> tuple[str, str, str, list[Field]]:
    """Kind, title, summary and the type's own fields, by request type."""
    describe = _DESCRIBERS.get((task.requestType or "").strip().lower())
    if describe is not None:
        return describe(task)
    label = _value(task.requestType)
    kind = f"{label} approval" if label else "Approval task"
    return kind, f"FlexDeploy approval task {task.taskId}", "", []


def _fields(*pairs: tuple[str, str | None]) -> list[Field]:
    """The fields that have a value (FlexDeploy sends blank strings for unset ones)."""
    return [Field(label, str(value).strip()) for label, value in pairs if _value(value)]


def _describe_release(task: WireTask) -> tuple[str, str, str, list[Field]]:
    """A release pipeline's gate: which release waits at which gate before which environment."""
    pipeline, env = _value(task.pipelineName), _value(task.environmentName)
    gate, release = _value(task.gateName), _value(task.releaseName)
    snapshot = _value(task.releaseSnapshot) or (f"#{task.snapshotId}" if task.snapshotId else None)
    fields = _fields(
        ("Pipeline", pipeline),
        ("Environment", env),
        ("Gate", gate),
        ("Release", release),
        ("Snapshot", snapshot),
    )
    what = f"release {release}" if release else f"pipeline {pipeline}" if pipeline else "a release"
    title = f"{gate or 'Release gate'}: {what}" + (f" → {env}" if env else "")
    where = f" before {env}" if env else ""
    snap = f" (snapshot {snapshot})" if snapshot else ""
    summary = f"{what[0].upper()}{what[1:]}{snap} waits at the {gate or 'approval'} gate{where}."
    return KIND_RELEASE, title, summary, fields


def _describe_project(task: WireTask) -> tuple[str, str, str, list[Field]]:
    project, version = _value(task.projectName), _value(task.projectVersionName)
    name = " ".join(p for p in (project, version) if p) or f"project task {task.taskId}"
    fields = _fields(("Project", project), ("Version", version))
    return KIND_PROJECT, f"Deploy {name}", f"{name} waits for approval to deploy.", fields


def _describe_application(task: WireTask) -> tuple[str, str, str, list[Field]]:
    application, version = _value(task.applicationName), _value(task.folderVersionName)
    name = " ".join(p for p in (application, version) if p) or f"application task {task.taskId}"
    fields = _fields(("Application", application), ("Version", version))
    return KIND_APPLICATION, f"Deploy {name}", f"{name} waits for approval to deploy.", fields


_DESCRIBERS: dict[str, Callable[[WireTask], tuple[str, str, str, list[Field]]]] = {
    "release": _describe_release,
    "project": _describe_project,
    "application": _describe_application,
}
