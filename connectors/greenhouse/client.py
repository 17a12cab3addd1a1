"""Harvest over HTTP: paths, Basic auth with the organisation's key, On-Behalf-Of, wire models.

Everything here speaks Greenhouse's words (flows, approver groups, pending approvals); the mapping
to our domain lives in mapping.py. Two shapes of client:
- `HarvestClient` reads. It never sends On-Behalf-Of: listing is the organisation's business.
- `HarvestClient.acting_as(user_id)` returns the only object with write methods, and it sends
  `On-Behalf-Of: <that id>` on every write. A write without a named person cannot be expressed.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
    RateLimited,
    VendorUnavailable,
)
from connectors.greenhouse.pacing import HARVEST_WINDOW_SECONDS, RatePacer
from connectors.http import VendorHTTP, default_classify

# ---------------------------------------------------------------------------------------------
# Wire models (the documented objects; unknown keys ignored, Greenhouse "will add properties")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Approver(_Wire):
    id: int
    name: str = ""
    employee_id: str | None = None
    email_addresses: list[str] = []


class ApproverGroup(_Wire):
    id: int
    approvals_required: int = 1
    created_at: datetime | None = None
    resolved_at: datetime | None = None
    priority: int = 0
    job_id: int | None = None
    offer_id: int | None = None
    approvers: list[Approver] = []


class ApprovalFlow(_Wire):
    id: int
    offer_id: int | None = None
    sequential: bool = True
    version: int | None = None
    approval_type: str = "open_job"
    approval_status: str = "pending"
    job_id: int | None = None
    requested_by_user_id: int | None = None
    approver_groups: list[ApproverGroup] = []


class PendingApproval(_Wire):
    """One row of `GET /users/{id}/pending_approvals`: this user's turn (due) or not yet (waiting)."""

    id: int
    status: str
    created_at: datetime | None = None
    resolved_at: datetime | None = None
    request_sent_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    reminders_sent: int | None = None
    approver_group_id: int | None = None
    reminder_sent_by_user_id: int | None = None
    hiring_plan_id: int | None = None
    offer_id: int | None = None
    approval_flow_id: int
    approval_flow_type: str | None = None
    approval_flow_status: str | None = None


class User(_Wire):
    id: int
    name: str = ""
    first_name: str | None = None
    last_name: str | None = None
    primary_email_address: str | None = None
    emails: list[str] = []
    disabled: bool = False


class Named(_Wire):
    id: int | None = None
    name: str = ""


class Job(_Wire):
    id: int
    name: str = ""
    requisition_id: str | None = None
    status: str | None = None
    departments: list[Named | None] = []
    offices: list[Named | None] = []


class KeyedField(_Wire):
    name: str = ""
    type: str | None = None
    value: Any = None


class Offer(_Wire):
    id: int
    application_id: int | None = None
    candidate_id: int | None = None
    job_id: int | None = None
    starts_at: str | None = None
    status: str | None = None
    keyed_custom_fields: dict[str, KeyedField | None] = {}


class Candidate(_Wire):
    id: int
    first_name: str | None = None
    last_name: str | None = None

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or f"Candidate {self.id}"


_M = TypeVar("_M", bound=_Wire)


def _parse(model: type[_M], data: Any, where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VendorUnavailable(
            f"{where}: answer was not a {model.__name__} ({exc.error_count()} problems)"
        ) from exc


def _parse_list(model: type[_M], data: Any, where: str) -> list[_M]:
    if not isinstance(data, list):
        raise VendorUnavailable(f"{where}: expected a list")
    return [_parse(model, entry, where) for entry in data]


# ---------------------------------------------------------------------------------------------
# Errors: Greenhouse's documented status codes and bodies, in one place


def vendor_message(response: httpx.Response) -> str:
    """Greenhouse's own words: `message`, plus each validation error (`{"message", "field"}`)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = []
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        for error in errors:
            if isinstance(error, dict) and error.get("message"):
                field = error.get("field")
                parts.append(f"{field}: {error['message']}" if field else str(error["message"]))
    elif body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts)[:300]


def _first_field(response: httpx.Response) -> str | None:
    try:
        errors = response.json().get("errors")
        return str(errors[0]["field"]) if errors and errors[0].get("field") else None
    except (ValueError, AttributeError, LookupError, TypeError):
        return None


def classify(response: httpx.Response) -> ConnectorError | None:
    """Harvest's answers in our error tree (Harvest docs, "Errors" and "Validation")."""
    code = response.status_code
    if code < 400:
        return None
    where = f"{response.request.method} {response.request.url.path}"
    said = vendor_message(response)
    suffix = f": {said}" if said else ""
    if code == 401:
        # The organisation's Harvest key, not a person's: an admin must fix the config.
        return AuthExpired(
            f"{where}: 401 Greenhouse refused the Harvest API key{suffix}", detail=said or None
        )
    if code == 403:
        # No access to the record, a key without this endpoint's permission, or (on writes) an
        # On-Behalf-Of user who may not do this. Plain HTTP also gets 403 from Greenhouse.
        return NotAllowed(f"{where}: 403{suffix}", reason="permission", detail=said or None)
    if code == 404:
        return NotFound(f"{where}: 404{suffix}", detail=said or None)
    if code == 422:
        return InvalidInput(f"{where}: 422{suffix}", field=_first_field(response), detail=said or None)
    if code == 429:
        # Harvest's 429 carries neither Retry-After nor X-RateLimit-*; the pacer waits a window.
        return RateLimited(f"{where}: 429 over Greenhouse's rate limit", retry_after=None)
    return default_classify(response)


# ---------------------------------------------------------------------------------------------
# Auth (and pacing)


class _HarvestAuth(httpx.Auth):
    """Basic auth with the organisation's Harvest key (username = key, blank password).

    It also paces requests: this is the one hook VendorHTTP offers that runs before every attempt
    (retries included) and sees every answer (429s included) before it is classified. The key is
    only ever attached to requests for the configured origin.
    """

    def __init__(self, api_key: str, pacer: RatePacer, origin: tuple[str, str, int | None]) -> None:
        self._header = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()
        self._pacer = pacer
        self._origin = origin

    def __repr__(self) -> str:
        return "_HarvestAuth(<Harvest key>)"

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await self._pacer.wait()
        if _origin(str(request.url)) == self._origin:
            request.headers["Authorization"] = self._header
        response = yield request
        self._pacer.observe(response.status_code, response.headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


# ---------------------------------------------------------------------------------------------
# Clients


class HarvestClient:
    """Reads with the organisation's key. `acting_as` for the writes."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        api_version: str = "v1",
        timeout: float = 15.0,
        rate_window: float = HARVEST_WINDOW_SECONDS,
        max_retries: int = 3,
        backoff_base: float = 0.5,
    ) -> None:
        root = f"{base_url.rstrip('/')}/{api_version}"
        self.pacer = RatePacer(rate_window)
        self._origin = _origin(root)
        self.http = VendorHTTP(
            root,
            auth=_HarvestAuth(api_key, self.pacer, self._origin),
            headers={"Accept": "application/json"},
            timeout=timeout,
            classify=classify,
            max_retries=max_retries,
            backoff_base=backoff_base,
        )

    def __repr__(self) -> str:
        return f"HarvestClient({self.http.base_url!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    def acting_as(self, user_id: int) -> ActingClient:
        return ActingClient(self.http, user_id)

    async def _json(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params or None)
        try:
            return response.json()
        except ValueError as exc:
            raise VendorUnavailable(f"GET {path}: answer was not JSON") from exc

    async def _collect(self, path: str, **params: Any) -> list[Any]:
        """Every page of a collection, following Greenhouse's `Link: <…>; rel="next"` headers.

        Harvest says to follow the links and never build page parameters (the approvals lists use
        its newer scheme, which gives only `next`). A link to another host is refused: the Basic
        credentials must not follow it.
        """
        rows: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = params or None
        seen: set[str] = set()
        while url is not None:
            response = await self.http.get(url, params=query)
            query = None
            try:
                page = response.json()
            except ValueError as exc:
                raise VendorUnavailable(f"GET {path}: answer was not JSON") from exc
            if not isinstance(page, list):
                raise VendorUnavailable(f"GET {path}: expected a list")
            rows.extend(page)
            link = response.links.get("next", {}).get("url")
            if not link:
                break
            absolute = str(response.request.url.join(link))
            if _origin(absolute) != self._origin:
                raise VendorUnavailable(f"GET {path}: next page points at another host; not following")
            if absolute in seen:
                raise VendorUnavailable(f"GET {path}: Greenhouse repeated a page; stopping")
            seen.add(absolute)
            url = absolute
        return rows

    async def pending_approvals(self, user_id: int) -> list[PendingApproval]:
        path = f"/users/{user_id}/pending_approvals"
        return _parse_list(PendingApproval, await self._collect(path), f"GET {path}")

    async def approval_flow(self, flow_id: int) -> ApprovalFlow:
        path = f"/approval_flows/{flow_id}"
        return _parse(ApprovalFlow, await self._json(path), f"GET {path}")

    async def job_approval_flows(self, job_id: int) -> list[ApprovalFlow]:
        path = f"/jobs/{job_id}/approval_flows"
        return _parse_list(ApprovalFlow, await self._collect(path), f"GET {path}")

    async def job(self, job_id: int) -> Job:
        path = f"/jobs/{job_id}"
        return _parse(Job, await self._json(path), f"GET {path}")

    async def offer(self, offer_id: int) -> Offer:
        path = f"/offers/{offer_id}"
        return _parse(Offer, await self._json(path), f"GET {path}")

    async def candidate(self, candidate_id: int) -> Candidate:
        path = f"/candidates/{candidate_id}"
        return _parse(Candidate, await self._json(path), f"GET {path}")

    async def user(self, user_id: int) -> User:
        path = f"/users/{user_id}"
        return _parse(User, await self._json(path), f"GET {path}")

    async def users_by_email(self, email: str) -> list[User]:
        """Greenhouse matches the primary or any secondary email of a user."""
        return _parse_list(User, await self._collect("/users", email=email), "GET /users")

    async def any_user(self) -> list[User]:
        """One user, to prove the key works and may read users (for `check`)."""
        return _parse_list(User, await self._json("/users", per_page=1), "GET /users")


class ActingClient:
    """Writes as one Greenhouse user: `On-Behalf-Of` is fixed at construction, sent on every call.

    Writes are sent once, never retried (VendorHTTP.send): re-read to learn whether one took.
    """

    def __init__(self, http: VendorHTTP, user_id: int) -> None:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise ValueError("On-Behalf-Of must be a Greenhouse user id")
        self._http = http
        self.user_id = user_id

    def _headers(self) -> dict[str, str]:
        return {"On-Behalf-Of": str(self.user_id), "Content-Type": "application/json"}

    async def request_approvals(self, flow_id: int) -> None:
        """Start a flow: its first group goes from waiting to due; this user becomes the requester."""
        await self._http.send("POST", f"/approval_flows/{flow_id}/request_approvals", headers=self._headers())

    async def replace_approver(self, group_id: int, *, remove_user_id: int, add_user_id: int) -> None:
        """Swap one approver of an unresolved group; Greenhouse notifies the new one if it is due."""
        await self._http.send(
            "PUT",
            f"/approver_groups/{group_id}/replace_approvers",
            headers=self._headers(),
            json={"remove_user_id": remove_user_id, "add_user_id": add_user_id},
        )
