"""Greenhouse Harvest: job and offer approval flows (notify, link, reassign, request; no approve)."""

from __future__ import annotations

from connectors.base import Connector
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.greenhouse.settings import GreenhouseSettings
from connectors.registry import ConnectorSpec, SandboxSetup, VendorSettings


def _build(name: str, settings: VendorSettings) -> Connector:
    if not isinstance(settings, GreenhouseSettings):
        raise TypeError(f"greenhouse connector {name!r} needs GreenhouseSettings")
    return GreenhouseConnector(name, settings)


async def _demo() -> SandboxSetup:
    # Imported here: the simulator (aiohttp server) is only needed by `approvals-bot demo` and tests.
    from connectors.greenhouse.sandbox import demo

    return await demo()


SPEC = ConnectorSpec(
    type="greenhouse",
    settings=GreenhouseSettings,
    build=_build,
    demo=_demo,
)
