"""The keys of a `type = "greenhouse"` [[connectors]] table (Harvest v3, OAuth client credentials)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.registry import VendorSettings

SUPPORTED_API_VERSIONS = ("v3",)

# One line, because `approvals-bot check` prints one line per problem: what happened and the fix.
V1_RETIRED = (
    "Harvest v1/v2 was retired by Greenhouse on 31 Aug 2026: create a Harvest v3 credential in "
    'Greenhouse (Configure > Dev Center > API Credentials > Create new credential, type "Harvest V3 '
    '(OAuth)"), then set client_id, client_secret and service_user_id instead of api_key, and '
    'api_version = "v3"'
)


class GreenhouseSettings(VendorSettings):
    base_url: str = "https://harvest.greenhouse.io"
    # The OAuth token endpoint; every token is minted here with `sub` = the user it acts as.
    auth_url: str = "https://auth.greenhouse.io/token"
    api_version: str = "v3"
    client_id: SecretStr
    client_secret: SecretStr
    # The Greenhouse user whose token lists approvals: v3 lists answer only Site Admins.
    service_user_id: int
    # Verifies Greenhouse's webhook deliveries (Signature: sha256 <hex>); none: webhooks refused.
    webhook_secret: SecretStr | None = None
    # Admin-pinned mappings, consulted before Greenhouse's lookup by email:
    # users = { "alice@example.com" = 4080001 }
    users: dict[str, int] = Field(default_factory=dict)
    # Where "Open in Greenhouse" links go.
    ui_url: str = "https://app.greenhouse.io"

    @model_validator(mode="before")
    @classmethod
    def _no_v1(cls, data: Any) -> Any:
        # Checked before anything else, so a v1 table gets this one line rather than a list of
        # missing v3 keys.
        if isinstance(data, dict) and (
            "api_key" in data or str(data.get("api_version", "v3")) in ("v1", "v2")
        ):
            raise ValueError(V1_RETIRED)
        return data

    @field_validator("api_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in SUPPORTED_API_VERSIONS:
            raise ValueError(f'api_version {value!r} is not supported: use "v3"')
        return value

    @field_validator("service_user_id")
    @classmethod
    def _positive(cls, value: int) -> int:
        if isinstance(value, bool) or value <= 0:
            raise ValueError("service_user_id must be a Greenhouse user id (a positive number)")
        return value

    @field_validator("users")
    @classmethod
    def _valid_users(cls, value: dict[str, int]) -> dict[str, int]:
        pinned: dict[str, int] = {}
        for email, user_id in value.items():
            key = email.strip().lower()
            if "@" not in key:
                raise ValueError(f"users: {email!r} is not an email address")
            if isinstance(user_id, bool) or user_id <= 0:
                raise ValueError(f"users: {email!r} must map to a Greenhouse user id (a positive number)")
            pinned[key] = user_id
        return pinned

    @field_validator("base_url", "ui_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")
