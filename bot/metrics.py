"""Prometheus counters served at GET /metrics (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

SYNC_RUNS = Counter("approvals_sync_runs_total", "Sync cycles", ["connector", "outcome"], registry=REGISTRY)
SYNC_SECONDS = Histogram("approvals_sync_seconds", "Sync cycle duration", ["connector"], registry=REGISTRY)
PENDING = Gauge("approvals_pending_items", "Pending items per connector", ["connector"], registry=REGISTRY)
CLICKS = Counter(
    "approvals_clicks_total",
    "Decisions asked from Slack",
    ["connector", "action", "outcome"],
    registry=REGISTRY,
)
SLACK_CALLS = Counter(
    "approvals_slack_calls_total", "Slack Web API calls for cards", ["method"], registry=REGISTRY
)
SLACK_FAILURES = Counter(
    "approvals_slack_failures_total", "Slack calls refused for good", ["error"], registry=REGISTRY
)
