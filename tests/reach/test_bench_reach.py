"""The reach benchmark runs at a tiny size and its counts meet their floors (counted, not timed)."""

from __future__ import annotations

from bench.reach import measure


async def test_each_address_is_looked_up_once_and_an_unchanged_sync_asks_nothing() -> None:
    r = await measure(groups=4, members=5, missing=10)
    assert r["approvers"] == 20 and r["not_in_slack"] == 2
    assert r["first_sync"]["membership_calls"] == r["first_sync_floor"]["membership_calls"] == 4
    assert r["first_sync"]["slack_lookups"] == 20
    assert r["first_sync"]["cards_queued"] > 0
    assert r["no_change_sync"]["membership_calls"] == 0
    assert r["no_change_sync"]["slack_calls"] == 0
    assert r["hour_later"]["slack_lookups"] == 2, "only the not-found answers were due"
    assert r["hour_later"]["membership_calls"] == 0
