"""Fixtures shared by the FlexDeploy connector's tests: a running FlexDeploy sandbox kit and a connector built on it.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.flexdeploy.connector import FlexDeployConnector
from tests.contract.kits.flexdeploy import FlexDeployKit


@pytest.fixture
async def kit() -> AsyncIterator[FlexDeployKit]:
    instance = FlexDeployKit()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def connector(kit: FlexDeployKit) -> AsyncIterator[FlexDeployConnector]:
    made = kit.build()
    try:
        yield made
    finally:
        await made.aclose()
