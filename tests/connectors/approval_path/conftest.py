"""Fixtures shared by the Approval Path connector's tests: a running Approval Path (and Jira) sandbox.

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.approval_path.sandbox import ApprovalPathSandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[ApprovalPathSandbox]:
    instance = ApprovalPathSandbox(slow_seconds=0.3)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()
