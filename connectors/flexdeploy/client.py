"""HTTP for FlexDeploy's v1 Approval Tasks API (and its User API, for a linked person's name).

Wire facts this module keeps, from the vendor document and NOTES.md section 4:
- Basic auth; a FlexDeploy API token is accepted in place of the password (SSO users have only
  tokens). The call runs as that user.
- `GET /rest/v1/tasks/approval` returns every task the caller may see: no paging, no status
  filter. `GET /rest/v1/tasks/approval/{id}` returns one.
- `PUT /rest/v1/tasks/approval/approve/{id}?notes=...` and `.../reject/{id}?notes=...` return
  the updated task. The query forms (`.../approve?projectId=...`) throw when several tasks
  match, so this client does not offer them at all: it acts by task id only.
- The reject example of the document sends notes and shows `"notes": null` coming back, so
  the echo is not relied on.
- No error bodies are documented. `classify_flexdeploy` reads whatever text it finds (a JSON
  `message`/`error`/`errorMessage`/`detail`, or plain text) and recognises "not pending",
  "already approved" and "more than one task" wording whatever the status code, since Java
  REST services often answer an application exception with a bare 500.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.base import Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    Conflict,
    ConnectorError,
    NotAllowed,
    NotFound,
    VendorUnavailable,
)
from connectors.http import Sleep, VendorHTTP, default_classify

TASKS = "/rest/v1/tasks/approval"
USERS = "/rest/v1/administration/security/user"

_STATUS = {
    "PENDING": Status.PENDING,
    "APPROVED": Status.APPROVED,
    "REJECTED": Status.REJECTED,
}

# "Approval task 42 is not pending", "has already been approved", "already completed"...
_DECIDED = re.compile(
    r"\bnot\s+(?:in\s+)?pending\b|\balready\s+(?:been\s+)?(?:approved|rejected|completed|decided|cancell?ed)\b",
    re.IGNORECASE,
)
_STATUS_WORD = re.compile(r"\b(APPROVED|REJECTED|CANCELL?ED|COMPLETED|ABORTED|EXPIRED)\b", re.IGNORECASE)
_SEVERAL = re.compile(r"\bmore than one\b|\bmultiple\b.*\bmatch|\bonly one approval task\b", re.IGNORECASE)


def task_status(status: str | None) -> Status:
    """FlexDeploy's status word as ours. Only PENDING, APPROVED and REJECTED are documented;
    anything else (a cancelled request, an overridden gate) means nobody can decide it now."""
    return _STATUS.get((status or "").strip().upper(), Status.CANCELLED)


class _Wire(BaseModel):
    # Ids are Longs on the wire (folderRequestId a String); keep them all as text.
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class WireTask(_Wire):
    """One approval task: the common attributes, then those of each request type."""

    taskId: str
    status: str = ""
    requestType: str | None = None
    environmentId: str | None = None
    requestorPath: str | None = None
    # The shape of a FlexField is not documented: kept raw, read by `flex_fields`.
    flexFields: tuple[Any, ...] | None = None
    externalId: str | None = None
    externalSystemId: str | None = None
    externalSystemType: str | None = None
    notes: str | None = None
    # Release
    snapshotId: str | None = None
    pipelineName: str | None = None
    environmentName: str | None = None
    gateName: str | None = None
    releaseName: str | None = None
    releaseDefinitionId: str | None = None
    releaseSnapshot: str | None = None
    pipelineStageGateExecId: str | None = None
    # Application (legacy)
    applicationId: str | None = None
    applicationName: str | None = None
    folderVersionName: str | None = None
    folderRequestId: str | None = None
    # Project
    projectId: str | None = None
    projectName: str | None = None
    projectVersionName: str | None = None
    workflowRequestId: str | None = None

    @property
    def state(self) -> Status:
        return task_status(self.status)

    @property
    def external(self) -> bool:
        """Approved in Jira or ServiceNow: FlexDeploy approves its own task when that ticket is."""
        return bool((self.externalId or "").strip())

    def flex_fields(self) -> list[tuple[str, str]]:
        """(name, value) of each flex field with a value, whatever keys the server used."""
        pairs: list[tuple[str, str]] = []
        for entry in self.flexFields or ():
            if not isinstance(entry, Mapping):
                continue
            name = next(
                (str(entry[k]) for k in ("displayName", "name", "label", "code") if entry.get(k)), None
            )
            value = entry.get("value", entry.get("fieldValue"))
            if name and value not in (None, ""):
                pairs.append((name, str(value)))
        return pairs


class WireUser(_Wire):
    """A user as the User API shows it (the password always comes back as "*****")."""

    userId: str | None = None
    userName: str
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    isActive: bool | None = None

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.firstName, self.lastName) if p and p.strip()).strip()


ModelT = TypeVar("ModelT", bound=BaseModel)


def _each_task(data: list[Any]) -> Iterator[WireTask]:
    for n in range(len(data)):
        entry, data[n] = data[n], None
        yield _parse(WireTask, entry, f"GET {TASKS}")


def _parse(model: type[ModelT], data: Any, where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VendorUnavailable(f"{where}: answer not understood") from exc


def error_text(response: httpx.Response, limit: int = 300) -> str:
    """The server's own words from an error answer, whatever shape it took."""
    try:
        body = response.json()
    except ValueError:
        try:
            return response.text.strip()[:limit]
        except UnicodeDecodeError:
            return ""
    if isinstance(body, Mapping):
        for key in ("message", "errorMessage", "error", "detail", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:limit]
    if isinstance(body, str):
        return body.strip()[:limit]
    return ""


def decided_status(text: str) -> tuple[bool, Status | None]:
    """Whether an error text says the task is no longer pending, and what it became if it says."""
    if not _DECIDED.search(text):
        return False, None
    word = _STATUS_WORD.search(text)
    if word is None:
        return True, None
    name = word.group(1).upper()
    return True, _STATUS.get(name, Status.CANCELLED)


def classify_flexdeploy(response: httpx.Response) -> ConnectorError | None:
    """FlexDeploy's answers into our error tree, in one place.

    401: the credentials (password or token) no longer work. 403: the caller is not in the
    task's approval group (nor an administrator). A "not pending" text: decided already.
    "More than one task matches": the query forms' documented exception (never used here, but
    recognised). 404, 429 and 5xx as usual."""
    code = response.status_code
    if code < 400:
        return None
    where = f"{response.request.method} {response.request.url.path}"
    text = error_text(response)
    if code == 401:
        return AuthExpired(f"{where}: 401 FlexDeploy refused the username and password or token")
    decided, status = decided_status(text)
    if decided and code != 429:
        return AlreadyDecided(
            f"{where}: {code} the task is no longer pending", status=status, detail=text or None
        )
    if _SEVERAL.search(text):
        return Conflict(f"{where}: {code} more than one approval task matched", detail=text or None)
    if code == 403:
        return NotAllowed(
            f"{where}: 403 not in the task's approval group", reason="not_approver", detail=text or None
        )
    if code == 404:
        return NotFound(f"{where}: 404 {text or 'not found'}", detail=text or None)
    return default_classify(response)


def _task_path(task_id: str, verb: str | None = None) -> str:
    # Task ids are Longs; anything else would change the path, so it is refused here.
    if not task_id.isdigit():
        raise NotFound(f"{task_id!r} is not a FlexDeploy task id")
    return f"{TASKS}/{verb}/{task_id}" if verb else f"{TASKS}/{task_id}"


class FlexDeployClient:
    """One FlexDeploy user's view of the API: the service account's, or a clicker's for one call.

    The username and secret go into httpx's Basic auth only; they appear in no message, log
    line or repr."""

    def __init__(
        self,
        base_url: str,
        username: str,
        secret: str,
        *,
        timeout: float = 15.0,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = 0.5,
        pool: VendorHTTP | None = None,
    ) -> None:
        """`pool`: another client's connections to use, with these credentials on each request."""
        self.username = username
        auth = httpx.BasicAuth(username, secret)
        self.http = (
            pool.as_user(auth)
            if pool is not None
            else VendorHTTP(
                base_url,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=timeout,
                classify=classify_flexdeploy,
                sleep=sleep,
                backoff_base=backoff_base,
            )
        )

    def __repr__(self) -> str:
        return f"FlexDeployClient({self.http.base_url!r}, user={self.username!r})"

    async def __aenter__(self) -> FlexDeployClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def tasks(self) -> Iterator[WireTask]:
        """Every approval task the caller may see, in any status (the API cannot filter by it).

        Yielded one by one while the parsed answer is let go entry by entry: the API has no paging,
        so at 100k tasks the whole answer, its parsed form and the caller's items would otherwise
        all sit in memory at once.
        """
        data = await self.http.get_json(TASKS)
        if not isinstance(data, list):
            raise VendorUnavailable(f"GET {TASKS}: expected a list of tasks")
        return _each_task(data)

    async def task(self, task_id: str) -> WireTask:
        path = _task_path(task_id)
        data = await self.http.get_json(path)
        # An empty answer for an unknown id is as good as a 404.
        if not data:
            raise NotFound(f"GET {path}: FlexDeploy has no approval task {task_id}")
        return _parse(WireTask, data, f"GET {path}")

    async def approve(self, task_id: str, notes: str | None = None) -> WireTask:
        return await self._decide("approve", task_id, notes)

    async def reject(self, task_id: str, notes: str | None = None) -> WireTask:
        return await self._decide("reject", task_id, notes)

    async def _decide(self, verb: str, task_id: str, notes: str | None) -> WireTask:
        """PUT by task id, sent once (VendorHTTP never retries a write)."""
        path = _task_path(task_id, verb)
        params = {"notes": notes} if notes else None
        response = await self.http.send("PUT", path, params=params)
        try:
            data = response.json()
        except ValueError as exc:
            raise VendorUnavailable(f"PUT {path}: answer was not JSON") from exc
        return _parse(WireTask, data, f"PUT {path}")

    async def users_named(self, username: str) -> list[WireUser]:
        """The User API's equals-search by user name (FlexDeploy's documented v1 User API)."""
        data = await self.http.get_json(USERS, params={"userName": username})
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list):
            raise VendorUnavailable(f"GET {USERS}: expected a list of users")
        return [_parse(WireUser, entry, f"GET {USERS}") for entry in data]
