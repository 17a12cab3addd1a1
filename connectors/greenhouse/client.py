"""Harvest v3 over HTTP: OAuth tokens per acting user, cursor paging, pacing, wire models.

Everything here speaks Greenhouse's words (approvers, approver groups, approval flows); the mapping
to our domain lives in mapping.py.

Who a call acts as is the `sub` its token was minted with (v1's On-Behalf-Of header is gone). So:
- `HarvestClient` reads with the service user's token (v3 lists answer only Site Admins);
- `HarvestClient.acting_as(user_id)` is the only object with write methods, and every one of its
  requests carries a token minted for that user. A write without a named person cannot be expressed.

Tokens are minted once per acting user and kept until shortly before they expire (the token
endpoint has its own, unpublished limit); a 401 from the API mints once more and retries once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
from connectors.http import VendorHTTP, default_classify, parse_retry_after

# v3 filters take at most 50 ids per call; per_page runs 1..500 (first request only).
MAX_IDS = 50
PER_PAGE = 500
# A token is renewed this long before it expires, so no request carries one that dies in flight.
TOKEN_MARGIN_SECONDS = 60.0
# When the token answer names no expiry at all: the reference example's lifetime.
DEFAULT_TOKEN_SECONDS = 3600.0

# ---------------------------------------------------------------------------------------------
# Wire models (the documented objects; unknown keys ignored: Greenhouse adds properties)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Approver(_Wire):
    """One person's slot in one approver group (`GET /v3/approvers`)."""

    id: int
    approver_group_id: int
    user_id: int
    status: str = "waiting"  # waiting | due | approved | rejected
    sort_order: int | None = None
    request_sent_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by_id: int | None = None
    reminder_sent_at: datetime | None = None
    reminders_sent: int | None = None
    auto_reminders_sent: int | None = None
    send_auto_reminder_at: date | datetime | None = None


class ApproverGroup(_Wire):
    id: int
    approval_flow_id: int
    approvals_required: int = 1
    sort_order: int = 0
    resolved_at: datetime | None = None
    created_at: datetime | None = None


class ApprovalFlow(_Wire):
    id: int
    job_id: int | None = None
    offer_id: int | None = None
    approval_type: str = "open_job"
    approval_status: str = "pending"
    sequential: bool = True
    version: int | None = None
    requested_by_id: int | None = None
    created_at: datetime | None = None


class User(_Wire):
    id: int
    name: str = ""
    first_name: str | None = None
    last_name: str | None = None
    primary_email: str | None = None
    emails: list[str] = []
    deactivated: bool = False
    site_admin: bool = False

    @property
    def label(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or f"User {self.id}"

    @property
    def addresses(self) -> list[str]:
        """Primary first, then the others, lower-cased, each once."""
        found: list[str] = []
        for email in [self.primary_email or "", *self.emails]:
            key = email.strip().lower()
            if key and key not in found:
                found.append(key)
        return found


class UserEmail(_Wire):
    user_id: int
    email: str
    verified: bool | None = None


class Job(_Wire):
    id: int
    name: str = ""
    requisition_id: str | None = None
    status: str | None = None


class Offer(_Wire):
    id: int
    application_id: int | None = None
    candidate_id: int | None = None
    job_id: int | None = None
    starts_on: str | None = None
    status: str | None = None
    custom_fields: dict[str, Any] = {}


class Candidate(_Wire):
    id: int
    first_name: str | None = None
    last_name: str | None = None

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or f"Candidate {self.id}"


_M = TypeVar("_M", bound=_Wire)


def _parse_list(model: type[_M], data: Any, where: str) -> list[_M]:
    if not isinstance(data, list):
        raise VendorUnavailable(f"{where}: expected a list")
    try:
        return [model.model_validate(entry) for entry in data]
    except ValidationError as exc:
        raise VendorUnavailable(
            f"{where}: answer was not a list of {model.__name__} ({exc.error_count()} problems)"
        ) from exc


# ---------------------------------------------------------------------------------------------
# Write bodies: section 10 of the v3 document says no source gives them. They are built here and
# nowhere else (the sandbox checks exactly this shape), so a correction is one change.


def replace_approver_body(*, remove_user_id: int, add_user_id: int) -> dict[str, Any]:
    """v1's field names (`remove_user_id`, `add_user_id`), the best available guess for v3."""
    return {"remove_user_id": remove_user_id, "add_user_id": add_user_id}


def request_approvals_body() -> dict[str, Any]:
    """The body is optional and its fields undocumented: an empty JSON object."""
    return {}


# ---------------------------------------------------------------------------------------------
# Errors: Greenhouse's status codes and bodies, in one place


def vendor_message(response: httpx.Response) -> str:
    """Greenhouse's own words: `message`, plus each entry of `errors` (strings or field maps)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        for error in errors:
            if isinstance(error, str):
                parts.append(error)
            elif isinstance(error, dict):
                if error.get("message"):
                    field = error.get("field")
                    parts.append(f"{field}: {error['message']}" if field else str(error["message"]))
                else:
                    parts.extend(f"{k}: {v}" for k, v in error.items())
    elif body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts)[:300]


def _first_field(response: httpx.Response) -> str | None:
    try:
        errors = response.json().get("errors")
        first = errors[0]
        if isinstance(first, dict):
            return str(first.get("field") or next(iter(first)))
    except (ValueError, AttributeError, LookupError, TypeError, StopIteration):
        return None
    return None


def classify(response: httpx.Response) -> ConnectorError | None:
    """Harvest v3's answers in our error tree (v3 document, section 5)."""
    code = response.status_code
    if code < 400:
        return None
    where = f"{response.request.method} {response.request.url.path}"
    said = vendor_message(response)
    suffix = f": {said}" if said else ""
    if code == 401:
        return AuthExpired(
            f"{where}: 401 Greenhouse refused the token even after a fresh one{suffix}",
            detail="Greenhouse did not accept the bot's Harvest v3 credential.",
        )
    if code == 403:
        # The credential lacks this endpoint's scope, or the acting user lacks the permission.
        return NotAllowed(
            f"{where}: 403{suffix}",
            reason="permission",
            detail=said
            or "Greenhouse says you may not do this (your Greenhouse permissions, or the bot's "
            "credential lacks the scope for it).",
        )
    if code == 404:
        return NotFound(f"{where}: 404{suffix}", detail=said or "Greenhouse no longer has this record.")
    if code == 422:
        return InvalidInput(
            f"{where}: 422{suffix}",
            field=_first_field(response),
            detail=said or "Greenhouse refused it as it stands.",
        )
    if code == 429:
        return RateLimited(
            f"{where}: 429 over Greenhouse's rate limit",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    return default_classify(response)


# ---------------------------------------------------------------------------------------------
# Tokens


def classify_token_error(status: int, body: Any) -> str:
    """Sort a token-endpoint refusal by its body (a bad client id is a 400, a bad secret a 401).

    Returns our own words only: the body may echo the client id, so it is never passed on.
    """
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    if "client ID suffix" in message or "client_id" in message:
        return "the client_id is malformed (a Greenhouse client id ends in -<number>)"
    if error in ("invalid_client", "unauthorized_client"):
        return "Greenhouse does not know this client_id/client_secret pair (wrong secret, or a revoked credential)"
    if "grant_type" in message:
        return "Greenhouse refused the grant type (client_credentials)"
    if error == "invalid_grant" or "sub" in message:
        return "Greenhouse refused to mint a token for this user (not a user of the organisation, or deactivated)"
    if status == 429:
        return "too many token requests (the token endpoint has its own limit)"
    if status == 401:
        return "Greenhouse refused the credential (missing or wrong client_id/client_secret)"
    return f"the token endpoint answered {status}"


@dataclass
class _Token:
    value: str
    renew_at: float


Clock = Callable[[], float]


class TokenBroker:
    """Mints and keeps one token per acting user (`sub`)."""

    def __init__(
        self,
        auth_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 15.0,
        clock: Clock = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._url = auth_url
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self._tokens: dict[int, _Token] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._clock = clock
        self._wall = wall
        self.minted = 0  # tokens requested so far (for tests and logs)

    def __repr__(self) -> str:
        return f"TokenBroker({self._url!r}, <credential>)"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def token(self, sub: int, *, stale: str | None = None) -> str:
        """A live token for `sub`; `stale`: the one the API just refused, replaced unless already."""
        lock = self._locks.setdefault(sub, asyncio.Lock())
        async with lock:
            held = self._tokens.get(sub)
            if held is not None and held.value != stale and held.renew_at > self._clock():
                return held.value
            fresh = await self._mint(sub)
            self._tokens[sub] = fresh
            return fresh.value

    async def _mint(self, sub: int) -> _Token:
        self.minted += 1
        try:
            response = await self._http.post(
                self._url,
                headers={"Authorization": self._basic, "Accept": "application/json"},
                data={"grant_type": "client_credentials", "sub": str(sub)},
            )
        except httpx.TimeoutException as exc:
            raise VendorUnavailable("Greenhouse's token endpoint timed out") from exc
        except httpx.TransportError as exc:
            raise VendorUnavailable(
                f"Greenhouse's token endpoint unreachable ({type(exc).__name__})"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500:
            raise VendorUnavailable(f"Greenhouse's token endpoint answered {response.status_code}")
        if response.status_code == 429:
            raise RateLimited(
                "too many token requests",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            why = classify_token_error(response.status_code, body)
            raise AuthExpired(f"Greenhouse token for user {sub}: {why}", detail=why)
        return _Token(str(body["access_token"]), self._renew_at(body))

    def _renew_at(self, body: dict[str, Any]) -> float:
        """Either `expires_in` (seconds) or `expires_at` (ISO 8601): sources disagree, read both."""
        lifetime: float | None = None
        raw_in = body.get("expires_in")
        if isinstance(raw_in, int | float) and not isinstance(raw_in, bool):
            lifetime = float(raw_in)
        raw_at = body.get("expires_at")
        if lifetime is None and isinstance(raw_at, str):
            try:
                at = datetime.fromisoformat(raw_at.replace("Z", "+00:00"))
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)
                lifetime = (at - self._wall()).total_seconds()
            except ValueError:
                lifetime = None
        if lifetime is None:
            lifetime = DEFAULT_TOKEN_SECONDS
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10)
        return self._clock() + max(0.0, lifetime - margin)


class _BearerAuth(httpx.Auth):
    """Bearer token of one acting user; paces every attempt; on a 401 mints once more and resends.

    A 401 means the request was not applied, so sending a write again after it is safe. The token
    is only attached to requests for the configured origin.
    """

    def __init__(
        self, broker: TokenBroker, sub: int, pacer: RatePacer, origin: tuple[str, str, int | None]
    ) -> None:
        self._broker = broker
        self._sub = sub
        self._pacer = pacer
        self._origin = origin

    def __repr__(self) -> str:
        return f"_BearerAuth(sub={self._sub})"

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if _origin(str(request.url)) != self._origin:
            raise VendorUnavailable("refusing to send a Greenhouse token to another host")
        token = await self._broker.token(self._sub)
        await self._pacer.wait()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        self._pacer.observe(response.status_code, response.headers)
        if response.status_code == 401:
            await response.aread()
            token = await self._broker.token(self._sub, stale=token)
            await self._pacer.wait()
            request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            self._pacer.observe(response.status_code, response.headers)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + MAX_IDS] for i in range(0, len(ordered), MAX_IDS)]


# ---------------------------------------------------------------------------------------------
# Clients


class HarvestClient:
    """Reads as the service user (a Site Admin). `acting_as` for the writes."""

    def __init__(
        self,
        base_url: str,
        *,
        auth_url: str,
        client_id: str,
        client_secret: str,
        service_user_id: int,
        api_version: str = "v3",
        timeout: float = 15.0,
        rate_window: float = HARVEST_WINDOW_SECONDS,
        max_retries: int = 3,
        backoff_base: float = 0.5,
    ) -> None:
        root = f"{base_url.rstrip('/')}/{api_version}"
        self.pacer = RatePacer(rate_window)
        self._origin = _origin(root)
        self.tokens = TokenBroker(auth_url, client_id, client_secret, timeout=timeout)
        self.service_user_id = service_user_id
        self.http = VendorHTTP(
            root,
            auth=_BearerAuth(self.tokens, service_user_id, self.pacer, self._origin),
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
        await self.tokens.aclose()

    def acting_as(self, user_id: int) -> ActingClient:
        return ActingClient(
            self.http.as_user(_BearerAuth(self.tokens, user_id, self.pacer, self._origin)), user_id
        )

    async def collect(self, path: str, params: dict[str, Any], *, per_page: int | None = None) -> list[Any]:
        """Every page of a list: the first request carries the filters (and `per_page`), each next
        one is the `Link rel="next"` URL exactly as given, with no parameter of ours added."""
        first = dict(params)
        if per_page is not None:
            first["per_page"] = per_page
        rows: list[Any] = []
        async for response in self.http.follow_links(path, params=first):
            if response.links.get("next", {}).get("url"):
                nxt = str(response.request.url.join(response.links["next"]["url"]))
                if _origin(nxt) != self._origin:
                    raise VendorUnavailable(f"GET {path}: next page points at another host; not following")
            try:
                page = response.json()
            except ValueError as exc:
                raise VendorUnavailable(f"GET {path}: answer was not JSON") from exc
            if not isinstance(page, list):
                raise VendorUnavailable(f"GET {path}: expected a list")
            rows.extend(page)
        return rows

    async def _by_ids(self, path: str, model: type[_M], ids: Iterable[int], **params: Any) -> list[_M]:
        rows: list[_M] = []
        for chunk in _chunks(ids):
            data = await self.collect(path, {**params, "ids": ",".join(map(str, chunk))})
            rows.extend(_parse_list(model, data, f"GET {path}"))
        return rows

    async def due_approvers(self) -> list[Approver]:
        data = await self.collect("/approvers", {"status": "due"}, per_page=PER_PAGE)
        return _parse_list(Approver, data, "GET /approvers")

    async def approvers_of_groups(self, group_ids: Iterable[int]) -> list[Approver]:
        rows: list[Approver] = []
        for chunk in _chunks(group_ids):
            data = await self.collect(
                "/approvers", {"approver_group_ids": ",".join(map(str, chunk))}, per_page=PER_PAGE
            )
            rows.extend(_parse_list(Approver, data, "GET /approvers"))
        return rows

    async def approvers_of_user(self, user_id: int, status: str) -> list[Approver]:
        data = await self.collect(
            "/approvers", {"user_ids": str(user_id), "status": status}, per_page=PER_PAGE
        )
        return _parse_list(Approver, data, "GET /approvers")

    async def groups(self, ids: Iterable[int]) -> list[ApproverGroup]:
        return await self._by_ids("/approver_groups", ApproverGroup, ids)

    async def groups_of_flows(self, flow_ids: Iterable[int]) -> list[ApproverGroup]:
        rows: list[ApproverGroup] = []
        for chunk in _chunks(flow_ids):
            data = await self.collect(
                "/approver_groups", {"approval_flow_ids": ",".join(map(str, chunk))}, per_page=PER_PAGE
            )
            rows.extend(_parse_list(ApproverGroup, data, "GET /approver_groups"))
        return rows

    async def flows(self, ids: Iterable[int]) -> list[ApprovalFlow]:
        return await self._by_ids("/approval_flows", ApprovalFlow, ids)

    async def flows_of_job(self, job_id: int) -> list[ApprovalFlow]:
        data = await self.collect("/approval_flows", {"job_ids": str(job_id)}, per_page=PER_PAGE)
        return _parse_list(ApprovalFlow, data, "GET /approval_flows")

    async def users(self, ids: Iterable[int]) -> list[User]:
        return await self._by_ids("/users", User, ids)

    async def users_by_email(self, email: str) -> list[User]:
        """Primary address via `/users?primary_email=`, any other via `/user_emails?email=`."""
        found = _parse_list(User, await self.collect("/users", {"primary_email": email}), "GET /users")
        if found:
            return found
        rows = _parse_list(
            UserEmail, await self.collect("/user_emails", {"email": email}), "GET /user_emails"
        )
        return await self.users(r.user_id for r in rows) if rows else []

    async def jobs(self, ids: Iterable[int]) -> list[Job]:
        return await self._by_ids("/jobs", Job, ids)

    async def offers(self, ids: Iterable[int]) -> list[Offer]:
        return await self._by_ids("/offers", Offer, ids)

    async def candidates(self, ids: Iterable[int]) -> list[Candidate]:
        return await self._by_ids("/candidates", Candidate, ids)

    async def approvers_page(self) -> Sequence[Any]:
        """One page of due approvers (for `check`: proves the token, the scope and Site Admin)."""
        response = await self.http.get("/approvers", params={"status": "due", "per_page": 1})
        data = response.json()
        return data if isinstance(data, list) else []


class ActingClient:
    """Writes as one Greenhouse user: every request carries a token whose `sub` is that user.

    Writes are sent once, never retried (VendorHTTP.send): re-read to learn whether one took.
    """

    def __init__(self, http: VendorHTTP, user_id: int) -> None:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise ValueError("a Greenhouse write must act as a Greenhouse user id")
        self._http = http
        self.user_id = user_id

    async def request_approvals(self, flow_id: int) -> None:
        """Start a flow: its first group goes from waiting to due; this user becomes the requester."""
        await self._http.send(
            "POST", f"/approval_flows/{flow_id}/request_approvals", json=request_approvals_body()
        )

    async def replace_approver(self, group_id: int, *, remove_user_id: int, add_user_id: int) -> None:
        """Swap one approver of an unresolved group; Greenhouse notifies the new one if it is due."""
        await self._http.send(
            "PUT",
            f"/approver_groups/{group_id}/replace_approver",
            json=replace_approver_body(remove_user_id=remove_user_id, add_user_id=add_user_id),
        )
