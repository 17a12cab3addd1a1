"""The pure part of a sync: what changed between the store and the vendor, and where cards go.

Kept free of I/O so the rules (what counts as a change, who gets a card) are tested directly and
the coordinator stays a thin loop around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from connectors.base import ApprovalItem


class Stored(NamedTuple):
    """What the store knows of an open item. A plain tuple, so the store's answer is used as is:
    at 100k items a second copy of it would be tens of megabytes."""

    version: str
    status: str
    row_id: int


@dataclass
class SyncPlan:
    new: list[ApprovalItem] = field(default_factory=list)
    changed: list[tuple[int, ApprovalItem]] = field(default_factory=list)
    # Known open items the vendor no longer lists as pending: re-read each once.
    gone: list[tuple[int, str]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def writes(self) -> int:
        return len(self.new) + len(self.changed) + len(self.gone)


def diff(stored: Mapping[str, tuple[str, str, int]], fetched: Sequence[ApprovalItem]) -> SyncPlan:
    plan = SyncPlan()
    seen: set[str] = set()
    for item in fetched:
        if item.external_id in seen:
            continue  # a vendor listing the same item twice (e.g. on two pages) is one item
        seen.add(item.external_id)
        known = stored.get(item.external_id)
        if known is None:
            plan.new.append(item)
        elif (known[0], known[1]) != (item.fingerprint(), item.status.value):  # version, status
            plan.changed.append((known[2], item))
        else:
            plan.unchanged += 1
    for external_id, known in stored.items():
        if external_id not in seen:
            plan.gone.append((known[2], external_id))
    return plan


def card_targets(item: ApprovalItem, *, channel: str | None, slack_by_vendor: Mapping[str, str]) -> list[str]:
    """Where the item's cards belong when no address has been looked up yet (see
    bot/outbox/effects.targets, which the sync uses with what Slack said of each address)."""
    from bot.outbox.effects import Audience, targets

    return targets(item, Audience(channel=channel, slack_by_vendor=slack_by_vendor))
