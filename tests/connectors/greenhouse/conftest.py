"""Fixtures shared by the Greenhouse connector's tests: a running Harvest sandbox kit and a connector built on it.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.greenhouse.connector import GreenhouseConnector
from tests.contract.kits.greenhouse import GreenhouseKit


@pytest.fixture
async def kit() -> AsyncIterator[GreenhouseKit]:
    instance = GreenhouseKit()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def connector(kit: GreenhouseKit) -> AsyncIterator[GreenhouseConnector]:
    built = kit.build()
    try:
        yield built
    finally:
        await built.aclose()
