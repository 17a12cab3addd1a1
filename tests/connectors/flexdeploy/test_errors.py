"""FlexDeploy documents no error bodies: the classifier must understand the plausible ones.

Each case is an answer a FlexDeploy server (or the proxy in front of it) could give; the
classifier turns it into the error the bot words for the person.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.base import Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    Conflict,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
    RateLimited,
    VendorUnavailable,
)
from connectors.flexdeploy.client import classify_flexdeploy
from tests.contract.kits.flexdeploy import GROUP, FlexDeployKit


def answer(status: int, body: Any = None, *, text: str | None = None, method: str = "PUT") -> httpx.Response:
    request = httpx.Request(method, "https://fd.example.com/flexdeploy/rest/v1/tasks/approval/approve/42")
    if text is not None:
        return httpx.Response(status, text=text, request=request)
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, request=request)
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize(
    ("response", "expected", "status"),
    [
        (
            answer(400, {"message": "Approval task 42 is not pending: its status is APPROVED"}),
            AlreadyDecided,
            Status.APPROVED,
        ),
        (
            answer(500, text="FlexDeployException: Task 42 has already been rejected"),
            AlreadyDecided,
            Status.REJECTED,
        ),
        (answer(409, {"errorMessage": "Task is not in PENDING status"}), AlreadyDecided, None),
        (answer(400, {"error": "Task 42 was already completed"}), AlreadyDecided, Status.CANCELLED),
        (answer(500, {"message": "More than one approval task found"}), Conflict, None),
        (answer(403, {"message": "User dave is not a member of the approval group"}), NotAllowed, None),
        (answer(403, text="<html>Forbidden</html>"), NotAllowed, None),
        (answer(401, text="Authentication failure"), AuthExpired, None),
        (answer(404, {"message": "Approval task 42 was not found"}), NotFound, None),
        (answer(502, text="<html>Bad Gateway</html>"), VendorUnavailable, None),
        (answer(503, b"\xff\xfe not text"), VendorUnavailable, None),
        (answer(429, text="Too Many Requests"), RateLimited, None),
        (answer(400, {"message": "notes are too long"}), InvalidInput, None),
    ],
)
def test_answers_are_sorted_into_the_error_tree(
    response: httpx.Response, expected: type[ConnectorError], status: Status | None
) -> None:
    error = classify_flexdeploy(response)
    assert type(error) is expected
    if isinstance(error, AlreadyDecided):
        assert error.status is status
    if isinstance(error, NotAllowed):
        assert error.reason == "not_approver"


def test_a_success_is_not_an_error() -> None:
    assert classify_flexdeploy(answer(200, {"taskId": 42, "status": "APPROVED"})) is None


async def test_a_rate_limited_read_waits_and_retries(kit: FlexDeployKit) -> None:
    task = kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
    connector = kit.build()
    try:
        kit.sandbox.fail_next("429", 2)
        assert [i.external_id for i in await connector.fetch_pending()] == [str(task)]
        assert len(kit.sandbox.served) == 3
    finally:
        await connector.aclose()


async def test_a_timed_out_listing_is_transient(kit: FlexDeployKit) -> None:
    kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
    connector = kit.build(timeout=0.1)
    try:
        kit.sandbox.slow_seconds = 0.2
        kit.sandbox.fail_next("timeout", 4)
        with pytest.raises(VendorUnavailable, match="timed out"):
            await connector.fetch_pending()
    finally:
        await connector.aclose()
