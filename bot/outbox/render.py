"""Pure rendering the deliverer needs besides the Block Kit builders: a card's state from the
stored item, the words of reminders and escalations, and a fingerprint of what a message shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from bot import blocks
from bot.blocks import CardState, Message
from bot.config import Reminders
from connectors.base import Action
from store.repo import StoredItem


@dataclass(frozen=True)
class ConnectorView:
    """What delivery needs to know of a connector to render and route its cards."""

    name: str
    vendor_label: str
    channel: str | None
    reminders: Reminders = field(default_factory=Reminders)


def card_state(stored: StoredItem, view: ConnectorView | None, now: datetime) -> CardState:
    row = stored.row
    return CardState(
        item=stored.item,
        vendor_label=view.vendor_label if view else stored.item.connector,
        connector_name=stored.item.connector,
        now=now,
        synced_at=row.updated_at,
        working_by=row.claim_by,
        working_action=_action(row.claim_action),
        decided_by=row.decided_by,
        decided_action=_action(row.decided_action),
        decided_at=row.decided_at,
        decided_comment=row.decided_comment,
        last_error=row.last_error,
    )


def fingerprint(message: Message) -> str:
    """Equal for messages that show the same: an update that would change nothing is skipped."""
    raw = json.dumps([message.text, message.blocks], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def reminder_text(*, slack_user: str | None, title: str, number: int, total: int) -> str:
    who = f"<@{slack_user}>, this" if slack_user else "This"
    return f":alarm_clock: {who} still waits for a decision: *{blocks.cut(blocks.escape(title), 300)}* (reminder {number} of {total})."


def escalation_text(*, slack_user: str, title: str, reminders: int) -> str:
    return f":rotating_light: <@{slack_user}> has not acted on *{blocks.cut(blocks.escape(title), 300)}* after {reminders} reminders."


def _action(value: str | None) -> Action | None:
    try:
        return Action(value) if value else None
    except ValueError:
        return None
