"""The demo page's vendor panel over a real vendor sandbox: list, decide, break, add."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox.vendor_panel import panels_for
from connectors.flexdeploy.sandbox import FlexDeploySandbox


async def test_decide_fail_and_add_act_on_the_flexdeploy_sandbox(fd: FlexDeploySandbox) -> None:
    controls = panels_for({"flexdeploy": fd})
    [panel] = controls.panels()
    pending = {item["id"] for item in panel["items"]}
    assert pending == {str(t.task_id) for t in fd.tasks.values() if t.status == "PENDING"}
    first = sorted(pending)[0]

    said = await controls.act("flexdeploy", "decide", first, "reject")
    assert "Rejected in FlexDeploy" in said
    assert fd.tasks[int(first)].status == "REJECTED"
    assert first not in {item["id"] for item in controls.panels()[0]["items"]}
    with pytest.raises(ValueError, match="not pending"):
        await controls.act("flexdeploy", "decide", first, "approve")

    said = await controls.act("flexdeploy", "add", None, None)
    assert len(controls.panels()[0]["items"]) == len(pending)  # one decided, one added

    await controls.act("flexdeploy", "fail", None, "500")
    second = sorted(pending)[1]
    settings = fd.connector_settings()
    async with httpx.AsyncClient(auth=(settings["username"], settings["password"])) as http:
        listed = await http.get(f"{fd.base_url}/rest/v1/tasks/approval")
        assert listed.status_code == 200  # listing is not a decision: the fault waits for one
        decided = await http.put(f"{fd.base_url}/rest/v1/tasks/approval/approve/{second}")
        assert decided.status_code == 500
        assert fd.tasks[int(second)].status == "PENDING"
    with pytest.raises(ValueError, match="choose one of"):
        await controls.act("flexdeploy", "fail", None, "gremlins")
    with pytest.raises(ValueError, match="no vendor"):
        await controls.act("jenkins", "add", None, None)
