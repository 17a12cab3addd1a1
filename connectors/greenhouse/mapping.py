"""Greenhouse approval flows as ApprovalItems: pure functions of what Harvest answered.

The hard part is "whose turn is it". A flow says which groups resolved, but not which are due:
that lives in each approver's pending approvals ("waiting" or "due"), and an approver who has
already approved simply drops out of their list. So an item is built from the flow *plus* the
pending lists of the approvers that matter (the connector reads those):
- a flow has started when a group resolved or any approver's row for it says "due";
- once started, a sequential flow's due group is its first unresolved one (lowest priority), a
  parallel flow's are all unresolved groups; a row's own status, where we have one, wins;
- recipients are the approvers of due groups whose list still holds the flow (not yet acted).
Everything is sorted and keeps Greenhouse's own timestamps, so an unchanged flow maps to the same
fingerprint on every poll.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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

PendingLists = Mapping[int, Sequence[wire.PendingApproval]]


@dataclass(frozen=True)
class Context:
    """What the card shows besides the flow; any part may be missing (no access, deleted)."""

    job: wire.Job | None = None
    offer: wire.Offer | None = None
    candidate: wire.Candidate | None = None
    requester: wire.User | None = None


def ordered_groups(flow: wire.ApprovalFlow) -> list[wire.ApproverGroup]:
    """Groups in Greenhouse's order: the first listed gets the first priority (lowest number)."""
    return sorted(flow.approver_groups, key=lambda g: (g.priority, g.id))


def group_names(flow: wire.ApprovalFlow) -> dict[int, str]:
    return {g.id: f"Group {n}" for n, g in enumerate(ordered_groups(flow), start=1)}


def rows_for(flow_id: int, pending: PendingLists) -> list[tuple[int, wire.PendingApproval]]:
    return [
        (user_id, row)
        for user_id in sorted(pending)
        for row in pending[user_id]
        if row.approval_flow_id == flow_id
    ]


def is_final(flow: wire.ApprovalFlow) -> bool:
    return _STATUS.get(flow.approval_status, Status.PENDING).final


def is_started(flow: wire.ApprovalFlow, pending: PendingLists) -> bool:
    if is_final(flow) or any(g.resolved_at is not None for g in flow.approver_groups):
        return True
    return any(row.status == "due" for _, row in rows_for(flow.id, pending))


def due_if_started(flow: wire.ApprovalFlow) -> list[wire.ApproverGroup]:
    """The groups whose turn it is once the flow has been requested (by structure alone)."""
    unresolved = [g for g in ordered_groups(flow) if g.resolved_at is None]
    if is_final(flow) or not unresolved:
        return []
    if not flow.sequential:
        return unresolved
    first = unresolved[0].priority
    return [g for g in unresolved if g.priority == first]


def group_states(flow: wire.ApprovalFlow, pending: PendingLists) -> dict[int, GroupState]:
    started = is_started(flow, pending)
    due = {g.id for g in due_if_started(flow)} if started else set()
    said: dict[int, str] = {}
    for _, row in rows_for(flow.id, pending):
        if row.approver_group_id is not None and said.get(row.approver_group_id) != "due":
            said[row.approver_group_id] = row.status
    states: dict[int, GroupState] = {}
    for group in ordered_groups(flow):
        if group.resolved_at is not None:
            states[group.id] = GroupState.RESOLVED
        elif is_final(flow):
            states[group.id] = GroupState.WAITING
        elif said.get(group.id) == "due":
            states[group.id] = GroupState.DUE
        elif said.get(group.id) == "waiting":
            states[group.id] = GroupState.WAITING
        else:
            states[group.id] = GroupState.DUE if group.id in due else GroupState.WAITING
    return states


def due_approver_ids(flow: wire.ApprovalFlow, pending: PendingLists) -> set[int]:
    states = group_states(flow, pending)
    return {a.id for g in flow.approver_groups if states[g.id] is GroupState.DUE for a in g.approvers}


def person(approver: wire.Approver) -> Person:
    email = approver.email_addresses[0] if approver.email_addresses else None
    return Person(id=str(approver.id), name=approver.name, email=email)


def reassign_choices(flow: wire.ApprovalFlow) -> dict[str, tuple[wire.ApproverGroup, wire.Approver]]:
    """ "Group 1: Alice Approver" → (group, approver), for every approver Greenhouse lets us replace.

    One select of (group, approver) pairs, not a group select plus an approver select: a Slack
    modal cannot narrow one select by another's answer, and a pair can never be inconsistent.
    Labels are recomputed from the flow at click time, so they are all the bot needs to pass back.
    """
    names = group_names(flow)
    pairs = [
        (g, a)
        for g in ordered_groups(flow)
        if g.resolved_at is None
        for a in sorted(g.approvers, key=lambda a: (a.name.lower(), a.id))
    ]
    labels = [f"{names[g.id]}: {a.name or (a.email_addresses or [str(a.id)])[0]}"[:60] for g, a in pairs]
    choices: dict[str, tuple[wire.ApproverGroup, wire.Approver]] = {}
    for label, (group, approver) in zip(labels, pairs, strict=True):
        if labels.count(label) > 1:
            label = f"{label} #{approver.id}"
        choices[label] = (group, approver)
    return dict(list(choices.items())[:_MAX_OPTIONS])


def reassign_spec(flow: wire.ApprovalFlow) -> ActionSpec | None:
    choices = list(reassign_choices(flow))
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
                description="Only approvers in groups that have not decided yet can be replaced.",
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
    """A custom field value as text (Greenhouse's keyed_custom_fields shapes), "" to skip it."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_render(v) for v in value if _render(v))
    if isinstance(value, dict):
        if "value" in value and "currency" in value:
            return f"{value['value']} {value['currency']}"
        return str(value.get("name") or "")
    return str(value)


def _fields(flow: wire.ApprovalFlow, context: Context, requester: Person | None) -> tuple[Field, ...]:
    fields = [
        Field("Approval", TYPE_LABELS.get(flow.approval_type, flow.approval_type)),
        Field("Job", _job_label(flow, context.job)),
    ]
    if flow.approval_type == "offer_candidate" and context.candidate is not None:
        fields.append(Field("Candidate", context.candidate.name))
    job = context.job
    if job is not None:
        departments = ", ".join(d.name for d in job.departments if d and d.name)
        offices = ", ".join(o.name for o in job.offices if o and o.name)
        if departments:
            fields.append(Field("Department", departments))
        if offices:
            fields.append(Field("Office", offices))
    offer = context.offer
    if offer is not None:
        if offer.starts_at:
            fields.append(Field("Start date", offer.starts_at))
        shown = 0
        for key, custom in offer.keyed_custom_fields.items():
            text = _render(custom.value) if custom else ""
            if custom is None or not text or shown >= _MAX_OFFER_FIELDS:
                continue
            fields.append(Field(custom.name or key, text))
            shown += 1
    if requester is not None:
        fields.append(Field("Requested by", requester.label))
    if len(flow.approver_groups) > 1:
        fields.append(Field("Order", "One group after another" if flow.sequential else "All groups at once"))
    return tuple(fields)


def url(flow: wire.ApprovalFlow, context: Context, ui_url: str) -> str:
    offer = context.offer
    if flow.approval_type == "offer_candidate" and offer is not None and offer.candidate_id:
        link = f"{ui_url}/people/{offer.candidate_id}"
        return f"{link}?application_id={offer.application_id}" if offer.application_id else link
    if flow.job_id:
        return f"{ui_url}/plans/{flow.job_id}"
    return f"{ui_url}/dashboard"


def _requester(flow: wire.ApprovalFlow, context: Context) -> Person | None:
    if flow.requested_by_user_id is None:
        return None
    for group in flow.approver_groups:
        for approver in group.approvers:
            if approver.id == flow.requested_by_user_id:
                return person(approver)
    user = context.requester
    if user is not None and user.id == flow.requested_by_user_id:
        return Person(str(user.id), user.name, user.primary_email_address)
    return Person(str(flow.requested_by_user_id), f"User {flow.requested_by_user_id}")


def _max(values: Sequence[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _min(values: Sequence[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def build_item(
    connector: str,
    flow: wire.ApprovalFlow,
    pending: PendingLists,
    context: Context,
    *,
    ui_url: str,
) -> ApprovalItem:
    states = group_states(flow, pending)
    names = group_names(flow)
    started = is_started(flow, pending)
    status = _STATUS.get(flow.approval_status, Status.PENDING)
    rows = {
        (user_id, row.approver_group_id): row
        for user_id, row in rows_for(flow.id, pending)
        if row.status == "due"
    }

    groups = []
    recipients: dict[str, Person] = {}
    recipient_rows: list[wire.PendingApproval] = []
    for group in ordered_groups(flow):
        state = states[group.id]
        approvers = tuple(sorted((person(a) for a in group.approvers), key=lambda p: (p.label.lower(), p.id)))
        groups.append(ApproverGroup(names[group.id], state, group.approvals_required, approvers))
        if state is not GroupState.DUE or status.final:
            continue
        for approver in group.approvers:
            if approver.id not in pending:
                # Not read (should not happen: the connector reads every due approver): assume
                # they still have to act rather than leave them without a card.
                recipients[str(approver.id)] = person(approver)
                continue
            row = rows.get((approver.id, group.id)) or rows.get((approver.id, None))
            if row is not None:
                recipients[str(approver.id)] = person(approver)
                recipient_rows.append(row)

    due_since = _min([r.request_sent_at for r in recipient_rows])
    if due_since is None and flow.sequential and started and not status.final:
        due_since = _max([g.resolved_at for g in flow.approver_groups])

    requester = _requester(flow, context)
    actions: list[ActionSpec] = []
    notices: list[str] = []
    if status is Status.PENDING:
        if not started:
            actions.append(REQUEST_SPEC)
            notices.append(NOT_REQUESTED)
        reassign = reassign_spec(flow)
        if reassign is not None:
            actions.append(reassign)
        notices.append(DECIDE_IN_GREENHOUSE)
    else:
        notices.append(f"{status.value.capitalize()} in Greenhouse.")

    ref = {"flow_id": str(flow.id), "started": "yes" if started else "no"}
    if flow.job_id:
        ref["job_id"] = str(flow.job_id)
    if flow.offer_id:
        ref["offer_id"] = str(flow.offer_id)

    return ApprovalItem(
        connector=connector,
        external_id=str(flow.id),
        kind=flow.approval_type,
        title=title(flow, context),
        status=status,
        summary=_summary(flow, context),
        url=url(flow, context, ui_url),
        requester=requester,
        created_at=_min([g.created_at for g in flow.approver_groups]),
        groups=tuple(groups),
        fields=_fields(flow, context, requester),
        actions=tuple(actions),
        notices=tuple(notices),
        decided_at=_max([g.resolved_at for g in flow.approver_groups]) if status.final else None,
        recipients=tuple(sorted(recipients.values(), key=lambda p: (p.label.lower(), p.id))),
        due_since=due_since if status is Status.PENDING and recipients else None,
        vendor_reminded_at=_max([r.reminder_sent_at for r in recipient_rows]),
        ref=ref,
    )
