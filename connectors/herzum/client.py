"""HTTP for Herzum Approval's REST API (Jira DC app) and the few Jira calls the cards need.

Wire facts (vendor document, NOTES.md section 3):
- Jira auth; the call runs as the authenticated Jira user. A password goes as HTTP Basic; a Jira
  Data Center personal access token goes as `Authorization: Bearer` (Jira refuses it as a Basic
  password). `Scheme` names the two.
- `GET …/issueapprovals?username=&status=` lists; with `startAt`/`maxResults` the answer becomes an
  envelope `{startAt, maxResults, total, issueApprovals}` instead of a bare array.
- `POST …/issueapprovals/{id}/action` with `{action, username, password?, comment?}`.
- Every error body is `{errorCode, errorMessage, status}`; `classify_herzum` maps each code once.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from connectors.errors import AuthExpired, ConnectorError, InvalidInput, NotAllowed, NotFound, Unsupported
from connectors.http import Sleep, VendorHTTP, default_classify, expect_list, json_object

API = "/rest/herzum-hap-services/1.0/api"
PAGE = 50

Scheme = Literal["basic", "bearer"]


class CredentialsRefused(AuthExpired):
    """Jira's own 401: refused before Herzum saw the call, so nothing happened and the other
    authentication scheme may be tried (unlike `issueapproval.credentials.wrong`, a 403 that
    Herzum answers after reading the request)."""


_CODES: dict[str, Any] = {
    # The password typed for one decision (require_password) was wrong: the person's stored link
    # (Basic auth, whose failure is Jira's own 401) is fine, so this is bad input, not expiry.
    "issueapproval.credentials.wrong": lambda m: InvalidInput(m, field="password"),
    "username.notcorrespond": lambda m: NotAllowed(m, reason="wrong_user"),
    "issueapproval.action.unauthorized": lambda m: NotAllowed(m, reason="not_approver"),
    "issueapproval.action.disabled": lambda m: NotAllowed(m, reason="action_disabled"),
    "license.invalid": lambda m: NotAllowed(m, reason="license"),
    "issueapproval.comment.required": lambda m: InvalidInput(m, field="comment"),
    "issueapproval.pwd.required": lambda m: InvalidInput(m, field="password"),
    "issueapproval.username.required": lambda m: InvalidInput(m, field="username"),
    "issueapproval.action.owls": lambda m: Unsupported(m),
    "issueapproval.notexist": lambda m: NotFound(m),
    "issueapproval.approval.notexist": lambda m: NotFound(m),
    "issue.notexist.or.noperm": lambda m: NotFound(m),
    "issues.notexist.or.noperm": lambda m: NotFound(m),
    "issueapproval.user.notfound": lambda m: NotFound(m),
}


def classify_herzum(response: httpx.Response) -> ConnectorError | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errorCode"), str):
        code = body["errorCode"]
        message = f"{response.request.method} {response.request.url.path}: {code}"
        make = _CODES.get(code)
        if make is not None:
            error: ConnectorError = make(message)
            error.detail = str(body.get("errorMessage") or code)
            return error
        if response.status_code < 500:
            return InvalidInput(message, detail=str(body.get("errorMessage") or code))
    if response.status_code == 401:
        where = f"{response.request.method} {response.request.url.path}"
        return CredentialsRefused(f"{where}: 401 credentials rejected")
    return default_classify(response)


class HerzumClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        secret: str,
        *,
        scheme: Scheme = "basic",
        timeout: float,
        sleep: Sleep,
        backoff_base: float = 0.5,
    ) -> None:
        self.scheme = scheme
        bearer = scheme == "bearer"
        self.http = VendorHTTP(
            base_url,
            auth=None if bearer else (username, secret),
            headers={"Authorization": f"Bearer {secret}"} if bearer else None,
            timeout=timeout,
            classify=classify_herzum,
            sleep=sleep,
            backoff_base=backoff_base,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def pending(self, username: str | None = None, *, page_size: int = PAGE) -> list[dict[str, Any]]:
        """Every PENDING approval (`username`: only those that Jira user can act on), page by page.

        Paging parameters switch Herzum to the envelope form; a bare array is still accepted."""
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            params: dict[str, Any] = {"status": "PENDING", "startAt": start, "maxResults": page_size}
            if username is not None:
                params["username"] = username
            body = await self.http.get_json(f"{API}/issueapprovals", params=params)
            page = expect_list(
                body.get("issueApprovals", []) if isinstance(body, dict) else body,
                f"GET {API}/issueapprovals",
            )
            out.extend(page)
            total = int(body.get("total", len(out))) if isinstance(body, dict) else len(out)
            start += len(page)
            if not page or start >= total:
                return out

    async def approvals_of_issue(self, issue_id: str) -> list[dict[str, Any]]:
        body = await self.http.get_json(f"{API}/issueapprovals", params={"issueids": issue_id})
        return expect_list(
            body.get("issueApprovals", []) if isinstance(body, dict) else body, f"GET {API}/issueapprovals"
        )

    async def issue(self, issue_id: str) -> dict[str, Any]:
        return await self.http.get_object(
            f"/rest/api/2/issue/{issue_id}", params={"fields": "summary,status"}
        )

    async def status_name(self, status_id: str) -> str:
        body = await self.http.get_object(f"/rest/api/2/status/{status_id}")
        return str(body.get("name") or status_id)

    async def user(self, username: str) -> dict[str, Any] | None:
        """Jira's profile of `username` (display name; email unless Jira hides it); None if gone."""
        try:
            body: dict[str, Any] = await self.http.get_json("/rest/api/2/user", params={"username": username})
        except NotFound:
            return None
        return body

    async def myself(self) -> dict[str, Any]:
        return await self.http.get_object("/rest/api/2/myself")

    async def act(self, approval_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.send("POST", f"{API}/issueapprovals/{approval_id}/action", json=body)
        return json_object(response)
