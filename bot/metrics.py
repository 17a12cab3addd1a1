"""Prometheus metrics served at GET /metrics (one registry per process).

What an operator watches (README, "Metrics"): whether a replica leads and how fresh its lease
is; each connector's polls (duration, outcome, last success); vendor errors by kind; the outbox's
depth and the age of its oldest job; how long cards wait for a decision; reconciliations done.
Figures that live in the database (last success, outbox) are read at scrape time, so every
replica reports the same truth, not only the leader.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from connectors import http as vendor_http

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
SLACK_PACE_WAIT = Histogram(
    "approvals_slack_pace_wait_seconds",
    "Time a Slack call waited for its method's pace (tier or per-channel), urgent (a clicked card, an interaction answer) or not",
    ["method", "urgent"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
SLACK_FAILURES = Counter(
    "approvals_slack_failures_total", "Slack calls refused for good", ["error"], registry=REGISTRY
)
LAST_SUCCESS = Gauge(
    "approvals_last_successful_sync_timestamp_seconds",
    "When each connector last synced without error (Unix time; from the store, same on every replica)",
    ["connector"],
    registry=REGISTRY,
)
SYNC_FAILURES = Gauge(
    "approvals_sync_consecutive_failures",
    "Failed sync cycles in a row per connector (from the store)",
    ["connector"],
    registry=REGISTRY,
)
VENDOR_ERRORS = Counter(
    "approvals_vendor_errors_total",
    "Vendor calls that failed, by vendor host and kind (RateLimited, VendorUnavailable, AuthExpired, ...)",
    ["vendor", "kind"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge("approvals_outbox_depth", "Slack jobs waiting in the outbox", registry=REGISTRY)
OUTBOX_OLDEST = Gauge(
    "approvals_outbox_oldest_age_seconds",
    "Age of the longest-waiting Slack job (0 when the outbox is empty)",
    registry=REGISTRY,
)
DECISION_SECONDS = Histogram(
    "approvals_card_to_decision_seconds",
    "From an item's first card to its decision, per connector",
    ["connector"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 86400, 3 * 86400, 7 * 86400),
    registry=REGISTRY,
)
RECONCILIATIONS = Counter(
    "approvals_reconciliations_total",
    "Interrupted clicks or posts settled by re-reading the vendor or Slack",
    ["connector", "outcome"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "approvals_leader", "1 while this replica leads the background work, else 0", registry=REGISTRY
)
ANY_LEADER = Gauge(
    "approvals_leader_present",
    "1 while some replica holds a live lease (as this one last saw)",
    registry=REGISTRY,
)
LEASE_AGE = Gauge(
    "approvals_lease_age_seconds", "Seconds since the leader last renewed its lease", registry=REGISTRY
)
LEASE_HELD = Gauge(
    "approvals_lease_held_seconds", "Seconds the current leader has held the lease", registry=REGISTRY
)
LEASE_FENCE = Gauge(
    "approvals_lease_fence", "The current lease's fencing number (grows at each takeover)", registry=REGISTRY
)


def _vendor_error(host: str, kind: str) -> None:
    VENDOR_ERRORS.labels(vendor=host, kind=kind).inc()


vendor_http.observe_errors(_vendor_error)


def observe_lease(
    *, leading: bool, holder: str | None, fence: int | None, age: float | None, held: float | None
) -> None:
    LEADER.set(1 if leading else 0)
    ANY_LEADER.set(1 if holder else 0)
    LEASE_AGE.set(age if age is not None else 0)
    LEASE_HELD.set(held if held is not None and holder else 0)
    LEASE_FENCE.set(fence or 0)


def observe_store(
    *,
    last_success: Mapping[str, datetime | None],
    failures: Mapping[str, int],
    outbox_depth: int,
    outbox_oldest: datetime | None,
    now: datetime,
) -> None:
    for name, when in last_success.items():
        if when is not None:
            LAST_SUCCESS.labels(connector=name).set(when.timestamp())
    for name, count in failures.items():
        SYNC_FAILURES.labels(connector=name).set(count)
    OUTBOX_DEPTH.set(outbox_depth)
    OUTBOX_OLDEST.set(max(0.0, (now - outbox_oldest).total_seconds()) if outbox_oldest else 0)


def observe_decision(*, connector: str, first_card: datetime, decided: datetime) -> None:
    DECISION_SECONDS.labels(connector=connector).observe(max(0.0, (decided - first_card).total_seconds()))
