"""FlexDeploy: approving and rejecting as the person who clicked, linking, and every refusal."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import pytest

from connectors.base import Action, ApprovalItem, Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    NotAllowed,
    Unsupported,
    VendorUnavailable,
)
from connectors.flexdeploy.connector import FlexDeployConnector
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY
from tests.contract.kits.flexdeploy import GROUP, FlexDeployKit

BY_ID = re.compile(r"^PUT /flexdeploy/rest/v1/tasks/approval/(approve|reject)/\d+(\?notes=[^&]*)?$")


async def pending(kit: FlexDeployKit, connector: FlexDeployConnector, **task: str) -> ApprovalItem:
    task_id = kit.sandbox.add_project_task(
        project=task.get("project", "Payments API"), version=task.get("version", "4.2.1"), group=GROUP
    )
    return next(i for i in await connector.fetch_pending() if i.external_id == str(task_id))


def puts(kit: FlexDeployKit) -> list[str]:
    return [line for line in kit.sandbox.served if line.startswith("PUT ")]


async def test_approve_runs_as_the_clicker_with_their_password(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    after = await connector.act(item, Action.APPROVE, kit.actor(ALICE))
    assert after.status is Status.APPROVED and after.actions == ()
    assert kit.sandbox.decisions == [(item.external_id, "approve", "alice")]
    assert puts(kit) == [f"PUT /flexdeploy/rest/v1/tasks/approval/approve/{item.external_id}"]


async def test_an_api_token_works_in_place_of_the_password(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    await connector.act(item, Action.APPROVE, kit.actor(BOB, token=True))
    assert kit.sandbox.decisions == [(item.external_id, "approve", "bob")]


async def test_reject_sends_the_notes_and_the_card_keeps_them(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    after = await connector.act(item, Action.REJECT, kit.actor(ALICE), comment="  Not during the freeze ")
    assert after.status is Status.REJECTED
    assert after.decision_note == "Not during the freeze"
    assert kit.sandbox.tasks[int(item.external_id)].notes == "Not during the freeze"
    assert (await connector.refresh(item)).decision_note == "Not during the freeze"
    assert kit.sandbox.decisions == [(item.external_id, "reject", "alice")]


async def test_notes_are_kept_when_flexdeploy_does_not_echo_them(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    # The vendor's reject-by-query example answers "notes": null although notes were sent.
    item = await pending(kit, connector)
    kit.sandbox.echo_notes = False
    after = await connector.act(item, Action.REJECT, kit.actor(ALICE), comment="Wrong snapshot")
    assert after.decision_note == "Wrong snapshot"


async def test_approving_without_a_comment_sends_no_notes(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    await connector.act(item, Action.APPROVE, kit.actor(ALICE), comment="")
    assert puts(kit) == [f"PUT /flexdeploy/rest/v1/tasks/approval/approve/{item.external_id}"]


async def test_someone_outside_the_approval_group_is_refused_by_flexdeploy(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.APPROVE, kit.actor(CAROL))
    assert caught.value.reason == "not_approver"
    assert caught.value.detail and "approval group" in caught.value.detail
    assert kit.sandbox.decisions == []
    assert (await connector.refresh(item)).status is Status.PENDING


async def test_decided_out_of_band_shows_on_refresh_and_is_refused_without_a_call(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    kit.sandbox.decide(item.external_id, "REJECTED", notes="Rejected in the FlexDeploy UI")
    assert item.external_id not in {i.external_id for i in await connector.fetch_pending()}
    fresh = await connector.refresh(item)
    assert (fresh.status, fresh.decision_note) == (Status.REJECTED, "Rejected in the FlexDeploy UI")

    with pytest.raises(AlreadyDecided) as caught:
        await connector.act(item, Action.APPROVE, kit.actor(ALICE))
    assert caught.value.status is Status.REJECTED
    assert puts(kit) == [], "a task decided elsewhere is not decided again"


async def test_decided_while_the_click_was_on_its_way_is_read_from_flexdeploys_answer(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    # The re-read before the decision answers late; meanwhile Bob approves in FlexDeploy.
    kit.sandbox.slow_seconds = 0.3
    kit.sandbox.fail_next("timeout", method="GET")
    click = asyncio.create_task(connector.act(item, Action.REJECT, kit.actor(ALICE)))
    await asyncio.sleep(0.1)
    kit.sandbox.decide(item.external_id, "APPROVED")
    with pytest.raises(AlreadyDecided) as caught:
        await click
    assert caught.value.status is Status.APPROVED
    assert len(puts(kit)) == 1 and kit.sandbox.decisions == []


async def test_a_task_that_disappeared_cannot_be_decided(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    kit.sandbox.remove(item.external_id)
    with pytest.raises(AlreadyDecided) as caught:
        await connector.act(item, Action.APPROVE, kit.actor(ALICE))
    assert caught.value.status is Status.CANCELLED


async def test_a_jira_tied_task_is_not_decided_from_slack(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_project_task(
        project="Inv", version="7", group=GROUP, external=("JIRA", "OPS-1234")
    )
    item = next(i for i in await connector.fetch_pending() if i.external_id == str(task))
    with pytest.raises(Unsupported, match="Jira"):
        await connector.act(item, Action.APPROVE, kit.actor(ALICE))
    assert puts(kit) == []


async def test_only_approve_and_reject_exist(kit: FlexDeployKit, connector: FlexDeployConnector) -> None:
    item = await pending(kit, connector)
    with pytest.raises(Unsupported):
        await connector.act(item, Action.ABSTAIN, kit.actor(ALICE))
    assert kit.sandbox.served[-1] == "GET /flexdeploy/rest/v1/tasks/approval"


async def test_credentials_that_stopped_working_are_reported_as_such(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    alice = kit.actor(ALICE, token=True)
    kit.sandbox.user(ALICE).tokens.clear()  # Alice revoked her API token in FlexDeploy
    with pytest.raises(AuthExpired) as caught:
        await connector.act(item, Action.APPROVE, alice)
    assert alice.credentials["secret"] not in str(caught.value)
    unlinked = replace(kit.actor(BOB), credentials={})
    with pytest.raises(AuthExpired):
        await connector.act(item, Action.APPROVE, unlinked)
    assert kit.sandbox.decisions == []


async def test_a_5xx_on_a_decision_is_transient_and_never_sent_twice(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await pending(kit, connector)
    kit.sandbox.fail_next("500", method="PUT")
    with pytest.raises(VendorUnavailable):
        await connector.act(item, Action.APPROVE, kit.actor(ALICE))
    assert len(puts(kit)) == 1
    assert (await connector.refresh(item)).status is Status.PENDING
    # A later click works.
    assert (await connector.act(item, Action.APPROVE, kit.actor(ALICE))).status is Status.APPROVED


async def test_the_connector_only_ever_acts_by_task_id_and_never_as_the_service_account(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    first = await pending(kit, connector, project="Same", version="1")
    second = await pending(kit, connector, project="Same", version="2")
    third = await pending(kit, connector, project="Same", version="3")
    await connector.act(first, Action.APPROVE, kit.actor(ALICE), comment="ok & go")
    await connector.act(second, Action.REJECT, kit.actor(BOB), comment="no")
    await connector.act(third, Action.REJECT, kit.actor(ALICE, token=True))
    await connector.verify(kit.sandbox.credentials(BOB))
    await connector.check()

    assert len(puts(kit)) == 3
    assert all(BY_ID.match(line) for line in puts(kit)), puts(kit)
    assert {who for _, _, who in kit.sandbox.decisions} == {"alice", "bob"}


async def test_verify_links_a_person_with_their_name_and_email(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    for token in (False, True):
        identity = await connector.verify(kit.sandbox.credentials(ALICE, token=token))
        assert (identity.user_id, identity.display_name, identity.email) == (
            "alice",
            "Alice Approver",
            "alice@example.com",
        )


async def test_verify_refuses_wrong_or_unknown_credentials(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    with pytest.raises(AuthExpired) as caught:
        await connector.verify({"username": "alice", "secret": "guess-1234"})
    assert "guess-1234" not in str(caught.value)
    with pytest.raises(AuthExpired):
        await connector.verify({"username": MALLORY.handle, "secret": "anything"})
    with pytest.raises(AuthExpired):
        await connector.verify({"username": "alice"})


async def test_verify_links_even_when_flexdeploy_hides_user_profiles(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    kit.sandbox.user_api_for_admins_only = True
    identity = await connector.verify(kit.sandbox.credentials(DAVE))
    assert (identity.user_id, identity.display_name, identity.email) == ("dave", "", None)


def test_the_linking_modal_asks_for_a_username_and_a_password_or_token() -> None:
    fields = [(f.key, f.label, f.secret) for f in FlexDeployConnector.credential_fields]
    assert fields == [("username", "Username", False), ("secret", "Password or API token", True)]
    caps = FlexDeployConnector.capabilities
    assert (caps.approve, caps.reject, caps.comments, caps.link_mode) == (True, True, True, "credentials")
