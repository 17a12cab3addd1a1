"""Performance device: the startup heap frozen out of the garbage collector (`settle_heap`).

Justified by the click benchmark, README Performance table, "click ack p99, 200 concurrent" (and
the 50-concurrent row): without it, full collections paused the event loop for about 100 ms under
bursts of clicks, holding up every acknowledgement in flight. `approvals-bot run` calls it once the
server listens; bench/env.py does the same, so the benchmark measures what runs.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Once the server is up: take what startup built out of the garbage collector's sight.

    Imports, Bolt, SQLAlchemy's caches and the pools live as long as the process, yet every full
    collection walked them all: a pause of about 100 ms, measured in the click benchmark, which held
    up every acknowledgement in flight. Frozen, they are still freed by reference counting."""
    gc.collect()
    gc.freeze()
    # With the startup heap frozen, what is left to a full collection is mostly the work under way,
    # which a burst of clicks makes large (about 100 ms a collection, measured): ten times rarer.
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)
