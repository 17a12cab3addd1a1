"""The keys of a `type = "greenhouse"` [[connectors]] table."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from connectors.registry import VendorSettings

# Harvest v1/v2 is the API the vendor documents describe; Greenhouse removes it on 31 Aug 2026.
# Its replacement (v3) authenticates with OAuth 2.0 and pages with cursors: a different client,
# not a different path prefix, so only "v1" is accepted until that client exists.
SUPPORTED_API_VERSIONS = ("v1",)


class GreenhouseSettings(VendorSettings):
    base_url: str = "https://harvest.greenhouse.io"
    # The organisation's Harvest API key (Dev Center → API Credential Management). It needs the
    # Approvals, Users, Jobs, Offers and Candidates endpoints; without the last three, cards
    # simply show less context.
    api_key: SecretStr
    api_version: str = "v1"
    # Admin-pinned mappings, consulted before Greenhouse's lookup by email:
    # users = { "alice@example.com" = 4080001 }
    users: dict[str, int] = Field(default_factory=dict)
    # Where "Open in Greenhouse" links go.
    ui_url: str = "https://app.greenhouse.io"

    @field_validator("api_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in SUPPORTED_API_VERSIONS:
            raise ValueError(
                f'api_version {value!r} is not supported: use "v1" (Harvest v3 needs OAuth and is not '
                "supported yet; Greenhouse retires v1/v2 on 31 Aug 2026)"
            )
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

    @field_validator("base_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")
