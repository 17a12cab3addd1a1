"""The slice of Jira Cloud REST v3 the Approval Path connector uses, simulated for the sandbox.

Issues, projects and users in memory; Basic auth with one service account (email + API token);
the enhanced JQL search with token paging (no `nextPageToken` on the last page, as Jira Cloud
really answers: JRACLOUD-92184); user search by email or name prefix, with emails that a
person's privacy settings may hide; groups and their members (`/group/member`, offset paging with
`startAt`/`maxResults` and `isLast`, at most 50 a page, inactive users left out unless asked;
refused with 403 when the connector's account lacks "Browse users and groups", an assumption
about the body); the error body shape `{"errorMessages": [...], "errors": {}}`.

The JQL understood is deliberately tiny: `project = KEY`, `project in (A, B)` joined by AND,
and `ORDER BY updated|key ASC|DESC`. Anything else is refused the way Jira refuses bad JQL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

_ORDER = re.compile(r"(?:^|\s+)order\s+by\s+(updated|key)(?:\s+(asc|desc))?\s*$", re.I)
_PROJECT_EQ = re.compile(r"^project\s*=\s*\"?([A-Za-z][A-Za-z0-9_]*)\"?$", re.I)
_PROJECT_IN = re.compile(r"^project\s+in\s*\(([^)]*)\)$", re.I)


def jira_time(moment: datetime) -> str:
    """Jira's own timestamp spelling, e.g. 2026-11-23T22:53:39.123+0000."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def jira_error(status: int, *messages: str) -> web.Response:
    return web.json_response({"errorMessages": list(messages), "errors": {}}, status=status)


@dataclass
class JiraUserRecord:
    account_id: str
    display_name: str
    email: str
    active: bool = True
    account_type: str = "atlassian"
    # The person's profile hides their email from other users (and from the connector).
    email_hidden: bool = False

    def wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "accountId": self.account_id,
            "accountType": self.account_type,
            "displayName": self.display_name,
            "active": self.active,
        }
        if not self.email_hidden:
            data["emailAddress"] = self.email
        return data


@dataclass
class JiraIssueRecord:
    id: str
    key: str
    project_key: str
    project_id: str
    project_name: str
    summary: str
    updated: str
    comments: list[tuple[str, str]] = field(default_factory=list)

    def wire(self, fields: set[str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "summary": self.summary,
            "updated": self.updated,
            "project": {"id": self.project_id, "key": self.project_key, "name": self.project_name},
        }
        return {"id": self.id, "key": self.key, "fields": {k: v for k, v in values.items() if k in fields}}


class JiraSite:
    """In-memory Jira Cloud: what the search, issue and user endpoints answer from."""

    def __init__(self, *, email: str, token: str, stamp: Callable[[], datetime]) -> None:
        self.service_email = email
        self._token = token
        self._stamp = stamp
        self.users: dict[str, JiraUserRecord] = {}
        self.projects: dict[str, tuple[str, str]] = {}
        self.issues: dict[str, JiraIssueRecord] = {}
        self.page_cap = 100
        # Jira groups: group id -> (name, member account ids). The Approval Path sandbox shares it.
        self.groups: dict[str, tuple[str, set[str]]] = {}
        self.member_page_cap = 50
        # The connector's account has the "Browse users and groups" global permission.
        self.browse_users = True
        self._next_issue_id = 10000
        self._next_project_id = 10000
        self.service_user = self.add_user(
            "557058:0b07b07b-0000-4000-8000-approvalsbot", "Approvals Bot", email
        )

    # -- seeding -------------------------------------------------------------------------------

    def add_user(self, account_id: str, name: str, email: str, **options: Any) -> JiraUserRecord:
        self.users[account_id] = JiraUserRecord(account_id, name, email, **options)
        return self.users[account_id]

    def add_project(self, key: str, name: str | None = None) -> str:
        if key not in self.projects:
            self._next_project_id += 1
            self.projects[key] = (str(self._next_project_id), name or key)
        return self.projects[key][0]

    def add_issue(self, project: str, summary: str) -> JiraIssueRecord:
        project_id = self.add_project(project)
        number = 1 + sum(1 for issue in self.issues.values() if issue.project_key == project)
        self._next_issue_id += 1
        issue = JiraIssueRecord(
            id=str(self._next_issue_id),
            key=f"{project}-{number}",
            project_key=project,
            project_id=project_id,
            project_name=self.projects[project][1],
            summary=summary,
            updated=jira_time(self._stamp()),
        )
        self.issues[issue.key] = issue
        return issue

    def touch(self, key: str) -> None:
        """Someone edited the issue in Jira: its `updated` stamp moves."""
        self.issues[key].updated = jira_time(self._stamp())

    def find_issue(self, ref: str) -> JiraIssueRecord | None:
        found = self.issues.get(ref.upper())
        return found or next((i for i in self.issues.values() if i.id == ref), None)

    def find_project(self, ref: str) -> tuple[str, str] | None:
        """(key, id) of a project given its key or id."""
        if ref.upper() in self.projects:
            return ref.upper(), self.projects[ref.upper()][0]
        return next(((k, v[0]) for k, v in self.projects.items() if v[0] == ref), None)

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self, prefix: str) -> list[web.RouteDef]:
        api = f"{prefix}/rest/api/3"
        return [
            web.get(f"{api}/search/jql", self._search),
            web.get(f"{api}/issue/{{key}}", self._issue),
            web.get(f"{api}/user/search", self._user_search),
            web.get(f"{api}/user", self._user),
            web.get(f"{api}/myself", self._myself),
            web.get(f"{api}/group/member", self._group_members),
        ]

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.service_email}:{self._token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    def _refuse(self) -> web.Response:
        return jira_error(401, "Client must be authenticated to access this resource.")

    async def _search(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        jql = request.query.get("jql", "")
        try:
            matches = self._run_jql(jql)
        except ValueError as exc:
            return jira_error(400, f"Error in the JQL Query: {exc}")
        fields = {f.strip() for f in request.query.get("fields", "").split(",") if f.strip()}
        size = max(1, min(int(request.query.get("maxResults", "50") or 50), self.page_cap))
        token = request.query.get("nextPageToken")
        start = 0
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
            except ValueError:
                return jira_error(400, "The nextPageToken is invalid.")
        page = matches[start : start + size]
        body: dict[str, Any] = {"issues": [issue.wire(fields) for issue in page]}
        if start + size < len(matches):
            body["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
            body["isLast"] = False
        else:
            body["isLast"] = True
        return web.json_response(body)

    def _run_jql(self, jql: str) -> list[JiraIssueRecord]:
        order = _ORDER.search(jql)
        where = jql[: order.start()] if order else jql
        issues = list(self.issues.values())
        for clause in (c.strip() for c in re.split(r"\s+and\s+", where.strip(), flags=re.I) if c.strip()):
            if equal := _PROJECT_EQ.match(clause):
                keys = {equal.group(1).upper()}
            elif among := _PROJECT_IN.match(clause):
                keys = {k.strip().strip('"').upper() for k in among.group(1).split(",") if k.strip()}
            else:
                raise ValueError(f"the sandbox does not understand {clause!r}")
            unknown = keys - set(self.projects)
            if unknown:
                raise ValueError(f"The value '{sorted(unknown)[0]}' does not exist for the field 'project'.")
            issues = [i for i in issues if i.project_key in keys]
        # Without ORDER BY, Jira promises no order; the sandbox answers by issue id.
        issues.sort(key=lambda i: int(i.id))
        if order:
            by, direction = order.group(1).lower(), (order.group(2) or "asc").lower()
            issues.sort(key=(lambda i: i.updated) if by == "updated" else (lambda i: int(i.id)))
            if direction == "desc":
                issues.reverse()
        return issues

    async def _issue(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        issue = self.find_issue(request.match_info["key"])
        if issue is None:
            return jira_error(404, "Issue does not exist or you do not have permission to see it.")
        fields = {f.strip() for f in request.query.get("fields", "summary,updated,project").split(",")}
        return web.json_response(issue.wire(fields))

    async def _user_search(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        query = request.query.get("query", "").strip().lower()
        if not query:
            return jira_error(400, "The query parameter 'query' is required.")
        found = [
            user
            for user in self.users.values()
            if user.email.lower().startswith(query)
            or any(part.lower().startswith(query) for part in [user.display_name, *user.display_name.split()])
        ]
        return web.json_response([user.wire() for user in found])

    async def _user(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        user = self.users.get(request.query.get("accountId", ""))
        if user is None:
            return jira_error(404, "The user with the account ID could not be found.")
        return web.json_response(user.wire())

    async def _group_members(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        if not self.browse_users:
            return jira_error(403, "You do not have the permission to browse users and groups.")
        q = request.query
        group_id, name = q.get("groupId"), q.get("groupname")
        if not group_id and not name:
            return jira_error(400, "You must specify a group name or a group ID.")
        found = self.groups.get(group_id) if group_id else None
        if found is None and name:
            found = next((g for g in self.groups.values() if g[0] == name), None)
        if found is None:
            return jira_error(404, f"Group {group_id or name} does not exist.")
        try:
            start = int(q.get("startAt", "0") or 0)
            size = max(1, min(int(q.get("maxResults", "50") or 50), self.member_page_cap))
        except ValueError:
            return jira_error(400, "startAt and maxResults must be numbers.")
        inactive = q.get("includeInactiveUsers", "false").lower() == "true"
        members = sorted(
            (u for a in found[1] if (u := self.users.get(a)) is not None and (inactive or u.active)),
            key=lambda u: u.account_id,
        )
        page = members[start : start + size]
        last = start + size >= len(members)
        body: dict[str, Any] = {
            "self": str(request.url),
            "maxResults": size,
            "startAt": start,
            "total": len(members),
            "isLast": last,
            "values": [u.wire() for u in page],
        }
        if not last:
            body["nextPage"] = str(request.url.update_query(startAt=str(start + size)))
        return web.json_response(body)

    async def _myself(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse()
        return web.json_response(self.service_user.wire())
