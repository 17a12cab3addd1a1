"""FlexDeploy approval tasks: release gates and deployment approvals, decided as the clicker.

FlexDeploy's v1 Approval Tasks API is the simplest honest approve/reject API among our vendors:
the connector lists every task with a service account, keeps the PENDING ones, and approves or
rejects a task by its id with the clicking person's own Basic-auth credentials (their password
or a FlexDeploy API token, which FlexDeploy accepts in place of the password).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from connectors.registry import ConnectorSpec, VendorSettings


class FlexDeploySettings(VendorSettings):
    """The [[connectors]] keys of `type = "flexdeploy"`.

    `password` and `token` are plain strings (the config test reads them back as given) but are
    kept out of the settings' repr, so a logged config never shows them.
    """

    # The FlexDeploy root, e.g. https://fd.example.com/flexdeploy; the bot appends /rest/v1/...
    base_url: str
    # The service account that lists tasks (an administrator sees every task; anyone else only
    # the tasks of their own approval groups). It never approves or rejects anything.
    username: str
    password: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    # Where people open FlexDeploy when it differs from base_url (a proxy or another host name).
    ui_url: str | None = None

    @field_validator("base_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _root_not_api(cls, value: str) -> str:
        # A common slip: pasting the API address. The bot appends /rest/v1/tasks/approval itself.
        if re.search(r"/rest(/v\d+)?(/|$)", value):
            raise ValueError(
                f"{value!r} points into the REST API: give the FlexDeploy root "
                "(like https://fd.example.com/flexdeploy); the bot appends /rest/v1/tasks/approval"
            )
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the FlexDeploy service account's username is empty")
        return value.strip()

    @field_validator("password", "token")
    @classmethod
    def _blank_is_absent(cls, value: str | None) -> str | None:
        # "${FD_PASSWORD}" set to an empty string must not count as a password.
        if value is None:
            return None
        return value.strip() or None

    @model_validator(mode="after")
    def _one_secret(self) -> FlexDeploySettings:
        if self.password and self.token:
            raise ValueError("give either password or token for the FlexDeploy service account, not both")
        if not self.password and not self.token:
            raise ValueError(
                "missing password or token: give the FlexDeploy service account's password or an API token"
            )
        return self

    @property
    def secret(self) -> str:
        """The service account's password or API token (FlexDeploy takes either in Basic auth)."""
        return self.password or self.token or ""

    @property
    def link_url(self) -> str:
        return self.ui_url or self.base_url


def _build(name: str, settings: Any) -> Any:
    from connectors.flexdeploy.connector import FlexDeployConnector

    return FlexDeployConnector(name, settings)


async def _demo() -> Any:
    from connectors.flexdeploy.sandbox import demo

    return await demo()


SPEC = ConnectorSpec(
    type="flexdeploy",
    settings=FlexDeploySettings,
    build=_build,
    demo=_demo,
)
