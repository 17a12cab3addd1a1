"""Pure builders for channel notifications: one status message per flow, a thread reply per decision.

Why separate from the approval card: a channel following flows wants the outcome at a glance and
no buttons (decisions are made by the approvers, on their own cards).
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.blocks import (
    SHORT,
    Message,
    _context,
    _section,
    open_button,
    slack_date,
    to_dicts,
)
from bot.slack_text import FALLBACK_TEXT, cut, escape, escaped
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
    head = f"{emoji} *{escaped(item.title, 300)}*: {word}"
    details = [escaped(item.kind, SHORT)]
    if item.requester:
        details.append(f"requested by {escaped(item.requester.label, SHORT)}")
    text = f"{head}\n" + " · ".join(details)
    if item.status.final:
        who = (
            f"<@{decided_by}>"
            if decided_by
            else (escaped(item.decided_by.label, SHORT) if item.decided_by else "")
        )
        when = f" on {slack_date(item.decided_at)}" if item.decided_at else ""
        text += (
            f"\n{word.capitalize()}" + (f" by {who}" if who else f" in {escaped(vendor_label, SHORT)}") + when
        )
        if item.decision_note:
            text += f"\n>{escaped(item.decision_note, 500)}"
    blocks: list[Block] = [_section(text)]
    groups = [
        f"{escaped(g.name, SHORT)}: {len(g.approved_by)} of {g.required}"
        + (" · rejected" if g.rejected_by else "")
        for g in item.groups
    ]
    if groups:
        blocks.append(_context(cut(" | ".join(groups), 2900)))
    link = open_button(item, vendor_label)
    if link is not None:
        blocks.append(ActionsBlock(elements=[link]))
    blocks.append(
        _context(
            f"{escaped(vendor_label, SHORT)} · `{escaped(connector_name, SHORT)}` · replies in the thread name each decision"
        )
    )
    # The notification text is mrkdwn: the title is escaped here as in the blocks.
    return Message(cut(f"{escape(item.title)}: {word}", FALLBACK_TEXT), to_dicts(blocks))


def decision_reply(*, slack_user: str, action: str, comment: str | None, at: datetime) -> Message:
    verbs = {
        "approve": ":white_check_mark: approved",
        "reject": ":x: rejected",
        "abstain": "abstained",
        "reset": "reset the decision",
        "reassign": "reassigned an approver",
        "cancel": ":no_entry_sign: cancelled",
    }
    text = f"<@{slack_user}> {verbs.get(action) or escaped(action, SHORT)} on {slack_date(at)}"
    if comment:
        text += f"\n>{escaped(comment, 1000)}"
    return Message(cut(f"{escaped(action, SHORT)} by a user", FALLBACK_TEXT), to_dicts([_section(text)]))
