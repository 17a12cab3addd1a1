"""Approval Path for Jira: finding paths through Jira, mapping them to cards, and polling politely."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from connectors.approval_path import ApprovalPathSettings
from connectors.approval_path.connector import ApprovalPathConnector
from connectors.approval_path.sandbox import ACCOUNTS, JIRA_EMAIL, ApprovalPathSandbox
from connectors.base import Action, ApprovalItem, GroupState, Status
from connectors.errors import AuthExpired, InvalidInput
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY
from tests.connectors.approval_path import Clock

Connect = Callable[..., ApprovalPathConnector]


@pytest.fixture
async def connect(sandbox: ApprovalPathSandbox) -> AsyncIterator[Connect]:
    made: list[ApprovalPathConnector] = []

    def make(*, clock: Clock | None = None, sleep: Any = None, **settings: Any) -> ApprovalPathConnector:
        options: dict[str, Any] = {"timeout": 2.0, "clock": clock}
        if sleep is not None:
            options["sleep"] = sleep
        config = ApprovalPathSettings.model_validate(sandbox.connector_settings(**settings))
        made.append(ApprovalPathConnector("paths", config, **options))
        return made[-1]

    yield make
    for connector in made:
        await connector.aclose()


def approval_reads(sandbox: ApprovalPathSandbox, issue: str) -> int:
    return sandbox.requests.count(("GET", f"/webapi/approvals/{issue}"))


def only(items: list[ApprovalItem], external_id: str) -> ApprovalItem:
    found = [item for item in items if item.external_id == external_id]
    assert len(found) == 1, [item.external_id for item in items]
    return found[0]


async def test_when_the_second_step_becomes_active_the_card_moves_to_its_approver(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition(
        "Change approval", [sandbox.user_step(ALICE), sandbox.user_step(BOB)], project="OPS"
    )
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    path = sandbox.start_path(issue, definition, by=DAVE)
    connector = connect()

    first = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert first.title == f"Change approval on {issue}"
    assert first.summary == "Deploy payments 2.4"
    assert first.url == f"{sandbox.jira_url}/browse/{issue}"
    assert [(p.id, p.email) for p in first.recipients] == [(ACCOUNTS[ALICE.email], ALICE.email)]
    assert not first.channel_card
    assert [g.state for g in first.groups] == [GroupState.DUE, GroupState.WAITING]
    assert first.groups[0].name == "Step 1: Alice Approver"
    assert first.requester is not None and first.requester.id == ACCOUNTS[DAVE.email]
    assert first.due_since == first.created_at
    assert [spec.label for spec in first.actions] == ["Cancel path"]
    assert any("Approve or reject on the Jira issue" in n for n in first.notices)

    sandbox.vote(issue, path, ALICE)
    second = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert [p.id for p in second.recipients] == [ACCOUNTS[BOB.email]]
    assert [g.state for g in second.groups] == [GroupState.RESOLVED, GroupState.DUE]
    assert [p.id for p in second.groups[0].approved_by] == [ACCOUNTS[ALICE.email]]
    assert second.due_since is not None and first.due_since is not None
    assert second.due_since > first.due_since, "reminders count from when Bob's turn began"
    assert [(a.person.id, a.action) for a in second.activities] == [
        (ACCOUNTS[DAVE.email], Action.REQUEST),
        (ACCOUNTS[ALICE.email], Action.APPROVE),
    ]
    assert ("Progress", "1 of 2 steps done") in [(f.label, f.value) for f in second.fields]


async def test_a_group_step_reaches_its_members_and_counts_votes(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    finance = sandbox.add_group("finance", [CAROL, DAVE])
    definition = sandbox.add_definition(
        "Travel approval",
        [sandbox.user_step(ALICE, parallel=1), sandbox.group_step(finance, votes=2, parallel=1)],
        project="HR",
    )
    issue = sandbox.add_issue("HR", "Offsite in Lisbon")
    path = sandbox.start_path(issue, definition, by=BOB)
    external_id = f"{issue}:{path}"
    connector = connect()

    item = only(await connector.fetch_pending(), external_id)
    assert not item.channel_card, "the group's members are named, with their emails"
    assert {p.id for p in item.recipients} == {ACCOUNTS[p.email] for p in (ALICE, CAROL, DAVE)}
    group = item.groups[1]
    assert group.name == "Step 1: Group finance · parallel group 1"
    assert (group.state, group.required) == (GroupState.DUE, 2)
    assert {(p.name, p.email) for p in group.approvers} == {
        (CAROL.name, CAROL.email),
        (DAVE.name, DAVE.email),
    }
    assert item.groups[0].name == "Step 1: Alice Approver · parallel group 1"

    sandbox.vote(issue, path, ALICE)
    sandbox.vote(issue, path, CAROL)
    item = only(await connector.fetch_pending(), external_id)
    assert {p.email for p in item.recipients} == {CAROL.email, DAVE.email}, "Alice's own step is done"
    assert not item.channel_card
    assert item.groups[1].state is GroupState.DUE, "one vote of two needed"

    sandbox.vote(issue, path, DAVE)
    assert external_id not in {i.external_id for i in await connector.fetch_pending()}
    final = await connector.refresh(item)
    assert final.status is Status.APPROVED
    assert final.groups[1].name.endswith("approved")
    assert (final.recipients, final.channel_card, final.actions) == ((), False, ())


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ("approve", Status.APPROVED),
        ("reject", Status.REJECTED),
        ("expire", Status.EXPIRED),
        ("delete", Status.CANCELLED),
    ],
)
async def test_the_end_of_a_path_is_read_on_refresh(
    sandbox: ApprovalPathSandbox, connect: Connect, ending: str, expected: Status
) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    issue = sandbox.add_issue("OPS", "Rotate credentials")
    path = sandbox.start_path(issue, definition, by=BOB)
    connector = connect()
    item = only(await connector.fetch_pending(), f"{issue}:{path}")

    if ending in ("approve", "reject"):
        sandbox.vote(issue, path, ALICE, accept=ending == "approve")
    else:
        sandbox.decide(issue, path, Status.EXPIRED if ending == "expire" else Status.CANCELLED)

    assert not await connector.fetch_pending()
    final = await connector.refresh(item)
    assert final.status is expected
    assert final.actions == ()
    assert final.recipients == ()
    if ending in ("approve", "reject"):
        assert final.decided_by is not None and final.decided_by.id == ACCOUNTS[ALICE.email]
        assert final.decided_at is not None
    if ending == "delete":
        assert "deleted" in " ".join(final.notices)


async def test_unchanged_issues_are_not_read_again(sandbox: ApprovalPathSandbox, connect: Connect) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    issue = sandbox.add_issue("OPS", "Rotate credentials")
    quiet = sandbox.add_issue("OPS", "An issue without a path")
    sandbox.start_path(issue, definition, by=BOB)
    connector = connect()

    first = await connector.fetch_pending()
    again = await connector.fetch_pending()
    assert [i.fingerprint() for i in again] == [i.fingerprint() for i in first]
    assert approval_reads(sandbox, issue) == 1
    assert approval_reads(sandbox, quiet) == 1


async def test_cards_link_to_the_ui_address_when_it_differs(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    issue = sandbox.add_issue("OPS", "Rotate credentials")
    sandbox.start_path(issue, definition, by=BOB)
    connector = connect(ui_url="https://jira.example.com/")
    [item] = await connector.fetch_pending()
    assert item.url == f"https://jira.example.com/browse/{issue}"


async def test_an_issue_updated_by_someone_else_in_jira_is_read_again(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition(
        "Change approval", [sandbox.user_step(ALICE), sandbox.user_step(CAROL)], project="OPS"
    )
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    path = sandbox.start_path(issue, definition, by=BOB)
    connector = connect()
    before = only(await connector.fetch_pending(), f"{issue}:{path}")

    # Alice approves in the issue panel: the path's modificationDate and the issue's `updated` move.
    sandbox.vote(issue, path, ALICE)
    after = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert approval_reads(sandbox, issue) == 2
    assert [p.id for p in after.recipients] == [ACCOUNTS[CAROL.email]]
    assert after.fingerprint() != before.fingerprint()

    # Someone only edits the issue: it is read again, and the card has nothing new to show.
    sandbox.jira.touch(issue)
    edited = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert approval_reads(sandbox, issue) == 3
    assert edited.fingerprint() == after.fingerprint()


async def test_a_vote_that_leaves_the_issue_untouched_is_seen_after_recheck_after(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition(
        "Change approval", [sandbox.user_step(ALICE), sandbox.user_step(CAROL)], project="OPS"
    )
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    path = sandbox.start_path(issue, definition, by=BOB)
    clock = Clock()
    connector = connect(clock=clock, recheck_after="15m")
    await connector.fetch_pending()

    sandbox.vote(issue, path, ALICE, touch_issue=False)
    clock.now += timedelta(minutes=5)
    soon = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert [p.id for p in soon.recipients] == [ACCOUNTS[ALICE.email]], "within recheck_after: not read"
    clock.now += timedelta(minutes=11)
    later = only(await connector.fetch_pending(), f"{issue}:{path}")
    assert [p.id for p in later.recipients] == [ACCOUNTS[CAROL.email]]
    assert approval_reads(sandbox, issue) == 2


async def test_a_poll_reads_at_most_its_budget_of_issues_newest_first(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    issues = [sandbox.add_issue("OPS", f"Change {n}") for n in range(5)]
    for issue in issues:
        sandbox.start_path(issue, definition, by=BOB)
    connector = connect(max_issues_per_poll=2)

    def keys(items: list[ApprovalItem]) -> set[str]:
        return {i.external_id.split(":")[0] for i in items}

    assert keys(await connector.fetch_pending()) == set(issues[3:])
    assert keys(await connector.fetch_pending()) == set(issues[1:])
    assert keys(await connector.fetch_pending()) == set(issues)
    reads = sum(1 for method, path in sandbox.requests if path.startswith("/webapi/approvals/"))
    assert reads == 5
    await connector.fetch_pending()
    assert sum(1 for _, path in sandbox.requests if path.startswith("/webapi/approvals/")) == 5


async def test_every_page_of_the_search_is_followed(sandbox: ApprovalPathSandbox, connect: Connect) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    for n in range(5):
        sandbox.start_path(sandbox.add_issue("OPS", f"Change {n}"), definition, by=BOB)
    sandbox.jira.page_cap = 2
    connector = connect()
    assert len(await connector.fetch_pending()) == 5
    assert sandbox.requests.count(("GET", "/jira/rest/api/3/search/jql")) == 3


async def test_atlassian_rate_limit_waits_as_long_as_retry_after_says(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    definition = sandbox.add_definition("Sign-off", [sandbox.user_step(ALICE)], project="OPS")
    sandbox.start_path(sandbox.add_issue("OPS", "Change"), definition, by=BOB)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    connector = connect(sleep=sleep)
    sandbox.rate_limit_next(1, retry_after="7")
    assert len(await connector.fetch_pending()) == 1
    assert len(waits) == 1 and 7 <= waits[0] < 8


async def test_jql_the_site_refuses_is_reported_as_bad_input(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    sandbox.add_issue("OPS", "Change")
    connector = connect(jql="assignee = nobody-at-all")
    with pytest.raises(InvalidInput) as caught:
        await connector.fetch_pending()
    assert caught.value.field == "jql"
    assert caught.value.detail and "Error in the JQL Query" in caught.value.detail


@pytest.mark.parametrize("wrong", ["jira_token", "api_key"])
async def test_refused_service_credentials_are_reported_without_the_secret(
    sandbox: ApprovalPathSandbox, connect: Connect, wrong: str
) -> None:
    sandbox.add_issue("OPS", "Change")
    connector = connect(**{wrong: "wrong-secret-value"})
    with pytest.raises(AuthExpired) as caught:
        await connector.fetch_pending()
    assert "wrong-secret-value" not in f"{caught.value} {caught.value.detail}"


async def test_people_are_identified_only_by_an_exact_visible_email(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    sandbox.jira.users[ACCOUNTS[CAROL.email]].email_hidden = True
    sandbox.jira.add_user("557058:a11ce0-lookalike", "Alice Lookalike", "alice@example.community")
    sandbox.jira.add_user("app:approval-path", "Approval Path", "alice@example.com", account_type="app")
    connector = connect()

    alice = await connector.identify("Alice@Example.com")
    assert alice is not None and alice.user_id == ACCOUNTS[ALICE.email]
    assert alice.display_name == ALICE.name
    assert await connector.identify(CAROL.email) is None, "a hidden email is not guessed"
    assert await connector.identify(MALLORY.email) is None
    assert await connector.identify("not an email") is None


async def test_check_names_the_jira_account_and_reaches_approval_path(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    sandbox.add_issue("OPS", "Change")
    connector = connect()
    line = await connector.check()
    assert "Approvals Bot" in line and "Approval Path key reads approvals" in line
    assert JIRA_EMAIL not in line
