"""Pure builders for channel notifications: one status message per flow, a thread reply per decision.

Why separate from the approval card: a channel following flows wants the outcome at a glance and
no buttons (decisions are made by the approvers, on their own cards).
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.blocks import (
    Message,
    _context,
    _section,
    cut,
    escape,
    open_button,
    slack_date,
    to_dicts,
)
from connectors.base import ApprovalItem, GroupState, Status

PHASES = {
    Status.APPROVED: (":white_check_mark:", "approved"),
    Status.REJECTED: (":x:", "rejected"),
    Status.EXPIRED: (":hourglass:", "expired"),
    Status.CANCELLED: (":no_entry_sign:", "cancelled"),
}


def phase(item: ApprovalItem) -> tuple[str, str]:
    """(emoji, word): requested, partly approved, approved, rejected, expired, cancelled."""
    if item.status in PHASES:
        return PHASES[item.status]
    approved = sum(len(g.approved_by) for g in item.groups)
    resolved = sum(1 for g in item.groups if g.state is GroupState.RESOLVED)
    if approved or resolved:
        return ":large_blue_circle:", "partly approved"
    return ":large_yellow_circle:", "requested"


def flow_message(
    item: ApprovalItem, *, vendor_label: str, connector_name: str, decided_by: str | None = None
) -> Message:
    emoji, word = phase(item)
    head = f"{emoji} *{escape(cut(item.title, 300))}*: {word}"
    details = [escape(item.kind)]
    if item.requester:
        details.append(f"requested by {escape(item.requester.label)}")
    text = f"{head}\n" + " · ".join(details)
    if item.status.final:
        who = f"<@{decided_by}>" if decided_by else (escape(item.decided_by.label) if item.decided_by else "")
        when = f" on {slack_date(item.decided_at)}" if item.decided_at else ""
        text += f"\n{word.capitalize()}" + (f" by {who}" if who else f" in {escape(vendor_label)}") + when
        if item.decision_note:
            text += f"\n>{escape(cut(item.decision_note, 500))}"
    blocks: list[Block] = [_section(text)]
    groups = [
        f"{escape(g.name)}: {len(g.approved_by)} of {g.required}" + (" · rejected" if g.rejected_by else "")
        for g in item.groups
    ]
    if groups:
        blocks.append(_context(" | ".join(groups)[:2900]))
    link = open_button(item, vendor_label)
    if link is not None:
        blocks.append(ActionsBlock(elements=[link]))
    blocks.append(
        _context(
            f"{escape(vendor_label)} · `{escape(connector_name)}` · replies in the thread name each decision"
        )
    )
    return Message(cut(f"{item.title}: {word}", 3000), to_dicts(blocks))


def decision_reply(*, slack_user: str, action: str, comment: str | None, at: datetime) -> Message:
    verbs = {
        "approve": ":white_check_mark: approved",
        "reject": ":x: rejected",
        "abstain": "abstained",
        "reset": "reset the decision",
        "reassign": "reassigned an approver",
        "cancel": ":no_entry_sign: cancelled",
    }
    text = f"<@{slack_user}> {verbs.get(action, action)} on {slack_date(at)}"
    if comment:
        text += f"\n>{escape(cut(comment, 1000))}"
    return Message(cut(f"{action} by a user", 3000), to_dicts([_section(text)]))
