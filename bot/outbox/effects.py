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
from connectors.base import ApprovalItem, Person


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
    # What Slack said of each approver's address (lowercase): their Slack user, or None when nobody
    # in Slack has it. An address not here was not asked yet: its card waits as an "email:" target.
    slack_by_email: Mapping[str, str | None] = field(default_factory=dict)
    # "always": the channel keeps a copy of every card; "unresolved": only when someone is not found.
    channel_copy: str = "unresolved"
    # The vendor lists per linked user (Herzum): an item naming nobody waits on nobody's queue.
    per_user_listing: bool = False
    # People act through their email mapping (Greenhouse, Approval Path): everyone found by email
    # has the item in their App Home, linked or not.
    email_linked: bool = False


def slack_user_of(person: Person, audience: Audience) -> str | None:
    """The Slack user a vendor person is: by their linked identity, else by any of their addresses."""
    linked = audience.slack_by_vendor.get(person.id)
    if linked:
        return linked
    for email in person.all_emails:
        found = audience.slack_by_email.get(email)
        if found:
            return found
    return None


def unresolved(item: ApprovalItem, audience: Audience) -> list[Person]:
    """The item's approvers nobody can DM: no address, or Slack has none of their addresses."""
    return [
        p
        for p in item.recipients
        if slack_user_of(p, audience) is None
        and all(audience.slack_by_email.get(e, "?") is None for e in p.all_emails)
    ]


def targets(item: ApprovalItem, audience: Audience) -> list[str]:
    """Where the item's cards belong: each approver's DM (linked, or found in Slack by email, or an
    "email:" target still to be looked up), and the connector's channel: always with channel_copy
    "always"; else when someone cannot be found, nobody is named, or the connector asks for it."""
    found: list[str] = []
    for person in item.recipients:
        slack = slack_user_of(person, audience)
        if slack is not None:
            target = f"user:{slack}"
        else:
            asked = [e for e in person.all_emails if e not in audience.slack_by_email]
            if not asked:
                continue  # not in Slack (or no address): the channel names them
            target = f"email:{asked[0]}"
        if target not in found:
            found.append(target)
    missing = bool(unresolved(item, audience))
    channel = audience.channel
    if channel and (audience.channel_copy == "always" or not found or missing or item.channel_card):
        found.append(f"channel:{channel}")
    return found


def _same_person(target: str, existing: Sequence[str], audience: Audience) -> bool:
    """A DM copy already posted under an "email:" target (before the address was looked up)."""
    if not target.startswith("user:"):
        return False
    user = target.removeprefix("user:")
    return any(
        t.startswith("email:") and audience.slack_by_email.get(t.removeprefix("email:")) == user
        for t in existing
    )


def card_jobs(change: Change, audience: Audience, *, acted: bool = False) -> list[Job]:
    """Every posted copy is made true; an item still pending also gets copies for new recipients."""
    existing = list(audience.cards.get(change.item_id, ()))
    jobs: list[Job] = [CardJob(item=change.item_id, to=t, acted=acted) for t in existing]
    if not change.after.status.final:  # a decided item gets no new cards, only updates of its own
        jobs.extend(
            CardJob(item=change.item_id, to=t, acted=acted)
            for t in targets(change.after, audience)
            if t not in existing and not _same_person(t, existing, audience)
        )
    return jobs


def flow_channels(change: Change, audience: Audience) -> list[str]:
    """Subscribed channels; and when an item whose cards went only to people's DMs ends, the
    connector's channel too, so it still learns how the flow ended (its own copy, when it has one,
    shows that already)."""
    channels = list(audience.flow_channels)
    posted = audience.cards.get(change.item_id, ())
    dm_cards = any(not t.startswith("channel:") for t in posted)
    copy = audience.channel is not None and f"channel:{audience.channel}" in posted  # shows the end itself
    if (
        change.after.status.final
        and audience.channel
        and audience.channel not in channels
        and dm_cards
        and not copy
    ):
        channels.append(audience.channel)
    return channels


def waits_on_everyone(item: ApprovalItem, *, per_user_listing: bool) -> bool:
    """An item naming nobody is in every linked person's queue only when the vendor names nobody at
    all (FlexDeploy). A per-user listing (Herzum) or approver groups nobody could read (a Harness step
    whose groups the token may not see) mean nobody known: the channel card only."""
    return not item.recipients and not per_user_listing and not item.groups


def home_jobs(changes: Sequence[Change], audience: Audience) -> list[Job]:
    """The App Home of everyone an item concerns: its approvers (linked or found by email), whoever
    acts on it, and everyone linked when the vendor names nobody at all."""
    users: set[str] = set()
    for change in changes:
        item = change.after
        recipients = {p.id for p in item.recipients}
        everyone = waits_on_everyone(item, per_user_listing=audience.per_user_listing)
        users.update(
            slack
            for slack, vendor in audience.linked
            if everyone or vendor in recipients or change.claim_by == slack
        )
        if audience.email_linked:
            users.update(u for p in item.recipients if (u := slack_user_of(p, audience)))
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
