"""Fixtures shared by the Approval Path connector's tests: a running Approval Path (and Jira) sandbox
(tests/conftest.py starts it; tests/reach uses the same one).

A test module that needs another set-up defines its own fixture of the same name, which wins.
"""

from __future__ import annotations

import pytest

from connectors.approval_path.sandbox import ApprovalPathSandbox


@pytest.fixture
def sandbox(approval_path_sandbox: ApprovalPathSandbox) -> ApprovalPathSandbox:
    """The Approval Path sandbox of tests/conftest.py, under the name these tests use."""
    return approval_path_sandbox
