"""Greenhouse approval flows as ApprovalItems: pure functions of what Harvest v3 answered.

In v3 "whose turn is it" is on each approver slot (`GET /v3/approvers`: waiting, due, approved,
rejected). A `due` slot counts only while its group is unresolved and its flow pending (a member of
a "1 of 2" group who never voted may keep `due` after the group resolved). Greenhouse moves the
next `sort_order` to due when the one before resolves; groups with equal `sort_order` run in
parallel. The bot trusts those statuses: it never decides a turn itself.

Everything is sorted and keeps Greenhouse's own timestamps, so an unchanged flow maps to the same
fingerprint on every poll.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from connectors.base import (
    Action,
    ActionSpec,
    ApprovalItem,
    ApproverGroup,
    Field,
    GroupState,
    InputDef,
    Person,
    Status,
)
from connectors.greenhouse import client as wire

TYPE_LABELS = {
    "open_job": "Open job",
    "offer_job": "Offers on job",
    "offer_candidate": "Candidate offer",
}
_STATUS = {"pending": Status.PENDING, "approved": Status.APPROVED, "rejected": Status.REJECTED}
_MAX_OFFER_FIELDS = 6
_MAX_OPTIONS = 100  # Slack's limit for options in one select

DECIDE_IN_GREENHOUSE = (
    "Greenhouse's API cannot record approvals: approve or reject in Greenhouse (or from its "
    "approval email). This card follows what happens there."
)
NOT_REQUESTED = "Approvals have not been requested yet: nobody has been asked to decide."
REASSIGN_WHO = "the approver whose slot it is or the flow's requester"


@dataclass(frozen=True)
class Flow:
    """One flow as read: its groups (any order) and every approver slot of those groups."""

    flow: wire.ApprovalFlow
    groups: Sequence[wire.ApproverGroup]
    slots: Sequence[wire.Approver]


@dataclass(frozen=True)
class Context:
    """What the card shows besides the flow; any part may be missing (no access, deleted)."""

    users: Mapping[int, wire.User] = field(default_factory=dict)
    job: wire.Job | None = None
    offer: wire.Offer | None = None
    candidate: wire.Candidate | None = None


def ordered_groups(flow: Flow) -> list[wire.ApproverGroup]:
    return sorted(flow.groups, key=lambda g: (g.sort_order, g.id))


def group_names(flow: Flow) -> dict[int, str]:
    return {g.id: f"Group {n}" for n, g in enumerate(ordered_groups(flow), start=1)}


def is_final(flow: wire.ApprovalFlow) -> bool:
    return _STATUS.get(flow.approval_status, Status.PENDING).final


def slots_of(flow: Flow, group_id: int) -> list[wire.Approver]:
    return sorted(
        (s for s in flow.slots if s.approver_group_id == group_id), key=lambda s: (s.sort_order or 0, s.id)
    )


def due_slots(flow: Flow) -> list[wire.Approver]:
    """The slots waiting on their person now: due, in an unresolved group of a pending flow."""
    if is_final(flow.flow):
        return []
    open_groups = {g.id for g in flow.groups if g.resolved_at is None}
    return sorted(
        (s for s in flow.slots if s.status == "due" and s.approver_group_id in open_groups),
        key=lambda s: (s.approver_group_id, s.user_id),
    )


def group_state(flow: Flow, group: wire.ApproverGroup) -> GroupState:
    if group.resolved_at is not None:
        return GroupState.RESOLVED
    if not is_final(flow.flow) and any(s.status == "due" for s in slots_of(flow, group.id)):
        return GroupState.DUE
    return GroupState.WAITING


def is_started(flow: Flow) -> bool:
    """Requested: Greenhouse names a requester, or some slot has left `waiting`."""
    if flow.flow.requested_by_id is not None or is_final(flow.flow):
        return True
    return any(s.status != "waiting" or s.request_sent_at is not None for s in flow.slots)


def person(user_id: int, users: Mapping[int, wire.User]) -> Person:
    """A Greenhouse user as the card names them: the primary address, and the others, each tried in
    Slack when the primary is not found there."""
    user = users.get(user_id)
    if user is None:
        return Person(id=str(user_id), name=f"User {user_id}")
    addresses = user.addresses
    return Person(
        id=str(user_id),
        name=user.label,
        email=addresses[0] if addresses else None,
        emails=tuple(addresses[1:]),
    )


def reassign_choices(flow: Flow, users: Mapping[int, wire.User]) -> dict[str, wire.Approver]:
    """ "Group 1: Alice Approver" → the slot, for every undecided slot of an unresolved group."""
    names = group_names(flow)
    pairs = [
        (g, s)
        for g in ordered_groups(flow)
        if g.resolved_at is None
        for s in sorted(slots_of(flow, g.id), key=lambda s: (person(s.user_id, users).label.lower(), s.id))
        if s.status in ("waiting", "due")
    ]
    labels = [f"{names[g.id]}: {person(s.user_id, users).label}"[:60] for g, s in pairs]
    choices: dict[str, wire.Approver] = {}
    for label, (_, slot) in zip(labels, pairs, strict=True):
        if labels.count(label) > 1:
            label = f"{label} #{slot.user_id}"
        choices[label] = slot
    return dict(list(choices.items())[:_MAX_OPTIONS])


def reassign_spec(flow: Flow, users: Mapping[int, wire.User]) -> ActionSpec | None:
    choices = list(reassign_choices(flow, users))
    if not choices:
        return None
    return ActionSpec(
        Action.REASSIGN,
        label="Reassign",
        inputs=(
            InputDef(
                name="replace",
                label="Approver to replace",
                kind="select",
                allowed=tuple(choices),
                default=choices[0] if len(choices) == 1 else None,
                required=True,
                description="Your own slot, or any undecided one if you requested this approval.",
            ),
            InputDef(
                name="new_approver",
                label="New approver",
                kind="slack_user",
                required=True,
                description="They need a Greenhouse account with access to this job.",
            ),
        ),
    )


REQUEST_SPEC = ActionSpec(
    Action.REQUEST,
    label="Request approvals",
    confirm="Ask the first group to approve now? Greenhouse records you as the requester.",
)


def _job_label(flow: wire.ApprovalFlow, job: wire.Job | None) -> str:
    if job is None:
        return f"Job {flow.job_id}" if flow.job_id else "Unknown job"
    name = job.name or f"Job {job.id}"
    return f"{name} ({job.requisition_id})" if job.requisition_id else name


def title(flow: wire.ApprovalFlow, context: Context) -> str:
    job = context.job.name if context.job and context.job.name else _job_label(flow, context.job)
    if flow.approval_type == "offer_candidate":
        if context.candidate is not None:
            return f"Offer to {context.candidate.name}: {job}"
        return f"Offer on {job}"
    if flow.approval_type == "offer_job":
        return f"Make offers on {job}"
    return f"Open job: {job}"


def _summary(flow: wire.ApprovalFlow, context: Context) -> str:
    job = _job_label(flow, context.job)
    if flow.approval_type == "offer_candidate":
        who = context.candidate.name if context.candidate else "a candidate"
        return f"Approval of the offer to {who} for {job}."
    if flow.approval_type == "offer_job":
        return f"Approval to make offers on {job}."
    return f"Approval to start recruiting for {job}."


def _render(value: Any) -> str:
    """A custom field value as text, "" to skip it."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_render(v) for v in value if _render(v))
    if isinstance(value, dict):
        if "value" in value and "currency" in value:
            return f"{value['value']} {value['currency']}"
        if "value" in value:
            return _render(value["value"])
        return str(value.get("name") or "")
    return str(value)


def _fields(flow: Flow, context: Context, requester: Person | None) -> tuple[Field, ...]:
    wflow = flow.flow
    fields = [
        Field("Approval", TYPE_LABELS.get(wflow.approval_type, wflow.approval_type)),
        Field("Job", _job_label(wflow, context.job)),
    ]
    if wflow.approval_type == "offer_candidate" and context.candidate is not None:
        fields.append(Field("Candidate", context.candidate.name))
    offer = context.offer
    if offer is not None:
        if offer.starts_on:
            fields.append(Field("Start date", offer.starts_on))
        shown = 0
        for key, value in sorted(offer.custom_fields.items()):
            text = _render(value)
            if not text or shown >= _MAX_OFFER_FIELDS:
                continue
            fields.append(Field(key.replace("_", " ").capitalize(), text))
            shown += 1
    waiting_on = sorted({person(s.user_id, context.users).label for s in due_slots(flow)}, key=str.lower)
    if waiting_on:
        # Named on the card itself: an approver outside Slack is carded in the channel, by name.
        fields.append(Field("Waiting on", ", ".join(waiting_on)))
    if requester is not None:
        fields.append(Field("Requested by", requester.label))
    if len(flow.groups) > 1:
        fields.append(Field("Order", "One group after another" if wflow.sequential else "All groups at once"))
    return tuple(fields)


def url(flow: wire.ApprovalFlow, context: Context, ui_url: str) -> str:
    offer = context.offer
    if flow.approval_type == "offer_candidate" and offer is not None and offer.candidate_id:
        link = f"{ui_url}/people/{offer.candidate_id}"
        return f"{link}?application_id={offer.application_id}" if offer.application_id else link
    if flow.job_id:
        return f"{ui_url}/plans/{flow.job_id}"
    return f"{ui_url}/dashboard"


def _max(values: Sequence[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _min(values: Sequence[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _moment(value: date | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), tzinfo=UTC)


def vendor_reminded_at(slots: Sequence[wire.Approver]) -> datetime | None:
    """Greenhouse's own reminders: the last manual one, or the next automatic one it has queued
    (the bot holds back around it rather than nag the same person twice)."""
    return _max([s.reminder_sent_at for s in slots] + [_moment(s.send_auto_reminder_at) for s in slots])


def build_item(connector: str, flow: Flow, context: Context, *, ui_url: str) -> ApprovalItem:
    """One approval flow as a card: its groups in order, who is due now, and what can be done
    from Slack (request approvals, reassign; deciding itself stays in Greenhouse)."""
    wflow = flow.flow
    users = context.users
    status = _STATUS.get(wflow.approval_status, Status.PENDING)
    due = due_slots(flow)
    recipients = {s.user_id: person(s.user_id, users) for s in due}
    requester = person(wflow.requested_by_id, users) if wflow.requested_by_id else None
    actions, notices = _actions_and_notices(flow, users, status)
    return ApprovalItem(
        connector=connector,
        external_id=str(wflow.id),
        kind=TYPE_LABELS.get(wflow.approval_type, wflow.approval_type),
        title=title(wflow, context),
        status=status,
        summary=_summary(wflow, context),
        url=url(wflow, context, ui_url),
        requester=requester,
        created_at=wflow.created_at or _min([g.created_at for g in flow.groups]),
        groups=_groups(flow, users),
        fields=_fields(flow, context, requester),
        actions=actions,
        notices=notices,
        decided_at=_max([g.resolved_at for g in flow.groups]) if status.final else None,
        recipients=tuple(sorted(recipients.values(), key=lambda p: (p.label.lower(), p.id))),
        due_since=_min([s.request_sent_at for s in due]) if status is Status.PENDING and due else None,
        vendor_reminded_at=vendor_reminded_at(due),
        ref=_ref(flow),
    )


def _groups(flow: Flow, users: Mapping[int, wire.User]) -> tuple[ApproverGroup, ...]:
    """The approver groups in the order Greenhouse asks them, with who approved and rejected."""
    names = group_names(flow)
    groups = []
    for group in ordered_groups(flow):
        slots = slots_of(flow, group.id)
        approvers = tuple(
            sorted((person(s.user_id, users) for s in slots), key=lambda p: (p.label.lower(), p.id))
        )
        approved = tuple(person(s.user_id, users) for s in slots if s.status == "approved")
        rejected = tuple(person(s.user_id, users) for s in slots if s.status == "rejected")
        groups.append(
            ApproverGroup(
                names[group.id],
                group_state(flow, group),
                group.approvals_required,
                approvers,
                approved,
                rejected,
            )
        )
    return tuple(groups)


def _actions_and_notices(
    flow: Flow, users: Mapping[int, wire.User], status: Status
) -> tuple[tuple[ActionSpec, ...], tuple[str, ...]]:
    """While pending: Request approvals until the flow is started, Reassign when someone may; the
    decision itself is made in Greenhouse, which the notices say. Once decided: how it ended."""
    if status is not Status.PENDING:
        return (), (f"{status.value.capitalize()} in Greenhouse.",)
    actions: list[ActionSpec] = []
    notices: list[str] = []
    if not is_started(flow):
        actions.append(REQUEST_SPEC)
        notices.append(NOT_REQUESTED)
    reassign = reassign_spec(flow, users)
    if reassign is not None:
        actions.append(reassign)
    notices.append(DECIDE_IN_GREENHOUSE)
    return tuple(actions), tuple(notices)


def _ref(flow: Flow) -> dict[str, str]:
    """What acting on the card needs from the vendor without a re-read: the flow and its owners."""
    wflow = flow.flow
    ref = {"flow_id": str(wflow.id), "started": "yes" if is_started(flow) else "no"}
    if wflow.job_id:
        ref["job_id"] = str(wflow.job_id)
    if wflow.offer_id:
        ref["offer_id"] = str(wflow.offer_id)
    if wflow.requested_by_id:
        ref["requested_by_id"] = str(wflow.requested_by_id)
    return ref


def permits_reassign(item: ApprovalItem, actor_user_id: str) -> bool:
    """From the card alone (no vendor call): an approver of an undecided group who has not voted
    yet may hand over their own slot; the flow's requester may reassign any undecided slot."""
    if not actor_user_id:
        return False
    if item.ref.get("requested_by_id") == actor_user_id:
        return True
    for group in item.groups:
        if group.state is GroupState.RESOLVED:
            continue
        voted = {p.id for p in (*group.approved_by, *group.rejected_by)}
        if any(p.id == actor_user_id and p.id not in voted for p in group.approvers):
            return True
    return False
