"""Reminders at scale: one real reminder pass (bot/reminders/passes.py) over N pending items with
cards, 1 % of them due. Runs in a worker process of its own (bench/worker.py), so its CPU is the
pass's own: the bot's background loops are not started, nothing else runs in the process.

Target: at most 0.2 s of CPU for the pass at 100,000 items (issue 13), and queries in proportion to
the due reminders, not to the items pending. Floor: the CPU of reading the same due rows alone
(store/reminders.due, the pass's one query and what it parses), measured right after the pass, so
on a cache as warm as the pass left it. Queries are counted on the engine (before_cursor_execute);
CPU is the process's, the database's own included (SQLite runs in this process, in aiosqlite's
thread). The machine's load average is reported beside it: CPU time is inflated on a busy machine.
"""

from __future__ import annotations

import gc
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.env import Bench
from store import reminders as table
from store.outbox import settle

CHANNEL = "C0DEPLOYS"


def working_moment(now: datetime) -> datetime:
    """The next Tuesday, 10:00 UTC, at least a day ahead: inside the default working hours, and
    late enough that every stored item's first reminder is due by then."""
    day = (now + timedelta(days=1)).date()
    while day.weekday() != 1:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


async def store_cards(bench: Bench, *, at: datetime, due_share: float = 0.01) -> int:
    """Every pending item gets its channel card and first reminder, as delivery records them
    (store/outbox.settle, in group commits); `due_share` of them are due at `at`. Returns how many."""
    items = await bench.runtime.store.pending_items()
    step = max(1, round(1 / due_share))
    posted: list[dict[str, Any]] = [
        {
            "item_id": s.row.id,
            "target": f"channel:{CHANNEL}",
            "channel": CHANNEL,
            "ts": f"1700000000.{n:06d}",
            "slack_user": None,
            "rendered": "bench",
            "remind_at": at - timedelta(minutes=1) if n % step == 0 else at + timedelta(days=30),
        }
        for n, s in enumerate(items)
    ]
    for start in range(0, len(posted), 5_000):
        await settle(bench.runtime.db, done=[], posted=posted[start : start + 5_000])
    return sum(1 for n in range(len(posted)) if n % step == 0)


async def one_pass(bench: Bench, *, items: int) -> dict[str, Any]:
    at = working_moment(datetime.now(UTC))
    due = await store_cards(bench, at=at)
    queries = {"n": 0}

    def count(*_: Any) -> None:
        queries["n"] += 1

    # A running bot has made its queries before (the schedule's `earliest`, earlier passes): one
    # pass with nothing due first, so the figure is a pass's, not SQLAlchemy's first compilations.
    await bench.runtime.reminders.remind(at - timedelta(days=60))
    engine = bench.runtime.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    queued = await bench.runtime.reminders.remind(at)
    cpu_s, wall_s = time.process_time() - cpu, time.perf_counter() - wall
    pass_queries = queries["n"]
    queries["n"] = 0
    cpu = time.process_time()
    again = await bench.runtime.reminders.remind(at)  # nothing left due: the idle cost
    idle_cpu_s = time.process_time() - cpu
    idle_queries = queries["n"]
    queries["n"] = 0
    floor_cpu_s, floor_rows = await _read_alone(bench, at + timedelta(days=2))
    sa.event.remove(engine, "before_cursor_execute", count)
    return {
        "items": items,
        "due": due,
        "queued": queued,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "target_cpu_s": 0.2,
        "queries": pass_queries,
        "cpu_per_due_ms": cpu_s / max(1, due) * 1000,
        "queries_per_due": pass_queries / max(1, due),
        "floor_cpu_s": floor_cpu_s,
        "floor_rows": floor_rows,
        "floor_queries": queries["n"],
        "ratio": cpu_s / floor_cpu_s,
        "idle_queries": idle_queries,
        "idle_cpu_s": idle_cpu_s,
        "idle_queued": again,
        "load_avg_1m": os.getloadavg()[0],
    }


async def _read_alone(bench: Bench, at: datetime) -> tuple[float, int]:
    """The floor: the due rows read, as a pass reads them, and nothing decided or written. `at` is
    when the pass's reminders are due again (it sent them), the others still not."""
    gc.collect()
    cpu = time.process_time()
    due = await table.due(bench.runtime.db, now=at)
    return time.process_time() - cpu, len(due.reminders)
