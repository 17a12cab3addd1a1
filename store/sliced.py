"""Performance device: stored rows decoded a slice at a time, the event loop let in between.

Justified by the click benchmark, README Performance table, "click ack p99, 50 / 200 concurrent":
republishing a busy person's App Home decodes hundreds of items, and done in one go it held up
every click that arrived meanwhile. Used by `store.items.pending_items`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

_Row = TypeVar("_Row")
_Decoded = TypeVar("_Decoded")

# Rows decoded between two turns of the event loop.
DECODE_SLICE = 100


async def decode_sliced(rows: Sequence[_Row], decode: Callable[[_Row], _Decoded]) -> list[_Decoded]:
    decoded: list[_Decoded] = []
    for start in range(0, len(rows), DECODE_SLICE):
        decoded.extend(decode(r) for r in rows[start : start + DECODE_SLICE])
        await asyncio.sleep(0)
    return decoded
