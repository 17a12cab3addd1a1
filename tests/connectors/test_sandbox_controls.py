"""Every vendor sandbox takes faults and shows its request log the same way, through the control
endpoints under /_sandbox/ (connectors/sandbox_kit.py), so a demo or a test from another process
can make any vendor misbehave without knowing which one it is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest

from connectors.approval_path.sandbox import ApprovalPathSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.greenhouse.sandbox import GreenhouseSandbox
from connectors.harness.sandbox import HarnessSandbox
from connectors.herzum.sandbox import HerzumSandbox


class Sandbox(Protocol):
    url: str

    async def start(self, host: str = ..., port: int = ...) -> None: ...
    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Vendor:
    name: str
    make: Callable[[], Any]
    api_path: str  # a read of the vendor's API (no credentials: the fault comes before the check)
    error_body: Any  # what the vendor's own 500 looks like (None: plain text)


VENDORS = [
    Vendor("harness", lambda: HarnessSandbox(slow_seconds=0.2), "/ng/api/user/currentUser", None),
    Vendor("herzum", lambda: HerzumSandbox(slow_seconds=0.2), "/rest/api/2/myself", None),
    Vendor(
        "greenhouse",
        lambda: GreenhouseSandbox(slow_seconds=0.2),
        "/v3/users",
        {"message": "Internal Server Error"},
    ),
    Vendor(
        "approval_path",
        lambda: ApprovalPathSandbox(slow_seconds=0.2),
        "/webapi/approval-definitions",
        {"message": "Internal Server Error"},
    ),
    Vendor(
        "flexdeploy",
        lambda: FlexDeploySandbox(slow_seconds=0.2),
        "/flexdeploy/rest/v1/tasks/approval",
        None,
    ),
]


@pytest.fixture(params=VENDORS, ids=lambda v: v.name)
async def running(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Vendor, Sandbox]]:
    vendor: Vendor = request.param
    sandbox: Sandbox = vendor.make()
    await sandbox.start()
    try:
        yield vendor, sandbox
    finally:
        await sandbox.stop()


async def test_a_fault_armed_from_outside_meets_the_next_api_call_and_is_logged(
    running: tuple[Vendor, Sandbox],
) -> None:
    vendor, sandbox = running
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        armed = await client.post("/_sandbox/faults", json={"fault": "500", "method": "GET"})
        assert armed.status_code == 200

        failed = await client.get(vendor.api_path)
        assert failed.status_code == 500
        if vendor.error_body is not None:
            assert failed.json() == vendor.error_body, "the vendor's own error body"

        after = await client.get(vendor.api_path)
        assert after.status_code != 500, "one fault, one request"

        log = (await client.get("/_sandbox/requests")).json()
        assert [(r["method"], r["path"], r["fault"]) for r in log] == [
            ("GET", vendor.api_path, "500"),
            ("GET", vendor.api_path, None),
        ], "the control calls themselves are not in the log"


async def test_a_bad_fault_is_refused_with_its_reason_and_faults_can_be_cleared(
    running: tuple[Vendor, Sandbox],
) -> None:
    vendor, sandbox = running
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        refused = await client.post("/_sandbox/faults", json={"fault": "teapot"})
        assert refused.status_code == 400
        assert "unknown fault 'teapot'" in refused.json()["error"]

        await client.post("/_sandbox/faults", json={"fault": "503", "count": 3})
        cleared = await client.delete("/_sandbox/faults")
        assert cleared.status_code == 200
        answered = await client.get(vendor.api_path)
        assert answered.status_code != 503, "no fault is left once cleared"
