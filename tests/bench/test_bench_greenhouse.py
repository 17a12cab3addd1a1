"""The Greenhouse no-change poll benchmark runs and reports its figures (at a tiny size); what a
poll costs in requests is counted, not timed."""

from __future__ import annotations

from bench.greenhouse_poll import measure


async def test_a_no_change_poll_costs_the_approvers_pages_and_the_flows_only() -> None:
    r = await measure(approvers=60, flows=20)
    assert r["floor_requests"] == 1
    assert r["no_change_requests"] == r["floor_requests"] + 1, "one approval_flows call per 50 flows"
    assert r["no_change_rows_written"] == 0
    assert r["no_change_slack_work"] == 0
    assert r["tokens_minted"] == 1
