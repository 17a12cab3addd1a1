"""Fixtures shared by the FlexDeploy connector's tests: a running FlexDeploy sandbox kit and a connector built on it.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from connectors.flexdeploy.connector import FlexDeployConnector
from tests.contract.kits.flexdeploy import FlexDeployKit
from tests.running import started


@pytest.fixture
async def kit() -> AsyncIterator[FlexDeployKit]:
    async with started(FlexDeployKit()) as instance:
        yield instance


@pytest.fixture
async def connector(kit: FlexDeployKit) -> AsyncIterator[FlexDeployConnector]:
    async with aclosing(kit.build()) as made:
        yield made
