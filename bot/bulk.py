"""Bulk approve: several items in one go, each as the clicker and each claimed like a single click.

Why a modal: the person picks exactly what to approve from a list they can read, and gets a
per-item result in the same place. Only items whose Approve needs nothing more (no comment, no
inputs, no password) can be bulk-approved; the others say why and stay one click away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import Block, CheckboxesElement, InputBlock, Option
from slack_sdk.models.views import View

from bot.blocks import CardState, _context, _section
from bot.ids import ItemRef, ViewId, digest_of, fitted_ref, ref_digest
from bot.services import Services
from bot.slack_text import OPTION_TEXT, OPTION_VALUE, escaped, plain
from connectors.base import Action, Status
from store.repo import Store

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
                text=plain(f"{s.item.title} ({s.connector_name})", OPTION_TEXT),
                # A long external id becomes a digest looked up in `resolve`, never a cut id.
                value=fitted_ref(s.item.connector, s.item.external_id, OPTION_VALUE),
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


def selected_values(body: Mapping[str, Any]) -> list[str]:
    """The option values picked in the bulk modal, whatever shape the submission has."""
    view = body.get("view")
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    picked: list[str] = []
    if not isinstance(values, dict):
        return picked
    for block_id, actions in values.items():
        if not str(block_id).startswith("bulk|") or not isinstance(actions, dict):
            continue
        for element in actions.values():
            options = element.get("selected_options") if isinstance(element, dict) else None
            for option in options if isinstance(options, list) else []:
                value = option.get("value") if isinstance(option, dict) else None
                if isinstance(value, str):
                    picked.append(value)
    return picked


async def resolve(store: Store, values: Sequence[str]) -> list[ItemRef]:
    """Picked values as item references: "1|…" decoded, "2|…" (a digest) looked up among the
    connector's pending items; anything else, or a digest naming nothing pending, is left out."""
    refs: list[ItemRef] = []
    pending: dict[str, dict[str, ItemRef]] = {}
    for value in values:
        ref = ItemRef.decode(value)
        digest = digest_of(value)
        if ref is None and digest is not None:
            connector, wanted = digest
            if connector not in pending:
                items = await store.pending_items(connectors=[connector])
                pending[connector] = {
                    ref_digest(s.item.external_id): ItemRef(connector, s.item.external_id) for s in items
                }
            ref = pending[connector].get(wanted)
        if ref is not None and ref not in refs:
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
        lines.append(f"{mark} {escaped(title, 150)}: {escaped(what, 400)}")
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
