"""Fixtures shared by the Greenhouse connector's tests: a running Harvest sandbox kit and a connector built on it.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from connectors.greenhouse.connector import GreenhouseConnector
from tests.contract.kits.greenhouse import GreenhouseKit


@pytest.fixture
def kit(greenhouse_kit: GreenhouseKit) -> GreenhouseKit:
    """The Harvest sandbox kit of tests/conftest.py, under the name these tests use."""
    return greenhouse_kit


@pytest.fixture
async def connector(kit: GreenhouseKit) -> AsyncIterator[GreenhouseConnector]:
    async with aclosing(kit.build()) as built:
        yield built
