"""The cluster every reliability test starts its replicas in, on a PostgreSQL reset for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.conftest import PG_URL, _reset_postgres
from tests.reliability.replicas import Cluster


@pytest.fixture
async def cluster(
    tmp_path: Path, fd: FlexDeploySandbox, slack: SlackSandbox, secret_key: str
) -> AsyncIterator[Cluster]:
    await _reset_postgres(PG_URL)
    running = Cluster(tmp_path, PG_URL, fd, slack, secret_key)
    try:
        yield running
    finally:
        await running.stop_all()
