"""HTTP for Harness: the execution summary, approval instances, acting, and who a key belongs to.

Harness returns errors as 400 `{status, code, message}` with "Invalid request: …" messages;
`classify_harness` maps each documented message (NOTES.md 1.6) once. 429 comes without
Retry-After, so reads back off exponentially with jitter (VendorHTTP).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from connectors.base import Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    Conflict,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from connectors.http import Sleep, VendorHTTP, default_classify, expect_list, expect_object, json_object

_RULES: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(r"already (approved|rejected)", re.I),
        lambda m, x: NotAllowed(m, reason="already_acted", detail=x),
    ),
    (re.compile(r"already completed\. Status: (\w+)", re.I), None),
    (re.compile(r"already expired", re.I), lambda m, x: AlreadyDecided(m, status=Status.EXPIRED, detail=x)),
    (
        re.compile(r"executor is not allowed", re.I),
        lambda m, x: NotAllowed(m, reason="self_approval", detail=x),
    ),
    (
        re.compile(r"disallowed user list", re.I),
        lambda m, x: NotAllowed(m, reason="disallowed_user", detail=x),
    ),
    (
        re.compile(r"not supported for Harness Approval Step|service account configured", re.I),
        lambda m, x: NotAllowed(m, reason="service_account", detail=x),
    ),
    (re.compile(r"not authorized", re.I), lambda m, x: NotAllowed(m, reason="not_approver", detail=x)),
    (re.compile(r"Found no Harness Approval Instance", re.I), lambda m, x: AlreadyDecided(m, detail=x)),
    (re.compile(r"more than 1 Harness Approval Instance", re.I), lambda m, x: Conflict(m, detail=x)),
    (re.compile(r"Invalid user", re.I), lambda m, x: AuthExpired(m, detail=x)),
    (
        re.compile(r"doesn't belong to Account|pipeline has been deleted", re.I),
        lambda m, x: NotFound(m, detail=x),
    ),
]
WIRE_STATUS = {
    "WAITING": Status.PENDING,
    "APPROVED": Status.APPROVED,
    "REJECTED": Status.REJECTED,
    "EXPIRED": Status.EXPIRED,
    "FAILED": Status.CANCELLED,
    "ABORTED": Status.CANCELLED,
}


def classify_harness(response: httpx.Response) -> ConnectorError | None:
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        text = str(body.get("message") or "") if isinstance(body, dict) else response.text
        where = f"{response.request.method} {response.request.url.path}: 400"
        for pattern, make in _RULES:
            match = pattern.search(text)
            if match is None:
                continue
            if make is None:
                return AlreadyDecided(where, status=WIRE_STATUS.get(match.group(1).upper()), detail=text)
            error: ConnectorError = make(where, text)
            return error
        return InvalidInput(where, detail=text)
    return default_classify(response)


class HarnessClient:
    def __init__(
        self,
        base_url: str,
        account: str,
        api_key: str,
        *,
        timeout: float,
        sleep: Sleep,
        backoff_base: float = 0.5,
    ) -> None:
        self.account = account
        self.http = VendorHTTP(
            base_url,
            headers={"x-api-key": api_key, "Harness-Account": account},
            timeout=timeout,
            classify=classify_harness,
            sleep=sleep,
            backoff_base=backoff_base,
            max_retries=4,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def waiting_executions(self, org: str, project: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            response = await self.http.read(
                "POST",
                "/pipeline/api/pipelines/execution/summary",
                params={
                    "accountIdentifier": self.account,
                    "orgIdentifier": org,
                    "projectIdentifier": project,
                    "page": page,
                    "size": 50,
                },
                json={"filterType": "PipelineExecution", "status": ["ApprovalWaiting"]},
            )
            where = "POST /pipeline/api/pipelines/execution/summary"
            data = expect_object(json_object(response).get("data") or {}, where)
            out.extend(expect_list(data.get("content") or [], where))
            page += 1
            if page >= int(data.get("totalPages") or 0):
                return out

    async def instances(self, org: str, project: str, execution_id: str) -> list[dict[str, Any]]:
        body = await self.http.get_json(
            f"/pipeline/api/v1/orgs/{org}/projects/{project}/approvals/execution/{execution_id}",
            params={"approval_status": "WAITING", "approval_type": "HarnessApproval"},
        )
        return expect_list(body, f"GET approvals of execution {execution_id}")

    async def instance(self, instance_id: str) -> dict[str, Any]:
        path = f"/pipeline/api/approvals/{instance_id}"
        body = await self.http.get_object(path, params={"accountIdentifier": self.account})
        return expect_object(body.get("data") or {}, f"GET {path}")

    async def act_on_instance(self, instance_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.send(
            "POST",
            f"/pipeline/api/approvals/{instance_id}/harness/activity",
            params={"accountIdentifier": self.account},
            json=body,
        )
        return expect_object(json_object(response).get("data") or {}, f"POST activity of {instance_id}")

    async def act_on_execution(
        self, org: str, project: str, execution_id: str, body: dict[str, Any], callback_id: str | None
    ) -> None:
        params = {"callback_id": callback_id} if callback_id else None
        await self.http.send(
            "POST",
            f"/pipeline/api/v1/orgs/{org}/projects/{project}/approvals/execution/{execution_id}",
            params=params,
            json=body,
        )

    async def group_members(
        self, identifier: str, *, org: str | None, project: str | None, page_size: int = 100
    ) -> list[dict[str, Any]]:
        """Every member of one user group at its scope (account, org or project), page by page.

        `POST /ng/api/user-groups/{identifier}/users` (a read, despite the verb: its body is an
        optional filter) needs USERGROUP_VIEW (`core_usergroup_view`); without it Harness answers
        403, which reaches the caller as NotAllowed(reason="permission")."""
        scope: dict[str, Any] = {"accountIdentifier": self.account}
        if org:
            scope["orgIdentifier"] = org
            if project:
                scope["projectIdentifier"] = project
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            response = await self.http.read(
                "POST",
                f"/ng/api/user-groups/{identifier}/users",
                params={**scope, "pageIndex": page, "pageSize": page_size},
                json={},
            )
            data = response.json().get("data") or {}
            content = data.get("content") or []
            out.extend(content)
            page += 1
            if not content or page >= int(data.get("totalPages") or 0):
                return out

    async def current_user(self) -> dict[str, Any]:
        path = "/ng/api/user/currentUser"
        body = await self.http.get_object(path, params={"accountIdentifier": self.account})
        return expect_object(body.get("data") or {}, f"GET {path}")
