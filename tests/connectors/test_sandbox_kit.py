"""The sandboxes' fault kit, as the FlexDeploy sandbox serves it: each fault does what it says,
at a rate when asked, and can be driven from outside the process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.flexdeploy.sandbox import SERVICE_PASSWORD, SERVICE_USER, FlexDeploySandbox

TASKS = "/flexdeploy/rest/v1/tasks/approval"


@pytest.fixture
async def session() -> AsyncIterator[httpx.AsyncClient]:
    """The bot's own HTTP client library (aiohttp's would resend a dropped request by itself)."""
    async with httpx.AsyncClient(auth=(SERVICE_USER, SERVICE_PASSWORD), timeout=10) as client:
        yield client


async def _status(session: httpx.AsyncClient, url: str, method: str = "GET") -> tuple[int, str]:
    response = await session.request(method, url)
    return response.status_code, response.text


async def test_each_fault_kind(fd: FlexDeploySandbox, session: httpx.AsyncClient) -> None:
    task = next(iter(fd.tasks))
    fd.slow_seconds = 0.2
    url = f"{fd.url}{TASKS}"
    for fault, expected in (("500", 500), ("503", 503), ("429", 429)):
        fd.fail_next(fault)  # type: ignore[arg-type]
        status, _ = await _status(session, url)
        assert status == expected
    fd.fail_next("garbage")
    status, text = await _status(session, url)
    assert status == 200 and text.startswith("<html>")
    fd.fail_next("slow_body")
    status, text = await _status(session, url)
    assert status == 200 and text.startswith("[")
    fd.fail_next("drop", method="PUT")
    with pytest.raises(httpx.TransportError):
        await _status(session, f"{url}/approve/{task}", "PUT")
    assert not fd.decisions, "a dropped request is never applied"
    fd.kit.hang_seconds = 0.3
    fd.fail_next("hang", method="PUT")
    status, _ = await _status(session, f"{url}/approve/{task}", "PUT")
    assert status == 504 and not fd.decisions, "a hung request is never applied"
    fd.fail_next("timeout", method="PUT")
    status, _ = await _status(session, f"{url}/approve/{task}", "PUT")
    assert status == 200 and len(fd.decisions) == 1, "a slow answer was applied"
    assert [e.fault for e in fd.kit.served] == [
        "500",
        "503",
        "429",
        "garbage",
        "slow_body",
        "drop",
        "hang",
        "timeout",
    ]


async def test_a_fault_rate_hits_about_that_share(fd: FlexDeploySandbox, session: httpx.AsyncClient) -> None:
    fd.kit.fail_rate(0.3, ["500"], seed=7)
    statuses = [(await _status(session, f"{fd.url}{TASKS}"))[0] for _ in range(100)]
    failed = statuses.count(500)
    assert 15 <= failed <= 45, failed
    assert set(statuses) == {200, 500}
    fd.kit.clear()
    assert (await _status(session, f"{fd.url}{TASKS}"))[0] == 200


async def test_control_endpoints(fd: FlexDeploySandbox, session: httpx.AsyncClient) -> None:
    control = f"{fd.url}/_sandbox"
    armed = await session.post(f"{control}/faults", json={"fault": "503", "count": 2})
    assert armed.status_code == 200
    refused = await session.post(f"{control}/faults", json={"fault": "bogus"})
    assert refused.status_code == 400
    assert "unknown fault" in refused.json()["error"]
    assert [(await _status(session, f"{fd.url}{TASKS}"))[0] for _ in range(3)] == [503, 503, 200]
    rate = await session.post(f"{control}/faults/rate", json={"rate": 1, "faults": ["429"]})
    assert rate.status_code == 200
    assert (await _status(session, f"{fd.url}{TASKS}"))[0] == 429
    assert (await session.delete(f"{control}/faults")).status_code == 200
    assert (await _status(session, f"{fd.url}{TASKS}"))[0] == 200
    log = (await session.get(f"{control}/requests")).json()
    assert [entry["fault"] for entry in log] == ["503", "503", None, "429", None]
    assert all(entry["path"] == TASKS for entry in log)
