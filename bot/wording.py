"""Vendor failures of the bot's own (service) connection, in plain words for admins and /approvals status."""

from __future__ import annotations

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    NotAllowed,
    NotFound,
    RateLimited,
    VendorUnavailable,
)


def explain_failure(exc: BaseException, vendor: str = "the vendor") -> str:
    if isinstance(exc, AuthExpired):
        return f"{vendor} refused the bot's service credentials (401): check them in the config"
    if isinstance(exc, NotAllowed):
        return f"{vendor} says the bot's service account lacks permission ({exc})"
    if isinstance(exc, NotFound):
        return f"{vendor} answered 404: check base_url in the config ({exc})"
    if isinstance(exc, RateLimited):
        return f"{vendor} is rate-limiting the bot; it backs off and tries again"
    if isinstance(exc, VendorUnavailable | TimeoutError):
        return f"{vendor} did not answer properly ({exc or 'timed out'}); retrying on the next sync"
    if isinstance(exc, ConnectorError):
        return f"{vendor}: {exc}"
    return str(exc)
