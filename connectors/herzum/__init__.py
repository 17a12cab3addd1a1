"""Herzum Approval for Jira (Data Center): approvals on Jira issues, decided as the Jira user who clicked.

The service account lists every PENDING approval (`issueapprovals?status=PENDING`, paged); each
linked person's own listing (`username=<them>`) says who may decide which. Deciding posts
`issueapprovals/{id}/action` with the clicker's own Jira credentials (a password as Basic, a
personal access token as Bearer). An approval is actionable only while its issue is in the
approval's source status.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from connectors.registry import ConnectorSpec, VendorSettings


class HerzumSettings(VendorSettings):
    """The [[connectors]] keys of `type = "herzum"` (secrets kept out of the repr)."""

    base_url: str  # the Jira base URL, e.g. https://jira.example.com
    username: str  # the Jira service account that lists approvals
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    # Herzum's General Configuration demands the approver's password in each decision.
    require_password: bool = False
    # A comment is asked on every decision (Herzum's RAC, or house rules).
    require_comment: bool = False
    enable_abstain: bool = False
    enable_reset: bool = False
    ui_url: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> HerzumSettings:
        if bool(self.password) == bool(self.token):
            raise ValueError("give exactly one of password or token for the Jira service account")
        return self

    @property
    def secret(self) -> str:
        return self.password or self.token or ""

    @property
    def link_url(self) -> str:
        return (self.ui_url or self.base_url).rstrip("/")


def _build(name: str, settings: Any) -> Any:
    from connectors.herzum.connector import HerzumConnector

    return HerzumConnector(name, settings)


async def _demo() -> Any:
    from connectors.herzum.sandbox import demo

    return await demo()


SPEC = ConnectorSpec(type="herzum", settings=HerzumSettings, build=_build, demo=_demo)
