"""One HTTP client per connector: timeouts, bounded fan-out, retries for reads only.

Why here and not in each vendor: every vendor needs the same care and it is easy to get wrong.
- Reads (`get`, and `post_read` for search-style POSTs) retry transient failures with exponential
  backoff and full jitter, honouring `Retry-After` when the vendor sends it (Harness does not).
- Writes (`send`) are never retried: approving twice is worse than failing once. The caller
  re-reads the item to learn whether a write that timed out took effect.
- A vendor's `classify` turns a response into our error tree (connectors/errors.py); the default
  handles 401/403/404/409/429/5xx. Messages name the method and path, never headers or credentials.
- Fan-out per client is capped (httpx is CPU-heavy past ~10 concurrent requests).
- Every answer is read defensively: a redirect nobody asked for (redirects are never followed: a
  credential must not travel to another host) or a body that is not the JSON shape expected
  becomes a `VendorUnavailable` naming the call, never a bare exception further up. Clients read
  bodies with `json_of` / `json_object` (or `get_object`) and `expect_list`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import http.cookiejar
import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import pydantic_core

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    NotAllowed,
    NotFound,
    RateLimited,
    TransientError,
    VendorUnavailable,
)

log = logging.getLogger(__name__)

Classifier = Callable[[httpx.Response], ConnectorError | None]
Sleep = Callable[[float], Awaitable[None]]
ErrorObserver = Callable[[str, str], None]

_observers: list[ErrorObserver] = []


def observe_errors(observer: ErrorObserver) -> None:
    """Be told (vendor host, error kind) of every failed vendor call; how /metrics counts them
    without connectors/ knowing about the bot."""
    _observers.append(observer)


def _observed(error: ConnectorError, host: str) -> ConnectorError:
    for observer in _observers:
        observer(host, type(error).__name__)
    return error


_NO_COOKIES = http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every vendor client.

    Why: a click acts with a client made for the clicker's own credentials, and httpx would load
    the CA bundle again for each one (tens of milliseconds of CPU, stalling every other request).
    """
    return httpx.create_ssl_context()  # httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or unparseable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def default_classify(response: httpx.Response) -> ConnectorError | None:
    """Status-code mapping shared by all vendors; vendors wrap it to read their error bodies."""
    code = response.status_code
    where = f"{response.request.method} {response.request.url.path}"
    if code < 400:
        return None
    if code == 401:
        return AuthExpired(f"{where}: 401 credentials rejected")
    if code == 403:
        return NotAllowed(f"{where}: 403 forbidden", reason="permission", detail=_snippet(response))
    if code == 404:
        return NotFound(f"{where}: 404 not found", detail=_snippet(response))
    if code == 429:
        return RateLimited(
            f"{where}: 429", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if code >= 500:
        return VendorUnavailable(f"{where}: {code}", detail=_snippet(response))
    from connectors.errors import InvalidInput

    return InvalidInput(f"{where}: {code}", detail=_snippet(response))


def _snippet(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body: the status code alone must do
        return ""
    return text[:limit]


class VendorHTTP:
    """A shared httpx.AsyncClient with the retry and error policy above."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        classify: Classifier = default_classify,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        concurrency: int = 8,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._host = httpx.URL(self.base_url).host or "unknown"
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            verify=tls_context(),
        )
        # No cookie is kept: the pool serves several people (see `as_user`), and a session cookie
        # from one answer must never ride along with someone else's request.
        self._client.cookies.jar.set_policy(_NO_COOKIES)
        self._auth: httpx.Auth | None = None
        self._owner = True
        self._classify = classify
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._limit = asyncio.Semaphore(concurrency)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._owner:
            await self._client.aclose()

    def as_user(self, auth: httpx.Auth) -> VendorHTTP:
        """The same connection pool, policy and limits, sending `auth` with each request.

        Why: a click acts with the clicker's own credentials; a client of its own per click would
        open a new connection (and TLS handshake) each time. Closing the view leaves the pool open.
        """
        view = copy.copy(self)
        view._auth = auth
        view._owner = False
        return view

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self._backoff_cap) + random.uniform(0, 0.25)
        return random.uniform(0, min(self._backoff_cap, self._backoff_base * (2**attempt)))

    async def _once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        where = f"{method} {path}"
        async with self._limit:
            try:
                if self._auth is not None:
                    kwargs = {**kwargs, "auth": self._auth}
                response = await self._client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                raise _observed(VendorUnavailable(f"{where}: timed out"), self._host) from exc
            except httpx.TransportError as exc:
                failed = VendorUnavailable(f"{where}: connection failed ({type(exc).__name__})")
                raise _observed(failed, self._host) from exc
        error = self._classify(response) or unexpected_redirect(response)
        if error is not None:
            raise _observed(error, self._host)
        return response

    async def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An idempotent request: transient failures are retried with backoff."""
        attempt = 0
        while True:
            try:
                return await self._once(method, path, **kwargs)
            except TransientError as exc:
                if attempt >= self._max_retries:
                    raise
                retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
                delay = self.backoff(attempt, retry_after)
                log.info("%s %s: %s; retrying in %.1fs", method, path, exc, delay)
                await self._sleep(delay)
                attempt += 1

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.read("GET", path, **kwargs)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return json_of(await self.get(path, **kwargs))

    async def get_object(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return json_object(await self.get(path, **kwargs))

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request that changes vendor state: sent once, never retried here."""
        return await self._once(method, path, **kwargs)

    async def pages(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        next_params: Callable[[httpx.Response, Mapping[str, Any]], Mapping[str, Any] | None],
        max_pages: int = 1000,
    ) -> AsyncIterator[httpx.Response]:
        """Follow a vendor's paging; refuses to loop when the vendor repeats a page token."""
        current: Mapping[str, Any] = dict(params or {})
        seen: set[str] = set()
        for _ in range(max_pages):
            response = await self.get(path, params=current)
            yield response
            following = next_params(response, current)
            if following is None:
                return
            token = repr(sorted(following.items()))
            if token in seen:
                raise VendorUnavailable(f"GET {path}: the vendor repeated a page; stopping")
            seen.add(token)
            current = following
        raise VendorUnavailable(f"GET {path}: more than {max_pages} pages")

    async def follow_links(
        self, url: str, *, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Follow RFC 8288 `Link: <...>; rel="next"` headers (Greenhouse, Jira Cloud)."""
        seen: set[str] = set()
        next_url: str | None = url
        current_params: Mapping[str, Any] | None = params
        while next_url:
            response = await self.get(next_url, params=current_params)
            yield response
            current_params = None
            link = response.links.get("next")
            next_url = link.get("url") if link else None
            if next_url:
                if next_url in seen:
                    raise VendorUnavailable(f"GET {url}: the vendor repeated a page; stopping")
                seen.add(next_url)


def never_sent(error: BaseException) -> bool:
    """Whether a failed call certainly never reached the vendor: the connection was refused, or
    could not be opened (or pooled) in time. Anything later may have been applied."""
    cause = error.__cause__
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _where(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path}"


def unexpected_redirect(response: httpx.Response) -> ConnectorError | None:
    """A 3xx is never a success here: the call did not happen where we sent it.

    Typical causes: a `base_url` missing a path or using http instead of https, or a single
    sign-on proxy sending API calls to its login page. The new location's host and path are named
    (never its query, which may carry tokens)."""
    code = response.status_code
    if not 300 <= code < 400:
        return None
    location = response.headers.get("Location", "")
    try:
        target = httpx.URL(location)
        shown = f"{target.host}{target.path}" if target.host else target.path
    except Exception:  # an unparseable Location tells nothing more
        shown = ""
    return VendorUnavailable(
        f"{_where(response)}: unexpected redirect {code}",
        detail=f"the vendor redirected this call{' to ' + shown if shown else ''}; check base_url",
    )


def json_of(response: httpx.Response) -> Any:
    """Parsed straight from the bytes, with repeated strings shared: a vendor listing of 100k tasks
    then costs no decoded copy of the text, and its thousands of equal values are kept once."""
    try:
        return pydantic_core.from_json(response.content)
    except ValueError as exc:
        failed = VendorUnavailable(f"{_where(response)}: answer was not JSON", detail=_snippet(response))
        raise _observed(failed, response.request.url.host) from exc


_json = json_of  # the name vendor clients already use


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body, which must be a JSON object."""
    return expect_object(json_of(response), _where(response))


def expect_object(value: Any, where: str) -> dict[str, Any]:
    """`value` when it is a JSON object; a classified error naming the call when not."""
    if not isinstance(value, dict):
        raise VendorUnavailable(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise VendorUnavailable(f"{where}: expected a JSON array, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
