"""Whatever a vendor answers, the bot gets a classified error naming the call, never a crash.

A real HTTP server on 127.0.0.1 answers with what vendors and the proxies in front of them do send
on a bad day: a login-page redirect, an HTML error page with status 200, JSON of the wrong shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from connectors.errors import VendorUnavailable
from connectors.harness.client import HarnessClient
from connectors.herzum.client import HerzumClient
from connectors.http import VendorHTTP


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def vendor() -> AsyncIterator[dict[str, web.Response]]:
    """Answers each path with the response the test put under it (a fresh copy each time)."""
    answers: dict[str, web.Response] = {}

    async def answer(request: web.Request) -> web.StreamResponse:
        template = answers[request.path]
        return web.Response(status=template.status, body=template.body, headers=dict(template.headers))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    answers["base"] = web.Response(text=f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        yield answers
    finally:
        await runner.cleanup()


def _base(answers: dict[str, web.Response]) -> str:
    body = answers["base"].body
    assert isinstance(body, bytes)
    return body.decode()


async def test_a_redirect_is_not_a_success(vendor: dict[str, web.Response]) -> None:
    vendor["/api/thing"] = web.Response(
        status=302, headers={"Location": "https://sso.example.com/login?token=secret-in-query"}
    )
    http = VendorHTTP(_base(vendor), sleep=_no_sleep, max_retries=0)
    try:
        with pytest.raises(VendorUnavailable) as caught:
            await http.send("POST", "/api/thing", json={"action": "approve"})
    finally:
        await http.aclose()
    assert "POST /api/thing: unexpected redirect 302" in str(caught.value)
    assert caught.value.detail is not None and "sso.example.com/login" in caught.value.detail
    assert "secret-in-query" not in f"{caught.value} {caught.value.detail}"


async def test_harness_answers_that_are_not_json_or_not_the_expected_shape(
    vendor: dict[str, web.Response],
) -> None:
    client = HarnessClient(_base(vendor), "acct", "pat.key", timeout=5, sleep=_no_sleep)
    try:
        vendor["/pipeline/api/pipelines/execution/summary"] = web.Response(
            status=200, text="<html>Service temporarily unavailable</html>", content_type="text/html"
        )
        with pytest.raises(VendorUnavailable, match="answer was not JSON"):
            await client.waiting_executions("org", "proj")
        vendor["/pipeline/api/approvals/inst-1/harness/activity"] = web.json_response(["unexpected"])
        with pytest.raises(VendorUnavailable, match="expected a JSON object, got an array"):
            await client.act_on_instance("inst-1", {"action": "APPROVE"})
        vendor["/pipeline/api/approvals/inst-1"] = web.json_response({"data": "not an object"})
        with pytest.raises(VendorUnavailable, match="expected a JSON object, got a string"):
            await client.instance("inst-1")
    finally:
        await client.aclose()


async def test_herzum_answers_that_are_not_json_or_not_the_expected_shape(
    vendor: dict[str, web.Response],
) -> None:
    client = HerzumClient(_base(vendor), "svc", "secret", timeout=5, sleep=_no_sleep)
    api = "/rest/herzum-hap-services/1.0/api"
    try:
        vendor[f"{api}/issueapprovals/7/action"] = web.Response(status=200, body=b"\xff\xfe garbage")
        with pytest.raises(VendorUnavailable, match="answer was not JSON"):
            await client.act("7", {"action": "approve", "username": "alice"})
        vendor[f"{api}/issueapprovals"] = web.json_response({"issueApprovals": {"oops": 1}})
        with pytest.raises(VendorUnavailable, match="expected a JSON array"):
            await client.pending("alice")
        vendor["/rest/api/2/myself"] = web.json_response([1, 2])
        with pytest.raises(VendorUnavailable, match="expected a JSON object"):
            await client.myself()
        vendor["/rest/api/2/status/3"] = web.Response(
            status=301, headers={"Location": "/jira/rest/api/2/status/3"}
        )
        with pytest.raises(VendorUnavailable, match="unexpected redirect 301"):
            await asyncio.wait_for(client.status_name("3"), 10)
    finally:
        await client.aclose()
