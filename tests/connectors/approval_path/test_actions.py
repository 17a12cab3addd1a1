"""Approval Path for Jira: starting and cancelling paths from Slack, always as the clicking person."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from connectors.approval_path import ApprovalPathSettings
from connectors.approval_path.connector import ApprovalPathConnector
from connectors.approval_path.sandbox import ACCOUNTS, ApprovalPathSandbox
from connectors.base import Action, ApprovalItem, Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    InvalidInput,
    NotAllowed,
    NotFound,
    TransientError,
    Unsupported,
)
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY
from tests.contract.kits.approval_path import actor
from tests.running import started

Connect = Callable[..., ApprovalPathConnector]


@pytest.fixture
async def sandbox() -> AsyncIterator[ApprovalPathSandbox]:
    async with started(ApprovalPathSandbox(slow_seconds=0.4)) as instance:
        yield instance


@pytest.fixture
async def connect(sandbox: ApprovalPathSandbox) -> AsyncIterator[Connect]:
    made: list[ApprovalPathConnector] = []

    def make(*, timeout: float = 2.0, **settings: Any) -> ApprovalPathConnector:
        config = ApprovalPathSettings.model_validate(sandbox.connector_settings(**settings))
        made.append(ApprovalPathConnector("paths", config, timeout=timeout))
        return made[-1]

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
def running(sandbox: ApprovalPathSandbox) -> tuple[str, str]:
    """OPS-1 with a running "Change approval" (Alice, then Carol), started by Bob."""
    definition = sandbox.add_definition(
        "Change approval", [sandbox.user_step(ALICE), sandbox.user_step(CAROL)], project="OPS"
    )
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    return issue, sandbox.start_path(issue, definition, by=BOB)


async def pending(connector: ApprovalPathConnector, issue: str, path: str) -> ApprovalItem:
    return next(i for i in await connector.fetch_pending() if i.external_id == f"{issue}:{path}")


async def test_cancel_deletes_the_path_as_the_clicker_and_may_comment(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    spec = item.action(Action.CANCEL)
    assert spec is not None and spec.confirm and spec.label == "Cancel path"
    assert [(i.name, i.kind) for i in spec.inputs] == [("comment_on_issue", "checkbox")]

    after = await connector.act(item, Action.CANCEL, actor(ALICE), inputs={"comment_on_issue": "yes"})
    assert after.status is Status.CANCELLED
    assert after.decided_by is not None and after.decided_by.id == ACCOUNTS[ALICE.email]
    assert sandbox.decisions == [(f"{issue}:{path}", "cancel", ACCOUNTS[ALICE.email])]
    assert sandbox.jira.issues[issue].comments == [
        (ACCOUNTS[ALICE.email], "Approval path deleted: Change approval")
    ]
    assert not await connector.fetch_pending(), "the deleted path is not listed from a stale reading"
    assert (await connector.refresh(item)).status is Status.CANCELLED


async def test_cancel_without_the_box_ticked_leaves_no_comment(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    await connector.act(item, Action.CANCEL, actor(ALICE), inputs={"comment_on_issue": ""})
    assert sandbox.jira.issues[issue].comments == []
    assert sandbox.approval(issue, path) is None


async def test_a_path_that_ended_since_the_card_is_not_deleted(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    sandbox.decide(issue, path, Status.APPROVED)
    with pytest.raises(AlreadyDecided) as caught:
        await connector.act(item, Action.CANCEL, actor(ALICE))
    assert caught.value.status is Status.APPROVED
    assert sandbox.approval(issue, path) is not None, "the finished path keeps its history"
    assert sandbox.decisions == []


async def test_a_cancel_that_times_out_is_transient_and_the_reread_tells(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect(timeout=0.2)
    item = await pending(connector, issue, path)
    sandbox.fail_next("timeout", method="DELETE")
    with pytest.raises(TransientError):
        await connector.act(item, Action.CANCEL, actor(ALICE))
    assert (await connector.refresh(item)).status is Status.CANCELLED
    assert len(sandbox.decisions) == 1


async def test_a_dropped_cancel_changes_nothing(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    sandbox.fail_next("drop", method="DELETE")
    with pytest.raises(TransientError):
        await connector.act(item, Action.CANCEL, actor(ALICE))
    assert (await connector.refresh(item)).status is Status.PENDING
    assert sandbox.decisions == []


async def test_one_slack_user_cannot_act_as_another(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    # Bob's Slack account carrying Alice's Atlassian id: his email does not map to it.
    impostor = replace(actor(BOB), vendor_user_id=ACCOUNTS[ALICE.email])
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.CANCEL, impostor)
    assert caught.value.reason == "wrong_user"
    assert (
        caught.value.detail == "Your Slack email no longer matches the Atlassian account you were linked to."
    )
    unlinked = replace(actor(ALICE), vendor_user_id="")
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.CANCEL, unlinked)
    assert caught.value.reason == "not_linked"
    mallory = replace(actor(ALICE), slack_user_id=MALLORY.slack_id, email=MALLORY.email)
    with pytest.raises(NotAllowed):
        await connector.request(mallory, f"{issue}:{item.ref['definition_id']}")
    assert sandbox.approval(issue, path) is not None
    assert sandbox.decisions == []
    assert not [r for r in sandbox.requests if r[0] in ("POST", "DELETE")], "nothing reached the vendor"


async def test_the_vendor_refuses_a_performer_outside_the_keys_group(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.CANCEL, actor(DAVE))
    assert caught.value.reason == "disallowed_user"
    assert caught.value.detail and "group" in caught.value.detail
    assert sandbox.approval(issue, path) is not None
    assert sandbox.decisions == []


async def test_a_key_without_the_delete_privilege_is_refused_as_the_keys_limit(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    sandbox.privileges.discard("delete")
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.CANCEL, actor(ALICE))
    assert caught.value.reason == "key_permission"
    assert caught.value.detail == "The API key does not allow this operation"
    assert sandbox.approval(issue, path) is not None


async def test_a_refused_app_key_is_reported_and_nothing_is_deleted(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str]
) -> None:
    issue, path = running
    item = await pending(connect(), issue, path)
    stale = connect(api_key="revoked-key")
    with pytest.raises(AuthExpired) as caught:
        await stale.act(item, Action.CANCEL, actor(ALICE))
    assert "revoked-key" not in f"{caught.value} {caught.value.detail}"
    assert sandbox.approval(issue, path) is not None


@pytest.mark.parametrize("action", [Action.APPROVE, Action.REJECT, Action.ABSTAIN])
async def test_decisions_are_not_offered_and_refused_without_a_call(
    sandbox: ApprovalPathSandbox, connect: Connect, running: tuple[str, str], action: Action
) -> None:
    issue, path = running
    connector = connect()
    item = await pending(connector, issue, path)
    assert item.action(action) is None
    sent = len(sandbox.requests)
    with pytest.raises(Unsupported):
        await connector.act(item, action, actor(ALICE))
    assert len(sandbox.requests) == sent


async def test_starting_a_path_lists_the_projects_definitions_and_starts_as_the_clicker(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    change = sandbox.add_definition(
        "Change approval", [sandbox.user_step(ALICE), sandbox.user_step(CAROL)], project="OPS"
    )
    sandbox.add_definition("Travel approval", [sandbox.user_step(BOB)], project="HR")
    sandbox.add_definition("Manager sign-off", [sandbox.user_step(BOB)])
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    connector = connect()

    offered = await connector.requestable(actor(BOB), issue.lower())
    assert [r.title for r in offered] == ["Change approval", "Manager sign-off"]
    chosen = offered[0]
    assert chosen.id == f"{issue}:{change}"
    assert chosen.description.startswith("Alice Approver → Carol Checker")
    assert [(i.name, i.default) for i in chosen.inputs] == [("summary", f"{issue} Deploy payments 2.4")]

    item = await connector.request(actor(BOB), chosen.id, {"summary": "Payments 2.4 go-live"})
    assert item is not None and item.status is Status.PENDING
    assert item.requester is not None and item.requester.id == ACCOUNTS[BOB.email]
    assert [p.id for p in item.recipients] == [ACCOUNTS[ALICE.email]]
    assert sandbox.decisions == [(item.external_id, "request", ACCOUNTS[BOB.email])]
    started = sandbox.approval(issue, item.ref["approval_id"])
    assert started is not None and started.summary == "Payments 2.4 go-live"
    assert item.external_id in {i.external_id for i in await connector.fetch_pending()}

    after = await connector.act(item, Action.CANCEL, actor(BOB))
    assert after.status is Status.CANCELLED
    assert sandbox.decisions[-1] == (item.external_id, "cancel", ACCOUNTS[BOB.email])


async def test_a_key_with_a_fixed_performer_is_pointed_out_when_starting(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    change = sandbox.add_definition("Change approval", [sandbox.user_step(ALICE)], project="OPS")
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    sandbox.performer_origin = "fixed"
    sandbox.fixed_performer = ACCOUNTS[CAROL.email]
    connector = connect()
    item = await connector.request(actor(BOB), f"{issue}:{change}")
    assert item is not None
    assert any("Carol Checker as the starter" in n for n in item.notices)


async def test_starting_needs_an_issue_the_site_knows_and_a_definition_of_its_project(
    sandbox: ApprovalPathSandbox, connect: Connect
) -> None:
    travel = sandbox.add_definition("Travel approval", [sandbox.user_step(BOB)], project="HR")
    sandbox.add_issue("HR", "Offsite")
    issue = sandbox.add_issue("OPS", "Deploy payments 2.4")
    connector = connect()
    with pytest.raises(InvalidInput) as bad_key:
        await connector.requestable(actor(ALICE), "deploy payments")
    assert bad_key.value.field == "target"
    with pytest.raises(InvalidInput):
        await connector.requestable(actor(ALICE), None)
    with pytest.raises(NotFound) as missing:
        await connector.requestable(actor(ALICE), "OPS-99")
    assert str(missing.value) == "Jira has no issue OPS-99 that the bot's Jira account can see"
    with pytest.raises(InvalidInput) as wrong_project:
        await connector.request(actor(ALICE), f"{issue}:{travel}")
    assert wrong_project.value.field == "definitionId"
    assert sandbox.decisions == []
