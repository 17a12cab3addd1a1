"""Fixtures shared by the Herzum connector's tests: a running Herzum sandbox kit.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.contract.kits.herzum import HerzumKit
from tests.running import started


@pytest.fixture
async def kit() -> AsyncIterator[HerzumKit]:
    async with started(HerzumKit()) as k:
        yield k
