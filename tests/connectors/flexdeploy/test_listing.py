"""FlexDeploy: what the cards show, from the service account's listing, over real HTTP."""

from __future__ import annotations

import pytest

from connectors.base import Action, ApprovalItem, Field, Status
from connectors.errors import AuthExpired, NotFound, VendorUnavailable
from connectors.flexdeploy.connector import FlexDeployConnector
from connectors.people import CAROL
from tests.contract.kits.flexdeploy import GROUP, FlexDeployKit


async def listed(connector: FlexDeployConnector, task_id: int) -> ApprovalItem:
    return next(i for i in await connector.fetch_pending() if i.external_id == str(task_id))


def shown(item: ApprovalItem) -> dict[str, str]:
    return {f.label: f.value for f in item.fields}


async def test_a_release_gate_shows_pipeline_environment_gate_release_and_snapshot(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_release_task(
        pipeline="Retail Web",
        environment="Production",
        gate="CAB approval",
        release="2026.11",
        snapshot="2026.11-RC3",
        group=GROUP,
        requestor_path="FlexDeploy / Releases / Retail Web 2026.11",
        flex_fields={"Risk": "Medium", "Change window": "Sat 02:00-04:00 UTC"},
    )
    item = await listed(connector, task)

    assert item.kind == "Release gate"
    assert item.title == "CAB approval: release 2026.11 → Production"
    assert "2026.11-RC3" in item.summary
    assert item.fields[:5] == (
        Field("Pipeline", "Retail Web"),
        Field("Environment", "Production"),
        Field("Gate", "CAB approval"),
        Field("Release", "2026.11"),
        Field("Snapshot", "2026.11-RC3"),
    )
    fields = shown(item)
    assert fields["Requestor path"] == "FlexDeploy / Releases / Retail Web 2026.11"
    assert fields["In FlexDeploy"] == f"Tasks → Approval Tasks, task {task}"
    assert fields["Risk"] == "Medium"
    assert fields["Change window"] == "Sat 02:00-04:00 UTC"
    # No per-task address is documented: the link opens FlexDeploy itself.
    assert item.url == kit.sandbox.base_url
    assert item.recipients == (), "v1 tasks do not name their approvers: the card goes to the channel"


async def test_approve_is_one_click_and_reject_asks_first(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    item = await listed(connector, kit.sandbox.add_project_task(project="Payments", version="2", group=GROUP))
    approve, reject = item.action(Action.APPROVE), item.action(Action.REJECT)
    assert approve is not None and not approve.needs_modal and approve.confirm is None
    assert reject is not None and reject.comment == "optional" and reject.confirm
    assert [s.action for s in item.actions] == [Action.APPROVE, Action.REJECT]


async def test_project_and_application_tasks_have_their_own_titles_and_fields(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    project = kit.sandbox.add_project_task(
        project="Payments API", version="4.2.1", group=GROUP, requestor_path="FlexDeploy / Payments"
    )
    application = kit.sandbox.add_application_task(
        application="Store Front", version="12.2.9", group=GROUP, requestor_path=""
    )
    items = {i.external_id: i for i in await connector.fetch_pending()}

    deploy = items[str(project)]
    assert (deploy.kind, deploy.title) == ("Project deployment", "Deploy Payments API 4.2.1")
    assert deploy.fields == (
        Field("Project", "Payments API"),
        Field("Version", "4.2.1"),
        Field("Requestor path", "FlexDeploy / Payments"),
        Field("In FlexDeploy", f"Tasks → Approval Tasks, task {project}"),
    )
    legacy = items[str(application)]
    assert (legacy.kind, legacy.title) == ("Application deployment", "Deploy Store Front 12.2.9")
    assert shown(legacy)["Application"] == "Store Front"
    assert shown(legacy)["Version"] == "12.2.9"
    assert shown(legacy)["Requestor path"] == "not given", "the requestor path is always shown"


async def test_only_pending_tasks_are_listed(kit: FlexDeployKit, connector: FlexDeployConnector) -> None:
    waiting = kit.sandbox.add_project_task(project="A", version="1", group=GROUP)
    for status in ("APPROVED", "REJECTED", "CANCELLED"):
        done = kit.sandbox.add_project_task(project=status, version="1", group=GROUP)
        kit.sandbox.decide(done, status)
    assert [i.external_id for i in await connector.fetch_pending()] == [str(waiting)]


async def test_a_task_tied_to_a_jira_ticket_has_no_buttons_and_names_the_ticket(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_project_task(
        project="Inventory Service", version="7.0.0", group=GROUP, external=("JIRA", "OPS-1234")
    )
    item = await listed(connector, task)
    assert item.actions == ()
    assert shown(item)["Decided in"] == "Jira OPS-1234"
    (notice,) = item.notices
    assert "Jira" in notice and "OPS-1234" in notice and "approve or reject the Jira ticket" in notice


async def test_servicenow_tasks_name_servicenow(kit: FlexDeployKit, connector: FlexDeployConnector) -> None:
    task = kit.sandbox.add_release_task(
        pipeline="Core",
        environment="Production",
        gate="Change",
        release="R1",
        snapshot="S1",
        group=GROUP,
        external=("SERVICENOW", "CHG0031337"),
    )
    item = await listed(connector, task)
    assert item.actions == ()
    assert "ServiceNow (CHG0031337)" in item.notices[0]


async def test_the_link_goes_to_ui_url_when_set(kit: FlexDeployKit) -> None:
    connector = kit.build(ui_url="https://deploy.example.com/flexdeploy/")
    try:
        item = await listed(connector, kit.sandbox.add_project_task(project="P", version="1", group=GROUP))
        assert item.url == "https://deploy.example.com/flexdeploy"
    finally:
        await connector.aclose()


async def test_a_5xx_while_listing_is_retried_and_a_lasting_one_reported(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
    kit.sandbox.fail_next("500", 2)
    assert str(task) in {i.external_id for i in await connector.fetch_pending()}
    assert kit.sandbox.served.count("GET /flexdeploy/rest/v1/tasks/approval") == 3

    kit.sandbox.fail_next("500", 10)
    with pytest.raises(VendorUnavailable):
        await connector.fetch_pending()


async def test_an_unchanged_task_keeps_its_fingerprint_and_a_change_moves_it(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_release_task(
        pipeline="P",
        environment="E",
        gate="G",
        release="R",
        snapshot="S",
        group=GROUP,
        flex_fields={"B": "2", "A": "1"},
    )
    first = await listed(connector, task)
    assert (await listed(connector, task)).fingerprint() == first.fingerprint()
    kit.sandbox.tasks[task].flex_fields.reverse()  # the same fields in another order: no change
    assert (await listed(connector, task)).fingerprint() == first.fingerprint()
    kit.sandbox.tasks[task].flex_fields.append({"name": "C", "value": "3"})
    assert (await listed(connector, task)).fingerprint() != first.fingerprint()


async def test_refresh_tells_the_final_status_and_the_notes(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    approved = kit.sandbox.add_project_task(project="A", version="1", group=GROUP)
    rejected = kit.sandbox.add_project_task(project="R", version="1", group=GROUP)
    cancelled = kit.sandbox.add_project_task(project="C", version="1", group=GROUP)
    items = {i.external_id: i for i in await connector.fetch_pending()}
    kit.sandbox.decide(approved, Status.APPROVED, notes="Looks good")
    kit.sandbox.decide(rejected, Status.REJECTED, notes="Not during the freeze")
    kit.sandbox.decide(cancelled, "CANCELLED")

    done = await connector.refresh(items[str(approved)])
    assert (done.status, done.decision_note, done.actions) == (Status.APPROVED, "Looks good", ())
    assert done.decided_by is None, "FlexDeploy does not say who decided"
    no = await connector.refresh(items[str(rejected)])
    assert (no.status, no.decision_note) == (Status.REJECTED, "Not during the freeze")
    gone = await connector.refresh(items[str(cancelled)])
    assert gone.status is Status.CANCELLED and gone.actions == ()
    assert any("CANCELLED" in n for n in gone.notices)


async def test_a_task_that_disappeared_is_not_found(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
    item = await listed(connector, task)
    kit.sandbox.remove(task)
    with pytest.raises(NotFound):
        await connector.refresh(item)


async def test_odd_flex_fields_are_read_tolerantly(
    kit: FlexDeployKit, connector: FlexDeployConnector
) -> None:
    task = kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
    kit.sandbox.tasks[task].flex_fields = [
        {"displayName": "Ticket", "code": "TICKET", "value": 4711},
        {"name": "Empty", "value": None},
        "not a field",
    ]
    fields = shown(await listed(connector, task))
    assert fields["Ticket"] == "4711"
    assert "Empty" not in fields


async def test_a_service_account_that_is_not_admin_sees_its_groups_only(kit: FlexDeployKit) -> None:
    kit.sandbox.add_group("Ops", [CAROL])
    theirs = kit.sandbox.add_project_task(project="Ops thing", version="1", group="Ops")
    kit.sandbox.add_project_task(project="Other", version="1", group=GROUP)
    carol = kit.sandbox.credentials(CAROL)
    connector = kit.build(username=carol["username"], password=carol["secret"])
    try:
        assert [i.external_id for i in await connector.fetch_pending()] == [str(theirs)]
    finally:
        await connector.aclose()


async def test_wrong_service_credentials_are_reported_by_check(kit: FlexDeployKit) -> None:
    good = kit.build()
    bad = kit.build(password="not-the-password")
    try:
        kit.sandbox.add_project_task(project="P", version="1", group=GROUP)
        assert await good.check() == "reachable as approvals-bot: 1 pending of 1 approval tasks"
        with pytest.raises(AuthExpired) as caught:
            await bad.check()
        assert "not-the-password" not in str(caught.value)
    finally:
        await good.aclose()
        await bad.aclose()
