"""Approval Path for Jira as an approvals-bot connector: notify, link, remind, start and cancel.

Why it looks unlike the other vendors:
- The Web API has no approve or reject call: cards carry `Open in Jira` and `Cancel path`, and
  a notice that the decision is made on the issue.
- Approvals are listed per issue only. The connector's Jira account runs `jql` (newest updated
  first), and the approvals of the candidate issues are read. An issue whose Jira `updated`
  stamp has not moved is not read again, except that one with a path in progress is re-read
  every `recheck_after` (a vote is not known to touch `updated`). At most `max_issues_per_poll`
  issues are read per poll; the rest keep their last reading and wait their turn.
- Who may decide: a USER step names one Atlassian account; a GROUP step names a Jira group,
  whose members come from Jira Cloud's group member API (paged, kept for `membership_ttl`).
  Emails come from Jira as its privacy settings allow; a person whose email is hidden is named
  without one, and the card then also goes to the channel, saying so.
- The API key belongs to the app; each write names a performer `userId`. That is only ever the
  clicking person's own Atlassian account id, and only after their Slack email has been mapped
  to that same account again through Jira's user search.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar, TypeVar

from connectors.approval_path import ApprovalPathSettings
from connectors.approval_path.client import (
    ApprovalPathClient,
    JiraClient,
    JiraIssue,
    WireApproval,
    WireDefinition,
    WireStep,
)
from connectors.base import (
    Action,
    ActionSpec,
    Activity,
    Actor,
    ApprovalItem,
    ApproverGroup,
    Capabilities,
    Connector,
    Field,
    GroupState,
    InputDef,
    LinkedUser,
    Person,
    Requestable,
    Status,
    VendorIdentity,
)
from connectors.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    TransientError,
    Unsupported,
)
from connectors.http import Sleep
from connectors.membership import DEFAULT_TTL, Members, MembershipCache

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

_ISSUE_FIELDS = ("summary", "updated", "project")
_SEARCH_PAGE = 100
# Candidate issues considered per poll; beyond this the jql should be narrowed.
_MAX_CANDIDATES = 1000

_PATH_STATUS = {
    "IN_PROGRESS": Status.PENDING,
    "PENDING": Status.PENDING,
    # The vendor document shows only IN_PROGRESS and SUCCESS; the UI's other states are
    # Rejected, Expired and Archived (NOTES.md 5.5). Their API spelling is inferred.
    "SUCCESS": Status.APPROVED,
    "APPROVED": Status.APPROVED,
    "REJECTED": Status.REJECTED,
    "EXPIRED": Status.EXPIRED,
    "ARCHIVED": Status.CANCELLED,
    "CANCELLED": Status.CANCELLED,
    "CANCELED": Status.CANCELLED,
    "DELETED": Status.CANCELLED,
}
_DECIDING_ACTIONS = {"APPROVAL", "CONSENT"}
_STEP_DONE = {"SUCCESS", "REJECTED", "SKIPPED", "FAILED", "EXPIRED", "CANCELLED"}
_ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-[1-9][0-9]*$")
_CHECKED = {"true", "yes", "on", "1", "checked", "comment_on_issue"}

NO_DECISION_API = "Approve or reject on the Jira issue: Approval Path offers no API for decisions."
HIDDEN_EMAILS = "Some approvers' emails are hidden in Jira; this card is also in the team channel for them."
# What Jira needs before it lists a group's members to the connector's account.
BROWSE_USERS = "Browse users and groups"

# Who may cancel a path (the bot's words for a refusal).
CANCEL_WHO = "the path's requester or one of its approvers"

CANCEL_SPEC = ActionSpec(
    Action.CANCEL,
    label="Cancel path",
    confirm="Delete this approval path from the Jira issue? Its approvers will no longer be asked.",
    inputs=(InputDef(name="comment_on_issue", kind="checkbox", label="Leave a comment on the issue"),),
)


def path_status(approval: WireApproval) -> Status:
    return _PATH_STATUS.get(approval.status.upper(), Status.CANCELLED)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_deciding(step: WireStep) -> bool:
    return (step.action or "").upper() in _DECIDING_ACTIONS


def _is_decided(step: WireStep) -> bool:
    return step.decision is not None or (step.status or "").upper() in _STEP_DONE


def _stages(steps: Sequence[WireStep]) -> list[list[int]]:
    """Step indexes in the order they run: a parallel group is one stage (STARTED is skipped)."""
    stages: list[list[int]] = []
    previous: int | None = None
    for index, step in enumerate(steps):
        if (step.action or "").upper() == "STARTED":
            previous = None
            continue
        group = step.parallelGroupNumber
        if group is not None and stages and previous == group:
            stages[-1].append(index)
        else:
            stages.append([index])
        previous = group
    return stages


def active_steps(approval: WireApproval) -> list[int]:
    """Indexes of the steps waiting on a decision now.

    `activeSteps` repeats the active steps whole; a step is active when it appears there. When
    the answer lacks it (the first sample of the vendor document), it is the first stage that
    still has an undecided approval or consent step."""
    if path_status(approval) is not Status.PENDING:
        return []
    steps = approval.steps
    if approval.activeSteps:
        marked = [
            i
            for i, step in enumerate(steps)
            if step in approval.activeSteps and _is_deciding(step) and not _is_decided(step)
        ]
        if marked:
            return marked
    for stage in _stages(steps):
        waiting = [i for i in stage if _is_deciding(steps[i]) and not _is_decided(steps[i])]
        if waiting:
            return waiting
    return []


def _step_label(step: WireStep) -> str:
    kind = step.type.upper()
    if kind == "USER":
        return step.displayName or step.userId or "User"
    if kind == "GROUP":
        # A group id is a UUID nobody can read; without its name the card says what it is.
        return f"Group {step.displayName}" if step.displayName else "A Jira group"
    if kind == "EMAIL":
        return f"{step.email or 'someone'} (by email)"
    return step.name or step.displayName or kind.title() or "Step"


def _describe_definition(definition: WireDefinition) -> str:
    route = " → ".join(_step_label(s) for s in definition.steps if _is_deciding(s))
    text = (definition.description or "").strip()
    return " · ".join(part for part in (route, text) if part)


def _checked(value: str | None) -> bool:
    return (value or "").strip().lower() in _CHECKED


def _issue_key(text: str | None) -> str:
    key = (text or "").strip().upper()
    if not _ISSUE_KEY.match(key):
        raise InvalidInput(
            f"{text!r} is not a Jira issue key (like OPS-12)" if text else "name the Jira issue, like OPS-12",
            field="target",
        )
    return key


def _split_id(value: str, what: str) -> tuple[str, str]:
    key, sep, rest = value.rpartition(":")
    if not sep or not key or not rest:
        raise InvalidInput(f"{value!r} is not an Approval Path {what}", field=what)
    return key, rest


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run calls concurrently (VendorHTTP bounds the fan-out); the first failure is raised as
    itself, not wrapped in an ExceptionGroup, and the others are cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


async def _as_coroutine(call: Awaitable[T]) -> T:
    return await call


@dataclass
class _Reading:
    """What the connector last read of one issue."""

    issue: JiraIssue
    approvals: tuple[WireApproval, ...]
    read_at: datetime

    @property
    def in_progress(self) -> bool:
        return any(path_status(a) is Status.PENDING for a in self.approvals)


class ApprovalPathConnector(Connector):
    type: ClassVar[str] = "approval_path"
    # Distinct from Herzum Approval (Jira): two Jira connectors never share one vague label.
    vendor_label: ClassVar[str] = "Approval Path (Jira)"
    capabilities: ClassVar[Capabilities] = Capabilities(
        request=True,
        cancel=True,
        link_mode="email",
        notes=(
            "Approval Path has no API to approve or reject: people decide on the Jira issue.",
            "Starting and cancelling a path are attributed to the clicking person (performer userId).",
        ),
    )

    def __init__(
        self,
        name: str,
        settings: ApprovalPathSettings,
        *,
        timeout: float = 15.0,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        membership_ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        # Jira group id (or name) -> its members; the same clock decides when they are stale.
        self._groups: MembershipCache[str] = MembershipCache(
            membership_ttl, clock=lambda: self._clock().timestamp()
        )
        self._unreadable: dict[str, str] = {}  # group key -> display name, for check()
        self._ap = ApprovalPathClient(
            settings.base_url, settings.api_key.get_secret_value(), timeout=timeout, sleep=sleep
        )
        self._jira = JiraClient(
            settings.jira_url,
            settings.jira_email,
            settings.jira_token.get_secret_value(),
            timeout=timeout,
            sleep=sleep,
        )
        self._browse = (settings.ui_url or settings.jira_url) + "/browse/"
        jql = settings.jql.strip()
        # Newest updated first, so the per-poll budget goes to what moved most recently.
        self._jql = jql if re.search(r"\border\s+by\b", jql, re.I) else f"{jql} ORDER BY updated DESC"
        self._readings: dict[str, _Reading] = {}
        # Atlassian account id -> email as Jira shows it to the connector (None: hidden or gone).
        self._emails: dict[str, str | None] = {}

    async def aclose(self) -> None:
        await self._ap.aclose()
        await self._jira.aclose()

    # -- listing -------------------------------------------------------------------------------

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        issues = await self._jira.search(
            self._jql, fields=_ISSUE_FIELDS, page_size=_SEARCH_PAGE, limit=_MAX_CANDIDATES
        )
        now = self._clock()
        due = self._due_for_reading(issues, now)
        budget = self.settings.max_issues_per_poll
        if len(due) > budget:
            log.info("%s: %d issues to read, %d this poll (max_issues_per_poll)", self.name, len(due), budget)
        await _all(self._read(issue, now) for issue in due[:budget])
        seen = {issue.key for issue in issues}
        for key in [k for k in self._readings if k not in seen]:
            del self._readings[key]

        pending = [
            (reading.issue, approval)
            for issue in issues
            if (reading := self._readings.get(issue.key)) is not None
            for approval in reading.approvals
            if path_status(approval) is Status.PENDING
        ]
        await self._learn_emails(approval for _, approval in pending)
        await self._learn_groups(approval for _, approval in pending)
        return [self._item(issue, approval) for issue, approval in pending]

    def _due_for_reading(self, issues: Sequence[JiraIssue], now: datetime) -> list[JiraIssue]:
        """Changed and new issues (newest first), then in-progress ones not read for a while
        (longest unread first)."""
        changed: list[JiraIssue] = []
        stale: list[tuple[datetime, JiraIssue]] = []
        recheck: timedelta = self.settings.recheck_after
        for issue in issues:
            reading = self._readings.get(issue.key)
            if reading is None or reading.issue.updated != issue.updated:
                changed.append(issue)
            elif reading.in_progress and now - reading.read_at >= recheck:
                stale.append((reading.read_at, issue))
            else:
                reading.issue = issue
        stale.sort(key=lambda pair: pair[0])
        return changed + [issue for _, issue in stale]

    async def _read(self, issue: JiraIssue, now: datetime) -> None:
        try:
            approvals = await self._ap.approvals(issue.key)
        except NotFound:
            # Deleted or moved between the search and this read; the next search tells.
            approvals = ()
        self._readings[issue.key] = _Reading(issue, approvals, now)

    async def _learn_emails(self, approvals: Iterable[WireApproval]) -> None:
        """Emails of the people on running paths, so cards reach people not yet linked.
        One lookup per person per connector lifetime."""
        wanted = sorted(
            {
                step.userId
                for approval in approvals
                for step in approval.steps
                if step.type.upper() == "USER" and step.userId and step.userId not in self._emails
            }
        )

        async def lookup(account_id: str) -> None:
            try:
                user = await self._jira.user(account_id)
            except TransientError as exc:
                log.info("%s: no email for %s yet (%s)", self.name, account_id, exc)
                return
            self._emails[account_id] = user.emailAddress if user else None

        await _all(lookup(account_id) for account_id in wanted)

    async def _learn_groups(self, approvals: Iterable[WireApproval]) -> None:
        """Members of the Jira groups whose step is active now, unless read within the TTL."""
        steps: dict[str, WireStep] = {}
        for approval in approvals:
            for index in active_steps(approval):
                step = approval.steps[index]
                if (key := _group_key(step)) is not None:
                    steps.setdefault(key, step)
        await _all(
            self._groups.refresh(key, functools.partial(self._members, key, steps[key]))
            for key in self._groups.due(steps)
        )

    async def _members(self, key: str, step: WireStep) -> Members:
        name = step.displayName or "a Jira group"
        try:
            users = await self._jira.group_members(
                group_id=step.groupId or None, group_name=None if step.groupId else step.displayName
            )
        except NotAllowed as exc:
            log.info("%s: may not list the members of Jira group %s (%s)", self.name, name, exc)
            self._unreadable[key] = name
            return Members(unreadable=BROWSE_USERS)
        except NotFound:
            self._unreadable[key] = name
            return Members(unreadable="not found")
        self._unreadable.pop(key, None)
        people = tuple(
            Person(id=u.accountId, name=u.displayName, email=u.emailAddress or None)
            for u in sorted(users, key=lambda u: u.accountId)
            if u.accountType == "atlassian"
        )
        return Members(people, hidden_emails=sum(1 for p in people if not p.email))

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        key, approval_id = self._where(item)
        approvals = await self._ap.approvals(key)
        issue = await self._issue(key)
        reading = self._readings.get(key)
        if reading is not None:
            self._readings[key] = _Reading(reading.issue, approvals, self._clock())
        found = next((a for a in approvals if a.id == approval_id), None)
        if found is None:
            return item.with_status(
                Status.CANCELLED,
                recipients=(),
                channel_card=False,
                notices=("This approval path was deleted from the issue.",),
            )
        await self._learn_emails((found,))
        await self._learn_groups((found,))
        return self._item(issue, found)

    async def _issue(self, key: str) -> JiraIssue:
        reading = self._readings.get(key)
        if reading is not None:
            return reading.issue
        try:
            return await self._jira.issue(key, fields=_ISSUE_FIELDS)
        except NotFound as exc:
            # Jira says the same for a missing issue and one its account may not see.
            text = f"Jira has no issue {key} that the bot's Jira account can see"
            raise NotFound(text, detail=text) from exc

    @staticmethod
    def _where(item: ApprovalItem) -> tuple[str, str]:
        key = item.ref.get("issue")
        approval_id = item.ref.get("approval_id")
        if key and approval_id:
            return key, approval_id
        return _split_id(item.external_id, "approval id")

    # -- mapping -------------------------------------------------------------------------------

    def _person(self, step: WireStep) -> Person | None:
        if step.type.upper() != "USER" or not step.userId:
            return None
        return Person(id=step.userId, name=step.displayName or "", email=self._emails.get(step.userId))

    def _item(self, issue: JiraIssue, approval: WireApproval) -> ApprovalItem:
        status = path_status(approval)
        steps = approval.steps
        active = set(active_steps(approval))
        groups = self._groups_of(steps, active)
        requester, created_at, activities = self._history(steps)
        recipients, unnamed, hidden = self._reach(steps, active)
        due_since = None
        if active:
            earlier = [d for s in steps[: min(active)] if (d := _when(s.decisionDate)) is not None]
            due_since = max(earlier, default=None)
        resolved = sum(1 for g in groups if g.state is GroupState.RESOLVED)
        summary = issue.summary or approval.summary
        notices: tuple[str, ...] = (NO_DECISION_API,) if status is Status.PENDING else ()
        if status is Status.PENDING and hidden:
            notices += (HIDDEN_EMAILS,)
        if approval.status.upper() not in _PATH_STATUS:
            notices = (f"Approval Path reports this path as {approval.status or 'unknown'}.",)
        decided_by = None
        if status in (Status.APPROVED, Status.REJECTED):
            wanted = Action.APPROVE if status is Status.APPROVED else Action.REJECT
            deciders = [a.person for a in activities if a.action is wanted]
            decided_by = deciders[-1] if deciders else None
        return ApprovalItem(
            connector=self.name,
            external_id=f"{issue.key}:{approval.id}",
            kind="Approval path",
            title=f"{approval.name or 'Approval path'} on {issue.key}",
            status=status,
            summary=summary,
            url=self._browse + issue.key,
            requester=requester,
            created_at=created_at,
            groups=tuple(groups),
            fields=(
                Field("Issue", f"{issue.key} {summary}".strip()),
                Field("Path", approval.name or "Approval path"),
                Field("Progress", f"{resolved} of {len(groups)} steps done"),
            ),
            actions=(CANCEL_SPEC,) if status is Status.PENDING else (),
            activities=tuple(activities),
            notices=notices,
            decided_by=decided_by,
            decided_at=_when(approval.modificationDate) if status.final else None,
            recipients=tuple(recipients) if status is Status.PENDING else (),
            channel_card=status is Status.PENDING and (unnamed or hidden),
            due_since=due_since,
            ref={
                "issue": issue.key,
                "issue_id": approval.refId or issue.id,
                "approval_id": approval.id,
                "definition_id": approval.definitionId or "",
            },
        )

    def _groups_of(self, steps: Sequence[WireStep], active: set[int]) -> list[ApproverGroup]:
        """One group per deciding step, numbered by stage (steps of a stage decide together)."""
        groups: list[ApproverGroup] = []
        stage_number = 0
        for stage in _stages(steps):
            deciding = [i for i in stage if _is_deciding(steps[i])]
            if deciding:
                stage_number += 1
            for index in deciding:
                groups.append(self._group(stage_number, steps[index], index in active))
        return groups

    def _history(self, steps: Sequence[WireStep]) -> tuple[Person | None, datetime | None, list[Activity]]:
        """Who started the path and when, and every decision so far, in order."""
        activities: list[Activity] = []
        requester: Person | None = None
        created_at: datetime | None = None
        for step in steps:
            person = self._person(step)
            action = (step.action or "").upper()
            if action == "STARTED":
                requester = requester or person
                created_at = created_at or _when(step.decisionDate)
                if person:
                    activities.append(Activity(person, Action.REQUEST, _when(step.decisionDate)))
            elif person and _is_deciding(step) and step.decision:
                verdict = Action.REJECT if step.decision.upper() == "REJECTED" else Action.APPROVE
                activities.append(Activity(person, verdict, _when(step.decisionDate)))
        return requester, created_at, activities

    def _reach(self, steps: Sequence[WireStep], active: set[int]) -> tuple[list[Person], bool, bool]:
        """Who may decide now, by id; whether some may decide whom no DM can reach (`unnamed`:
        the channel keeps the card), and whether some have no email we can read (`hidden`)."""
        named: dict[str, Person] = {}
        unnamed = False
        hidden = False
        for i in sorted(active):
            step = steps[i]
            if (person := self._person(step)) is not None:
                named.setdefault(person.id, person)
                hidden = hidden or not person.email
            elif (key := _group_key(step)) is not None:
                members = self._groups.known(key)
                if members is None or members.unreadable or not members.people:
                    unnamed = True
                    continue
                for member in members.people:
                    named.setdefault(member.id, member)
                hidden = hidden or members.hidden_emails > 0
        return sorted(named.values(), key=lambda p: p.id), unnamed, hidden

    def _group(self, number: int, step: WireStep, active: bool) -> ApproverGroup:
        kind = step.type.upper()
        parts = [f"Step {number}: {_step_label(step)}"]
        if step.parallelGroupNumber is not None:
            parts.append(f"parallel group {step.parallelGroupNumber}")
        if (step.action or "").upper() == "CONSENT":
            parts.append("consent")
        if kind == "GROUP" and (step.requiredRejectVotes or 1) > 1:
            parts.append(f"{step.requiredRejectVotes} votes to reject")
        decision = (step.decision or "").upper()
        person = self._person(step)
        key = _group_key(step)
        members = self._groups.known(key) if key is not None else None
        if decision and person is None:
            parts.append("rejected" if decision == "REJECTED" else "approved")
        state = GroupState.DUE if active else GroupState.WAITING
        if _is_decided(step):
            state = GroupState.RESOLVED
        return ApproverGroup(
            name=" · ".join(parts),
            state=state,
            required=(step.requiredVotes or 1) if kind == "GROUP" else 1,
            approvers=(person,) if person else (members.people if members else ()),
            approved_by=(person,) if person and decision == "ACCEPTED" else (),
            rejected_by=(person,) if person and decision == "REJECTED" else (),
        )

    # -- identity ------------------------------------------------------------------------------

    async def identify(self, email: str) -> VendorIdentity | None:
        """The Atlassian account whose email Jira shows as exactly this one.

        Jira's user search matches the start of an email, so only an exact, visible match
        counts: a person whose email Jira hides from the connector's account is not linked
        rather than guessed."""
        email = email.strip()
        if "@" not in email:
            return None
        users = await self._jira.users_matching(email)
        exact = [
            user
            for user in users
            if user.accountType == "atlassian"
            and user.active
            and (user.emailAddress or "").lower() == email.lower()
        ]
        if len(exact) > 1:
            raise Conflict(f"several Jira accounts have the email {email}")
        if not exact:
            return None
        user = exact[0]
        return VendorIdentity(user_id=user.accountId, display_name=user.displayName, email=user.emailAddress)

    async def _performer(self, actor: Actor) -> str:
        """The performer `userId` for a write: the actor's own account, confirmed again by email.

        Approval Path trusts the key, not the person: whatever id is sent is who acted. So the
        id must be the clicker's own, never empty (an empty id may fall back to the key's
        default user), and the clicker's email must still map to it."""
        if not actor.vendor_user_id or not actor.email:
            raise NotAllowed(
                f"no Atlassian account is linked to Slack user {actor.slack_user_id}",
                reason="not_linked",
                detail="Your Slack email does not match an Atlassian account on this Jira site.",
            )
        identity = await self.identify(actor.email)
        if identity is None or identity.user_id != actor.vendor_user_id:
            raise NotAllowed(
                f"Slack user {actor.slack_user_id} is linked to Atlassian account {actor.vendor_user_id}, "
                "but their email no longer maps to it",
                reason="wrong_user",
                detail="Your Slack email no longer matches the Atlassian account you were linked to.",
            )
        return actor.vendor_user_id

    # -- acting --------------------------------------------------------------------------------

    def permits(self, item: ApprovalItem, action: Action, actor: Actor) -> str | None:
        """Cancelling deletes the path for everyone, and Approval Path checks only the app key: so
        only the path's requester or one of the people named on its steps may do it."""
        if action is not Action.CANCEL:
            return None
        allowed = {p.id for g in item.groups for p in g.approvers}
        if item.requester is not None:
            allowed.add(item.requester.id)
        if actor.vendor_user_id and actor.vendor_user_id in allowed:
            return None
        return CANCEL_WHO

    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        if action is not Action.CANCEL:
            raise Unsupported(f"Approval Path cannot {action.value} from outside Jira: decide on the issue")
        key, approval_id = self._where(item)
        performer = await self._performer(actor)
        # Deleting also works on finished paths: never erase one that ended since the card.
        current = next((a for a in await self._ap.approvals(key) if a.id == approval_id), None)
        if current is None:
            raise AlreadyDecided("the path was already deleted", status=Status.CANCELLED)
        if path_status(current).final:
            raise AlreadyDecided("the path has ended", status=path_status(current))
        await self._ap.delete(
            key,
            approval_id,
            user_id=performer,
            create_comment=_checked((inputs or {}).get("comment_on_issue")),
        )
        self._readings.pop(key, None)
        by = Person(id=performer, name=actor.display_name, email=actor.email)
        return item.with_status(
            Status.CANCELLED,
            recipients=(),
            channel_card=False,
            decided_by=by,
            notices=(f"Approval path deleted by {by.label}.",),
        )

    async def requestable(self, actor: Actor, target: str | None = None) -> list[Requestable]:
        """The path definitions of the issue's project, plus the global ones."""
        key = _issue_key(target)
        await self._performer(actor)
        issue = await self._issue(key)
        definitions = list(await self._ap.definitions(issue.project_key))
        # Global definitions are optional (the key may not list them); the project's apply.
        with suppress(NotAllowed, NotFound):
            definitions += await self._ap.definitions()
        unique = {d.id: d for d in reversed(definitions)}
        default_summary = f"{issue.key} {issue.summary}".strip()
        return [
            Requestable(
                id=f"{issue.key}:{d.id}",
                title=d.name or f"Definition {d.id}",
                description=_describe_definition(d),
                inputs=(
                    InputDef(
                        name="summary",
                        label="Summary",
                        default=default_summary,
                        description="Shown on the approval path",
                    ),
                ),
            )
            for d in sorted(unique.values(), key=lambda d: (d.name.lower(), d.id))
        ]

    async def request(
        self, actor: Actor, requestable_id: str, inputs: Mapping[str, str] | None = None
    ) -> ApprovalItem | None:
        key, definition_id = _split_id(requestable_id, "definition")
        key = _issue_key(key)
        performer = await self._performer(actor)
        issue = await self._issue(key)
        summary = ((inputs or {}).get("summary") or "").strip() or f"{key} {issue.summary}".strip()
        answered = await self._ap.create(key, definition_id=definition_id, summary=summary, user_id=performer)
        self._readings.pop(key, None)
        started = _newest(answered, definition_id)
        if started is None:
            try:
                started = _newest(await self._ap.approvals(key), definition_id)
            except TransientError as exc:
                log.info("%s: started a path on %s but could not re-read it: %s", self.name, key, exc)
                return None
        if started is None:
            return None
        await self._learn_emails((started,))
        await self._learn_groups((started,))
        item = self._item(issue, started)
        starter = next((s.userId for s in started.steps if (s.action or "").upper() == "STARTED"), None)
        if starter and starter != performer:
            # The key's performer origin is a fixed user (or an issue field): the vendor
            # recorded someone else as the starter.
            log.warning("%s: Approval Path recorded %s as the starter, not the requester", self.name, starter)
            who = item.requester.label if item.requester else starter
            item = replace(
                item,
                notices=(
                    *item.notices,
                    f"Approval Path recorded {who} as the starter: its API key does not take the "
                    "performer from the bot.",
                ),
            )
        return item

    async def check(self) -> str:
        me = await self._jira.myself()
        sample = await self._jira.search(self._jql, fields=("updated",), page_size=1, limit=1)
        if not sample:
            return f"Jira as {me.displayName or me.accountId}; the jql matches no issue yet"
        await self._ap.approvals(sample[0].key)
        text = f"Jira as {me.displayName or me.accountId}; Approval Path key reads approvals"
        # The group steps waiting now: can their members be listed?
        await self.fetch_pending()
        hidden = sorted(set(self._unreadable.values()))
        if hidden:
            text += (
                f"; cannot list the members of Jira group(s) {', '.join(hidden)}: the Jira account needs "
                f"the “{BROWSE_USERS}” permission; until then those steps are carded in the channel only"
            )
        return text


def _group_key(step: WireStep) -> str | None:
    """The Jira group a GROUP step names (by id; by name on answers that carry no id)."""
    if step.type.upper() != "GROUP":
        return None
    if step.groupId:
        return f"id:{step.groupId}"
    return f"name:{step.displayName}" if step.displayName else None


def _newest(approvals: Iterable[WireApproval], definition_id: str) -> WireApproval | None:
    """The path just started: the highest id of that definition still in progress."""
    mine = [a for a in approvals if a.definitionId == definition_id and path_status(a) is Status.PENDING]

    def order(approval: WireApproval) -> tuple[int, str]:
        return (int(approval.id), "") if approval.id.isdigit() else (0, approval.id)

    return max(mine, key=order, default=None)
