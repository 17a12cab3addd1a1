"""Which Slack work a change causes: pure functions from (item before, item after) and plain facts.

Why explicit and pure: the coordinator calls `after_sync` once a sync has written its snapshots and
the decision path calls `after_decision`, so a reader follows either from the imports; nothing in
store/ calls back into bot/. The rules (who gets a card, which channels hear how a flow ended, whose
App Home changes) are tested directly, with no database and no Slack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.outbox.jobs import CardJob, FlowJob, HomeJob, Job, ThreadReplyJob
from bot.sync import card_targets
from connectors.base import ApprovalItem


@dataclass(frozen=True)
class Change:
    item_id: int
    before: ApprovalItem | None  # None: the item is new
    after: ApprovalItem
    claim_by: str | None = None  # who is acting on it now, if anyone


@dataclass(frozen=True)
class Audience:
    """Where news of one connector's items goes; read by the caller, in its transaction."""

    channel: str | None = None  # the connector's card channel
    slack_by_vendor: Mapping[str, str] = field(default_factory=dict)  # linked vendor user id → Slack user
    flow_channels: Sequence[str] = ()  # subscribed channels, the workspace's notify_channel first
    cards: Mapping[int, Sequence[str]] = field(default_factory=dict)  # item id → targets of its cards
    linked: Sequence[tuple[str, str]] = ()  # (Slack user, vendor user id) of everyone linked


def card_jobs(change: Change, audience: Audience, *, acted: bool = False) -> list[Job]:
    """Every posted copy is made true; an item still pending also gets copies for new recipients."""
    existing = list(audience.cards.get(change.item_id, ()))
    jobs: list[Job] = [CardJob(item=change.item_id, to=t, acted=acted) for t in existing]
    if not change.after.status.final:  # a decided item gets no new cards, only updates of its own
        jobs.extend(
            CardJob(item=change.item_id, to=t, acted=acted)
            for t in card_targets(
                change.after, channel=audience.channel, slack_by_vendor=audience.slack_by_vendor
            )
            if t not in existing
        )
    return jobs


def flow_channels(change: Change, audience: Audience) -> list[str]:
    """Subscribed channels; and when an item whose cards went to people's DMs ends, the connector's
    channel too, so it still learns how the flow ended."""
    channels = list(audience.flow_channels)
    dm_cards = any(not t.startswith("channel:") for t in audience.cards.get(change.item_id, ()))
    if change.after.status.final and audience.channel and audience.channel not in channels and dm_cards:
        channels.append(audience.channel)
    return channels


def home_jobs(changes: Sequence[Change], audience: Audience) -> list[Job]:
    """The App Home of everyone an item concerns: its recipients, whoever acts on it, and everyone
    linked when the vendor names nobody."""
    users: set[str] = set()
    for change in changes:
        recipients = {p.id for p in change.after.recipients}
        users.update(
            slack
            for slack, vendor in audience.linked
            if not recipients or vendor in recipients or change.claim_by == slack
        )
    return [HomeJob(slack_user=u) for u in sorted(users)]


def after_sync(changes: Sequence[Change], audience: Audience) -> list[Job]:
    jobs: list[Job] = []
    for change in changes:
        jobs.extend(card_jobs(change, audience))
        jobs.extend(FlowJob(item=change.item_id, channel=c) for c in flow_channels(change, audience))
    jobs.extend(home_jobs(changes, audience))
    return jobs


def after_claim(item_id: int, targets: Sequence[str]) -> list[Job]:
    """A click won the claim: every copy shows "Working…", before anything else waiting."""
    return [CardJob(item=item_id, to=t, acted=True) for t in targets]


def after_decision(change: Change, audience: Audience, *, decided: bool) -> list[Job]:
    """The clicked item's copies first; its flow notices (and, when the vendor took the decision, a
    thread reply naming who decided); the Homes it concerns."""
    jobs = card_jobs(change, audience, acted=True)
    channels = flow_channels(change, audience)
    jobs.extend(FlowJob(item=change.item_id, channel=c) for c in channels)
    if decided:
        jobs.extend(ThreadReplyJob(item=change.item_id, channel=c) for c in channels)
    jobs.extend(home_jobs([change], audience))
    return jobs
