"""The `replicas` table: which processes are alive, by a heartbeat each renews with its elector.

Why: a click's claim names the process working on it (`items.claim_process`). Once that process's
heartbeat has lapsed (killed, frozen, its machine gone), nobody is working on the click any more,
so reconciliation settles it at once instead of waiting for the click's whole deadline (about 40 s).
Judged only by the heartbeat, never by host names: two replicas may share a host, and a replica
restarted on the same host is a new instance whose old one may still be finishing a click.

A process's own view of its heartbeat (store/leader.py, `Elector.instance`) ends earlier than the
row, counted from before each renewal was sent: while it believes itself alive, nobody else
reconciles its clicks. Times are the database's clock, as for leases.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from store.leases import db_now

REPLICAS = sa.table(
    "replicas",
    sa.column("instance", sa.String),
    sa.column("host", sa.String),
    sa.column("started_at", sa.Float),
    sa.column("seen_at", sa.Float),
    sa.column("expires_at", sa.Float),
)
# Rows of processes gone this long are dropped when a process starts beating.
FORGET_AFTER = 24 * 3600.0


async def beat(connection: AsyncConnection, *, instance: str, host: str, ttl: float, first: bool) -> None:
    """This process is alive until the database's clock reads now + `ttl`; one committed statement
    (plus, on a process's `first` beat, forgetting processes long gone)."""
    now = db_now(connection.dialect.name)
    async with connection.begin():
        if first:
            await connection.execute(
                sa.text(f"DELETE FROM replicas WHERE expires_at < {now} - :forget"),
                {"forget": FORGET_AFTER},
            )
        await connection.execute(
            sa.text(
                f"""
                INSERT INTO replicas (instance, host, started_at, seen_at, expires_at)
                VALUES (:instance, :host, {now}, {now}, {now} + :ttl)
                ON CONFLICT (instance) DO UPDATE SET
                    seen_at = excluded.seen_at, expires_at = excluded.expires_at
                """
            ),
            {"instance": instance[:200], "host": host[:255], "ttl": ttl},
        )


def gone(process: Any, dialect: str) -> sa.ColumnElement[bool]:
    """SQL: `process` names a process whose heartbeat has lapsed (or was never written: a claim
    records its process only while that process knows its heartbeat is live, so that cannot be
    the row of a process still starting)."""
    live = (
        sa.select(sa.literal(1))
        .select_from(REPLICAS)
        .where(REPLICAS.c.instance == process, REPLICAS.c.expires_at > sa.text(db_now(dialect)))
    )
    return sa.and_(process.is_not(None), ~live.exists())
