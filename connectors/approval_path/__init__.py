"""Approval Path for Jira (Warsaw Dynamics): paths on Jira Cloud issues, followed from Slack.

The vendor's Web API cannot approve or reject, and lists approvals one issue at a time. So the
connector finds candidate issues with its own Jira Cloud account (`jql`), reads the approvals of
each, tells the approvers of the active steps, and offers what the API can do: start a path and
delete (cancel) one, both attributed to the clicking person through the key's performer `userId`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import Field, SecretStr, field_validator

from connectors.registry import ConnectorSpec, VendorSettings

_DURATION = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ApprovalPathSettings(VendorSettings):
    """The [[connectors]] keys of `type = "approval_path"`."""

    base_url: str = "https://app.approval-path.com/webapi"
    api_key: SecretStr
    # Jira Cloud site, e.g. https://example.atlassian.net; the bot appends /rest/api/3/…
    jira_url: str
    jira_email: str
    jira_token: SecretStr
    # Which issues may carry paths; "ORDER BY updated DESC" is added when it has no ORDER BY.
    jql: str = Field(min_length=1)
    # At most this many issues have their approvals read per poll (newest updated first); the
    # rest wait for the next poll, so a large site stays within Atlassian's rate limits.
    max_issues_per_poll: int = Field(default=50, ge=1, le=1000)
    # An unchanged issue with a path in progress is still re-read this often: a vote in the
    # Approval Path panel is not known to change the issue's `updated` stamp.
    recheck_after: timedelta = timedelta(minutes=15)
    # Where people open issues when it differs from jira_url (a custom domain); default jira_url.
    ui_url: str | None = None

    @field_validator("base_url", "jira_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("recheck_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        # The config file writes durations as "90s", "15m", "4h", "2d" (DESIGN.md section 1).
        if isinstance(value, str) and _DURATION.match(value):
            total = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)\s*([smhd])", value))
            if total < 1:
                raise ValueError(f"bad duration {value!r}: it must be at least one second")
            return timedelta(seconds=total)
        if isinstance(value, str):
            raise ValueError(f"bad duration {value!r}: use a number and a unit, like 90s, 15m, 4h or 2d")
        return value


def _build(name: str, settings: Any) -> Any:
    from connectors.approval_path.connector import ApprovalPathConnector

    return ApprovalPathConnector(name, settings)


async def _demo() -> Any:
    from connectors.approval_path.sandbox import demo

    return await demo()


SPEC = ConnectorSpec(
    type="approval_path",
    settings=ApprovalPathSettings,
    build=_build,
    demo=_demo,
)
