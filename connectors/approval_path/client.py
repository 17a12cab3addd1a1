"""HTTP for Approval Path for Jira: its Web API (app key) and the few Jira Cloud calls it needs.

Two APIs, one module, one classifier each:
- the Approval Path Web API (`Authorization: Bearer <key>`): approvals of one issue, path
  definitions, create and delete. Its error bodies are not documented; the classifier reads a
  `message`/`error`/`errorMessages` text wherever it finds one.
- Jira Cloud REST v3 with the connector's own account (email + API token, Basic auth): the JQL
  search that finds candidate issues, one issue, and user lookups (email <-> account id).
  Atlassian rate-limits with 429 and `Retry-After`, which VendorHTTP honours on reads.

Wire models keep the vendor's field names and tolerate what the samples show: ids sent as
numbers or strings, the key `"type"` repeated inside a step, fields missing in older answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
    VendorUnavailable,
)
from connectors.http import Sleep, VendorHTTP, default_classify

JIRA_API = "/rest/api/3"

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class WireStep(_Wire):
    """A step of a path (or of a definition). USER, GROUP, EMAIL or HTTP; action STARTED (the
    start marker), APPROVAL, CONSENT or NOTIFICATION."""

    type: str = ""
    status: str | None = None
    action: str | None = None
    decision: str | None = None
    decisionDate: str | None = None
    userId: str | None = None
    displayName: str | None = None
    groupId: str | None = None
    email: str | None = None
    name: str | None = None
    parallelGroupNumber: int | None = None
    requiredVotes: int | None = None
    requiredRejectVotes: int | None = None
    lastUpdated: str | None = None


class WireApproval(_Wire):
    """One approval path on an issue (`refId` is the issue id, `collectionId` the project id)."""

    id: str
    definitionId: str | None = None
    name: str = ""
    summary: str = ""
    collectionId: str | None = None
    refId: str | None = None
    status: str = ""
    steps: tuple[WireStep, ...] = ()
    # Absent in the first sample of the vendor document; the connector infers it then.
    activeSteps: tuple[WireStep, ...] | None = None
    modificationDate: str | None = None


class WireDefinition(_Wire):
    id: str
    name: str = ""
    description: str | None = None
    collectionId: str | None = None
    steps: tuple[WireStep, ...] = ()


class _Approvals(_Wire):
    result: tuple[WireApproval, ...] = ()
    totalCount: int | None = None


class _Definitions(_Wire):
    result: tuple[WireDefinition, ...] = ()
    totalCount: int | None = None


class JiraProject(_Wire):
    id: str = ""
    key: str = ""
    name: str = ""


class JiraFields(_Wire):
    summary: str = ""
    updated: str = ""
    project: JiraProject | None = None


class JiraIssue(_Wire):
    id: str
    key: str
    fields: JiraFields = JiraFields()

    @property
    def summary(self) -> str:
        return self.fields.summary

    @property
    def updated(self) -> str:
        return self.fields.updated

    @property
    def project_key(self) -> str:
        return self.fields.project.key if self.fields.project else self.key.rsplit("-", 1)[0]


class _SearchPage(_Wire):
    issues: tuple[JiraIssue, ...] = ()
    nextPageToken: str | None = None
    isLast: bool | None = None


class JiraUser(_Wire):
    accountId: str
    accountType: str = "atlassian"
    displayName: str = ""
    # Jira Cloud leaves it out when the person's privacy settings hide it from the caller.
    emailAddress: str | None = None
    active: bool = True


class _MemberPage(_Wire):
    """One page of `GET /rest/api/3/group/member` (offset paging with `isLast`)."""

    values: tuple[JiraUser, ...] = ()
    startAt: int = 0
    maxResults: int = 50
    total: int | None = None
    isLast: bool | None = None


def _parse(model: type[ModelT], data: Any, where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VendorUnavailable(f"{where}: answer not understood") from exc


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        where = f"{response.request.method} {response.request.url.path}"
        raise VendorUnavailable(f"{where}: answer was not JSON") from exc


def _error_text(response: httpx.Response) -> str:
    """The vendor's own words from an error body, whatever shape it took."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] if response.text else ""
    if isinstance(body, Mapping):
        for key in ("message", "error", "errorMessage"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
        messages = body.get("errorMessages")
        if isinstance(messages, Sequence) and messages and not isinstance(messages, str):
            return "; ".join(str(m) for m in messages)[:300]
        errors = body.get("errors")
        if isinstance(errors, Mapping) and errors:
            return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    return ""


def classify_approval_path(response: httpx.Response) -> ConnectorError | None:
    """Approval Path's answers into our error tree. The vendor documents no error bodies; the
    failure cases it names are a performer that does not resolve, a userId outside the key's
    group, and a key without the privilege (or outside its validity window or IP list)."""
    code = response.status_code
    if code < 400:
        return None
    where = f"{response.request.method} {response.request.url.path}"
    text = _error_text(response)
    lowered = text.lower()
    if code == 401:
        return AuthExpired(f"{where}: 401 the Approval Path API key was refused", detail=text)
    if code in (400, 403) and "performer" in lowered:
        return NotAllowed(f"{where}: {code} performer refused", reason="disallowed_user", detail=text)
    if code == 403:
        # A privilege the key lacks, or its validity window or IP list: the key's limits, not
        # the clicker's, so not "permission" (which the Slack edge words as the person's).
        return NotAllowed(f"{where}: 403 the API key may not do this", reason="key_permission", detail=text)
    if code == 404:
        return NotFound(f"{where}: 404 {text or 'not found'}", detail=text)
    if code == 400 and "definition" in lowered:
        return InvalidInput(f"{where}: 400 {text}", field="definitionId", detail=text)
    return default_classify(response)


def classify_jira(response: httpx.Response) -> ConnectorError | None:
    """Jira Cloud's answers: `{"errorMessages": [...], "errors": {...}}` bodies; 429 + Retry-After."""
    code = response.status_code
    if code < 400:
        return None
    where = f"{response.request.method} {response.request.url.path}"
    text = _error_text(response)
    if code == 401:
        return AuthExpired(f"{where}: 401 Jira refused the connector's email and API token", detail=text)
    if code == 400 and "jql" in text.lower():
        return InvalidInput(f"{where}: 400 the jql was refused", field="jql", detail=text)
    if code == 404:
        return NotFound(f"{where}: 404 {text or 'not found'}", detail=text)
    return default_classify(response)


class ApprovalPathClient:
    """The Web API at `base_url` (e.g. https://app.approval-path.com/webapi) with the app key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float, sleep: Sleep) -> None:
        self.http = VendorHTTP(
            base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=timeout,
            classify=classify_approval_path,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def approvals(self, ref: str) -> tuple[WireApproval, ...]:
        """Every path on one issue (key or id), running or finished. No paging is documented."""
        path = f"/approvals/{quote(ref, safe='')}"
        return _parse(_Approvals, await self.http.get_json(path), f"GET {path}").result

    async def definitions(self, project: str | None = None) -> tuple[WireDefinition, ...]:
        """The definitions of a project (key or id), or the global ones when `project` is None."""
        path = "/approval-definitions" + (f"/{quote(project, safe='')}" if project else "")
        return _parse(_Definitions, await self.http.get_json(path), f"GET {path}").result

    async def create(
        self, ref: str, *, definition_id: str, summary: str, user_id: str
    ) -> tuple[WireApproval, ...]:
        """Start a path; `userId` names the performer when the key's origin is "User from API call".

        The answer's shape is not documented; whatever approvals it carries are returned."""
        path = f"/approvals/{quote(ref, safe='')}"
        response = await self.http.send(
            "POST", path, json={"definitionId": definition_id, "summary": summary, "userId": user_id}
        )
        if not response.content:
            return ()
        data = _json(response)
        if isinstance(data, Mapping) and "result" in data:
            return _parse(_Approvals, data, f"POST {path}").result
        if isinstance(data, Mapping) and "id" in data:
            return (_parse(WireApproval, data, f"POST {path}"),)
        return ()

    async def delete(self, ref: str, approval_id: str, *, user_id: str, create_comment: bool) -> None:
        """Delete one path (running or finished); `createComment` leaves a comment on the issue."""
        path = f"/approvals/{quote(ref, safe='')}/{quote(approval_id, safe='')}"
        await self.http.send("DELETE", path, json={"userId": user_id, "createComment": create_comment})


class JiraClient:
    """Jira Cloud REST v3 as the connector's own account (search, issues, users)."""

    def __init__(self, jira_url: str, email: str, token: str, *, timeout: float, sleep: Sleep) -> None:
        self.http = VendorHTTP(
            jira_url,
            auth=(email, token),
            headers={"Accept": "application/json"},
            timeout=timeout,
            classify=classify_jira,
            sleep=sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def search(
        self, jql: str, *, fields: Sequence[str], page_size: int = 100, limit: int = 1000
    ) -> list[JiraIssue]:
        """The enhanced search (`/search/jql`, token paging; the old `/search` is gone from Cloud).

        The last page may carry no `nextPageToken` at all (JRACLOUD-92184), so either that or
        `isLast` ends the loop."""
        found: list[JiraIssue] = []
        last: list[_SearchPage] = []
        where = f"GET {JIRA_API}/search/jql"

        def following(_response: httpx.Response, current: Mapping[str, Any]) -> Mapping[str, Any] | None:
            page = last[-1]  # parsed by the loop below, which runs before VendorHTTP asks for the next page
            if page.isLast or not page.nextPageToken or len(found) >= limit:
                return None
            return {**current, "nextPageToken": page.nextPageToken}

        params = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
        async for response in self.http.pages(f"{JIRA_API}/search/jql", params=params, next_params=following):
            last.append(_parse(_SearchPage, _json(response), where))
            found.extend(last[-1].issues)
        return found[:limit]

    async def issue(self, key: str, *, fields: Sequence[str]) -> JiraIssue:
        path = f"{JIRA_API}/issue/{quote(key, safe='')}"
        data = await self.http.get_json(path, params={"fields": ",".join(fields)})
        return _parse(JiraIssue, data, f"GET {path}")

    async def users_matching(self, query: str) -> list[JiraUser]:
        """Jira's user search: `query` matches the start of a display name or an email address."""
        path = f"{JIRA_API}/user/search"
        data = await self.http.get_json(path, params={"query": query, "maxResults": 20})
        if not isinstance(data, list):
            raise VendorUnavailable(f"GET {path}: answer not understood")
        return [_parse(JiraUser, entry, f"GET {path}") for entry in data]

    async def user(self, account_id: str) -> JiraUser | None:
        path = f"{JIRA_API}/user"
        try:
            data = await self.http.get_json(path, params={"accountId": account_id})
        except NotFound:
            return None
        return _parse(JiraUser, data, f"GET {path}")

    async def group_members(
        self, *, group_id: str | None = None, group_name: str | None = None, page_size: int = 50
    ) -> list[JiraUser]:
        """Every active member of a Jira group, by id (preferred) or name, page by page.

        `isLast` ends the loop; a page shorter than asked, or past `total`, ends it too. Emails
        come as Jira shows them to the connector's account: absent where a profile hides them."""
        path = f"{JIRA_API}/group/member"
        where = f"GET {path}"
        params: dict[str, Any] = {"includeInactiveUsers": "false", "maxResults": page_size}
        params |= {"groupId": group_id} if group_id else {"groupname": group_name or ""}
        out: list[JiraUser] = []
        pages: list[_MemberPage] = []

        def following(_response: httpx.Response, current: Mapping[str, Any]) -> Mapping[str, Any] | None:
            page = pages[-1]
            seen = page.startAt + len(page.values)
            if page.isLast or not page.values or (page.total is not None and seen >= page.total):
                return None
            return {**current, "startAt": seen}

        async for response in self.http.pages(path, params={**params, "startAt": 0}, next_params=following):
            pages.append(_parse(_MemberPage, _json(response), where))
            out.extend(pages[-1].values)
        return [user for user in out if user.active]

    async def myself(self) -> JiraUser:
        path = f"{JIRA_API}/myself"
        return _parse(JiraUser, await self.http.get_json(path), f"GET {path}")
