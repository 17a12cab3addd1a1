"""An external id too long for an option value (150 characters) or for a modal's metadata travels
as a digest, and the digest finds exactly that item again in the store (real database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot import blocks, bulk
from bot.blocks import CardState
from bot.ids import ItemRef
from connectors.base import Action, ActionSpec, ApprovalItem
from store.repo import Store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONNECTOR = "a-connector-name-of-forty-characters-xx"


def _item(external_id: str) -> ApprovalItem:
    return ApprovalItem(
        connector=CONNECTOR,
        external_id=external_id,
        kind="Gate",
        title="Release",
        actions=(ActionSpec(Action.APPROVE),),
    )


async def test_a_bulk_option_for_a_long_id_finds_that_item_and_no_other(store: Store) -> None:
    long_id = "pipelines/retail-web/executions/" + "9" * 200  # 232 characters: fits the store, not an option
    near = long_id[:-1] + "8"  # the same first 150 characters: a cut value could not tell them apart
    async with store.db.transaction() as s:
        await store.insert_items(s, items=[_item(long_id), _item(near), _item("short")], now=NOW)
    states = [
        CardState(item=_item(i), vendor_label="V", connector_name=CONNECTOR, now=NOW)
        for i in (long_id, near, "short")
    ]
    view = bulk.bulk_modal(states, skipped=0)
    options = [o["value"] for b in view["blocks"] if b["type"] == "input" for o in b["element"]["options"]]
    assert all(len(v) <= 150 for v in options)
    assert len(set(options)) == 3
    picked = await bulk.resolve(store, options)
    assert picked == [ItemRef(CONNECTOR, long_id), ItemRef(CONNECTOR, near), ItemRef(CONNECTOR, "short")]
    # A digest of nothing pending, or garbage, resolves to nothing rather than to a wrong item.
    assert await bulk.resolve(store, ["2|" + CONNECTOR + "|" + "0" * 32, "2|x", "1|", "junk"]) == []


def test_decide_metadata_keeps_the_id_whole_or_carries_its_digest() -> None:
    for external_id in ("42", "x" * 255, "é" * 255, '"' * 255):
        view = blocks.decide_modal(
            item=_item(external_id),
            spec=ActionSpec(Action.APPROVE, comment="required"),
            origin={"ch": "C1", "ts": "1.2"},
        )
        meta = json.loads(view["private_metadata"])
        assert len(view["private_metadata"]) <= 3000
        assert meta["i"] == external_id and meta["ch"] == "C1"
    huge = "y" * 5000  # only a broken connector gives such an id; it still fits, as a digest
    meta = json.loads(
        blocks.decide_modal(item=_item(huge), spec=ActionSpec(Action.APPROVE, comment="required"), origin={})[
            "private_metadata"
        ]
    )
    assert "i" not in meta and len(meta["h"]) == 32
