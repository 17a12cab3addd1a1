"""Failures a connector reports, sorted once into "try again later" and "final".

    ConnectorError
    ├── TransientError            the vendor may answer differently soon: retry reads, re-read after acts
    │   ├── RateLimited           429; `retry_after` seconds when the vendor said, else None
    │   └── VendorUnavailable     5xx, timeout, connection reset, unparseable answer
    └── FinalError                retrying the same call will not help
        ├── AuthExpired           credentials no longer work (401): the person must reconnect
        ├── NotAllowed            the vendor refused this person (`reason` says why, see below)
        ├── NotFound              the item (or user) does not exist at the vendor
        ├── AlreadyDecided        the item is no longer pending; `status` is what it became
        ├── InvalidInput          the request was refused for its content; `field` names the culprit
        ├── Unsupported           the vendor's API cannot do this at all
        └── Conflict              the vendor's state makes the call ambiguous (e.g. several matches)

`NotAllowed.reason` codes (the Slack edge turns each into words): "not_approver",
"self_approval", "disallowed_user", "already_acted", "service_account", "wrong_user",
"action_disabled", "license", "permission". Vendors may add codes; unknown ones fall back to the
vendor's own detail text.

Messages here are for logs and for the Slack edge to quote; they never contain credentials.
"""

from __future__ import annotations

from connectors.status import Status


class ConnectorError(Exception):
    """Base of every failure a connector raises."""

    def __init__(self, message: str = "", *, detail: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.detail = detail


class TransientError(ConnectorError):
    """May succeed later."""


class RateLimited(TransientError):
    def __init__(self, message: str = "rate limited", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VendorUnavailable(TransientError):
    """5xx, timeout, reset: for an action, the outcome is unknown until the item is re-read."""


class FinalError(ConnectorError):
    """Will not succeed by retrying the same call."""


class AuthExpired(FinalError):
    pass


class NotAllowed(FinalError):
    def __init__(
        self, message: str = "not allowed", *, reason: str = "not_approver", detail: str | None = None
    ):
        super().__init__(message, detail=detail)
        self.reason = reason


class NotFound(FinalError):
    pass


class AlreadyDecided(FinalError):
    def __init__(
        self, message: str = "already decided", *, status: Status | None = None, detail: str | None = None
    ):
        super().__init__(message, detail=detail)
        self.status = status


class InvalidInput(FinalError):
    def __init__(
        self, message: str = "invalid input", *, field: str | None = None, detail: str | None = None
    ):
        super().__init__(message, detail=detail)
        self.field = field


class Unsupported(FinalError):
    pass


class Conflict(FinalError):
    pass
