"""Bulk approve: several items in one go, each as the clicker and each claimed like a single click.

Why a modal: the person picks exactly what to approve from a list they can read, and gets a
per-item result in the same place. Only items whose Approve needs nothing more (no comment, no
inputs, no password) can be bulk-approved; the others say why and stay one click away.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, CheckboxesElement, InputBlock, Option
from slack_sdk.models.views import View

from bot.blocks import CardState, _context, _section, cut, escape
from bot.ids import ItemRef, ViewId
from bot.services import Services
from connectors.base import Action, Status

CHUNK = 10  # Slack allows 10 options per checkboxes element


def bulk_candidates(states: Sequence[CardState]) -> list[CardState]:
    out = []
    for state in states:
        spec = state.item.action(Action.APPROVE)
        if spec is not None and not spec.needs_modal and not state.working_by:
            out.append(state)
    return out


def bulk_modal(states: Sequence[CardState], *, skipped: int) -> dict[str, Any]:
    blocks: list[Block] = [
        _section("Pick what to approve. Each is approved in its system *as you*, one by one.")
    ]
    candidates = list(states)[: CHUNK * 8]
    for n in range(0, len(candidates), CHUNK):
        options = [
            Option(
                text=cut(f"{s.item.title} ({s.connector_name})", 75),
                value=ItemRef(s.item.connector, s.item.external_id).encode()[:150],
            )
            for s in candidates[n : n + CHUNK]
        ]
        blocks.append(
            InputBlock(
                block_id=f"bulk|{n // CHUNK}",
                label="Approve" if n == 0 else "More",
                element=CheckboxesElement(action_id="value", options=options),
                optional=n > 0,
            )
        )
    if skipped:
        blocks.append(_context(f"{skipped} more need a comment or inputs: approve those from their cards."))
    view = View(
        type="modal",
        callback_id=ViewId.BULK.value,
        title="Approve several",
        submit="Approve selected",
        close="Cancel",
        private_metadata=json.dumps({"v": 1}),
        blocks=blocks,
    )
    return view.to_dict()


def selected_refs(body: dict[str, Any]) -> list[ItemRef]:
    state = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    refs = []
    for block_id, actions in state.items():
        if not str(block_id).startswith("bulk|") or not isinstance(actions, dict):
            continue
        for element in actions.values():
            for option in (element or {}).get("selected_options") or []:
                ref = ItemRef.decode(option.get("value"))
                if ref is not None:
                    refs.append(ref)
    return refs


async def approve_all(
    services: Services, *, slack_user: str, refs: Sequence[ItemRef]
) -> list[tuple[str, bool, str]]:
    """(title, ok, what happened) per item, in the order picked."""
    results = []
    for ref in refs:
        stored = await services.store.item(connector=ref.connector, external_id=ref.external_id)
        title = stored.item.title if stored else ref.external_id
        reply = await services.decide(ref=ref, action=Action.APPROVE, slack_user=slack_user)
        after = await services.store.item(connector=ref.connector, external_id=ref.external_id)
        if after is not None and after.item.status is Status.APPROVED and after.row.decided_by == slack_user:
            results.append((title, True, "approved"))
        else:
            results.append((title, False, _plain(reply.text) if reply else "not approved"))
    return results


def results_view(results: Sequence[tuple[str, bool, str]]) -> dict[str, Any]:
    done = sum(1 for _, ok, _ in results if ok)
    lines = [f"*{done} of {len(results)} approved*"]
    for title, ok, what in results:
        mark = ":white_check_mark:" if ok else ":x:"
        lines.append(f"{mark} {escape(cut(title, 150))}: {escape(cut(what, 400))}")
    view = View(type="modal", title="Approve several", close="Done", blocks=[_section("\n".join(lines))])
    return view.to_dict()


def working_view(count: int) -> dict[str, Any]:
    view = View(
        type="modal",
        title="Approve several",
        close="Close",
        blocks=[_section(f":hourglass_flowing_sand: Approving {count} item(s) as you, one by one…")],
    )
    return view.to_dict()


def _plain(text: str) -> str:
    return text.replace("*", "")
