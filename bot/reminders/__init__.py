"""Reminders, escalations and the daily digest: rules (pure, when is the next one), the pass (what
is due now becomes outbox jobs) and the schedule (wake at the earliest due instant)."""
