"""The benchmark runs and produces every figure (at tiny sizes). Targets are judged by the benchmark
itself, not here: timing in a test suite on a shared machine would only make it flaky."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_benchmark_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(out.read_text())
    for level in ("ack_c1", "ack_c10", "ack_c20"):
        assert {
            "p50_ms",
            "p99_ms",
            "floor_p50_ms",
            "floor_p99_ms",
            "ratio_p99",
            "bare_http_p99_ms",
            "ratio_p99_bare_http",
        } <= r["clicks"][level].keys()
    assert {"p50_ms", "floor_ms", "ratio"} <= r["clicks"]["click_to_vendor"].keys()
    assert {"p50_ms", "floor_ms", "ratio"} <= r["clicks"]["click_to_card"].keys()
    for sync in r["sync"]:
        assert {
            "cpu_s",
            "vendor_requests",
            "vendor_requests_floor",
            "slack_calls",
            "rows_written",
        } <= sync.keys()
        assert sync["slack_calls"] == 0, "a no-change cycle makes no Slack call"
        assert sync["rows_written"] == 0, "a no-change cycle writes no item, card or outbox row"
        assert sync["slack_calls_per_change"] == 1.0
    assert {"achieved_per_s", "allowed_per_s", "share", "rate_limited_429", "lost", "duplicated"} <= r[
        "fanout"
    ].keys()
    assert r["fanout"]["lost"] == 0
    assert r["fanout"]["duplicated"] == 0
    assert {"loaded_ms", "empty_ms", "ratio", "target_ratio", "backlog", "rate_limited_429"} <= r[
        "priority"
    ].keys()
    assert r["priority"]["backlog"] >= 100, "the click waits behind a backlog of card updates"
    assert {"achieved_per_s", "allowed_per_s", "share", "rate_limited_429", "lost", "duplicated"} <= r[
        "first_sync"
    ].keys()
    assert r["first_sync"]["lost"] == 0
    assert r["first_sync"]["duplicated"] == 0
    assert {"peak_rss_mb", "floor_rss_mb", "ratio"} <= r["memory"].keys()
    assert {
        "items",
        "due",
        "queued",
        "cpu_s",
        "target_cpu_s",
        "floor_cpu_s",
        "ratio",
        "queries",
        "cpu_per_due_ms",
        "queries_per_due",
        "load_avg_1m",
    } <= r["reminders"].keys()
    assert r["reminders"]["queued"] == r["reminders"]["due"] == r["reminders"]["floor_rows"] > 0
    assert r["reminders"]["queries"] <= 4, "a pass's queries follow the reminders due, not the items"
    assert "reminder pass" in done.stdout
    assert "click ack p99" in done.stdout
    assert "against bare HTTP" in done.stdout
    assert "click behind" in done.stdout
    assert "first sync" in done.stdout
