"""The `leases` table: who leads, until when, and under which fencing number.

Why a lease row rather than a session lock: a lock lives as long as its connection, so a frozen
leader (SIGSTOP, a long GC pause, a VM migration) keeps it and blocks everyone. A lease ends at
`expires_at` whatever its holder is doing. Every time is read from the database's own clock, so
replicas with skewed clocks still agree on when a lease ends.

The fencing number grows by one each time the lease changes hands. Leader-only transactions check,
inside themselves, that the row still names their holder and number and has not expired
(`verify_fence`); on PostgreSQL they hold the row FOR KEY SHARE until they commit, and a takeover
locks it FOR UPDATE first, so it waits for them: whatever they wrote lands before the new leader
starts, never after. Renewals by the holder do not wait for them (a long sync does not cost the
leader its lease).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


class LostLeadership(Exception):
    """A leader-only write was attempted without a current lease: it was refused, nothing written."""


@dataclass(frozen=True)
class Lease:
    holder: str
    fence: int
    acquired_at: float
    renewed_at: float
    expires_at: float
    now: float  # the database's clock when this was read

    @property
    def live(self) -> bool:
        return self.expires_at > self.now

    @property
    def age(self) -> float:
        """Seconds since the holder last renewed it."""
        return max(0.0, self.now - self.renewed_at)


def db_now(dialect: str) -> str:
    """SQL for the database's clock in epoch seconds (the real time, not the transaction's start)."""
    if dialect == "postgresql":
        return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    return "((julianday('now') - 2440587.5) * 86400.0)"


async def take_or_renew(connection: AsyncConnection, *, name: str, holder: str, ttl: float) -> Lease | None:
    """Take the lease when it is free or expired, or renew it when `holder` has it: one statement.

    Returns the lease when `holder` has it now, None when someone else holds a live one. The
    fencing number stays the same on a renewal and grows on every (re)take, even by the same
    holder after its lease lapsed: anything it started under the old number is stale.
    """
    now = db_now(connection.dialect.name)
    statement = sa.text(
        f"""
        INSERT INTO leases (name, holder, fence, acquired_at, renewed_at, expires_at)
        VALUES (:name, :holder, 1, {now}, {now}, {now} + :ttl)
        ON CONFLICT (name) DO UPDATE SET
            fence = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > {now}
                         THEN leases.fence ELSE leases.fence + 1 END,
            acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > {now}
                               THEN leases.acquired_at ELSE excluded.acquired_at END,
            holder = excluded.holder,
            renewed_at = excluded.renewed_at,
            expires_at = excluded.expires_at
        WHERE leases.holder = excluded.holder OR leases.expires_at <= {now}
        RETURNING holder, fence, acquired_at, renewed_at, expires_at, {now} AS now
        """
    )
    async with connection.begin():
        if connection.dialect.name == "postgresql":
            # A takeover first waits for the leader's transactions under way (they hold the row
            # FOR KEY SHARE, see verify_fence); a renewal matches nothing here and waits for none.
            await connection.execute(
                sa.text(
                    "SELECT 1 FROM leases WHERE name = :name "
                    f"AND NOT (holder = :holder AND expires_at > {now}) FOR UPDATE"
                ),
                {"name": name, "holder": holder},
            )
        row = (await connection.execute(statement, {"name": name, "holder": holder, "ttl": ttl})).first()
    return None if row is None else Lease(*row)


async def read(connection: AsyncConnection, *, name: str) -> Lease | None:
    now = db_now(connection.dialect.name)
    async with connection.begin():
        row = (
            await connection.execute(
                sa.text(
                    f"SELECT holder, fence, acquired_at, renewed_at, expires_at, {now} AS now "
                    "FROM leases WHERE name = :name"
                ),
                {"name": name},
            )
        ).first()
    return None if row is None else Lease(*row)


async def give_up(connection: AsyncConnection, *, name: str, holder: str, fence: int) -> None:
    """End our own lease now (clean shutdown), so the next replica need not wait for it to expire."""
    now = db_now(connection.dialect.name)
    async with connection.begin():
        await connection.execute(
            sa.text(
                f"UPDATE leases SET expires_at = {now} "
                "WHERE name = :name AND holder = :holder AND fence = :fence"
            ),
            {"name": name, "holder": holder, "fence": fence},
        )


def verify_fence(connection: sa.Connection, *, name: str, holder: str, fence: int) -> None:
    """Inside a transaction: refuse to go on unless this lease is still ours and unexpired.

    Sync, because it runs from the session's `after_begin` hook (store/db.py), which SQLAlchemy
    calls inside its async bridge.
    """
    dialect = connection.dialect.name
    # KEY SHARE: leader transactions do not wait for each other, nor block the leader's own
    # renewals (an UPDATE of non-key columns); only a takeover's FOR UPDATE waits for them.
    lock = " FOR KEY SHARE" if dialect == "postgresql" else ""
    row = connection.execute(
        sa.text(
            "SELECT fence FROM leases WHERE name = :name AND holder = :holder AND fence = :fence "
            f"AND expires_at > {db_now(dialect)}{lock}"
        ),
        {"name": name, "holder": holder, "fence": fence},
    ).first()
    if row is None:
        raise LostLeadership(f"lease {name!r} is no longer held under fence {fence}: write refused")


@dataclass(frozen=True)
class Fence:
    """What a leader-only transaction must still find in the lease row to be allowed to write."""

    name: str
    holder: str
    fence: int


_CURRENT: ContextVar[Fence | None] = ContextVar("approvals_fence", default=None)


@contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Every store transaction begun inside (and in tasks started inside) checks `fence` first.

    Why a context and not a parameter: the leader-only paths (sync, outbox delivery, reminders)
    reach the store through many functions; marking the job once fences all of its writes, and a
    click's transaction, outside any leader job, is never fenced.
    """
    token = _CURRENT.set(fence)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_fence() -> Fence | None:
    return _CURRENT.get()
