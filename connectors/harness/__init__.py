"""Harness pipeline approval steps, approved or rejected as the clicker with their own API key.

Listing uses a view-only service-account token per configured org/project (executions waiting
for approval, then their WAITING Harness approval instances); acting posts to the instance with
the clicking person's personal API key, so "more than one approval waiting" cannot happen.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from connectors.registry import ConnectorSpec, VendorSettings


class HarnessSettings(VendorSettings):
    base_url: str  # e.g. https://app.harness.io/gateway
    account: str
    projects: list[str]  # ["org/project", ...]
    token: str = Field(repr=False)  # service-account token, view only
    # "instance": act by approval instance id (recommended); "execution": the documented
    # execution-id route with callback_id, for installations where the instance route is not reachable.
    act_by: Literal["instance", "execution"] = "instance"
    ui_url: str = "https://app.harness.io"
    # A project with nothing waiting is polled again only every this many cycles.
    quiet_every: int = 3

    @field_validator("projects")
    @classmethod
    def _org_project(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if p.count("/") != 1 or not all(p.split("/"))]
        if bad or not value:
            raise ValueError(f'give projects as ["org/project", ...]; not {bad or value}')
        return value


def _build(name: str, settings: Any) -> Any:
    from connectors.harness.connector import HarnessConnector

    return HarnessConnector(name, settings)


async def _demo() -> Any:
    from connectors.harness.sandbox import demo

    return await demo()


SPEC = ConnectorSpec(type="harness", settings=HarnessSettings, build=_build, demo=_demo)
