"""Approval Path connector tests."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """A clock the test moves by hand (`clock.now += …`), so caches expire without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now
