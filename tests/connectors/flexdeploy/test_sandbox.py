"""The FlexDeploy simulator is faithful to the vendor document, so the connector's tests mean something.

These talk to the sandbox with a plain httpx client, as any FlexDeploy API user would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.base import Action, Actor, Status
from connectors.errors import Conflict
from connectors.flexdeploy import FlexDeploySettings
from connectors.flexdeploy.client import classify_flexdeploy
from connectors.flexdeploy.connector import FlexDeployConnector
from connectors.flexdeploy.sandbox import SERVICE_PASSWORD, SERVICE_USER, FlexDeploySandbox, demo
from connectors.people import ALICE, BOB, CAROL, DAVE
from tests.running import started

TASKS = "/rest/v1/tasks/approval"


@pytest.fixture
async def sandbox() -> AsyncIterator[FlexDeploySandbox]:
    instance = FlexDeploySandbox(slow_seconds=0.3)
    instance.add_group("CAB", [ALICE, BOB])
    instance.add_group("QA", [CAROL])
    async with started(instance):
        yield instance


@pytest.fixture
async def admin(sandbox: FlexDeploySandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url, auth=(SERVICE_USER, SERVICE_PASSWORD)) as client:
        yield client


def as_user(sandbox: FlexDeploySandbox, who: Any, *, token: bool = False) -> httpx.AsyncClient:
    creds = sandbox.credentials(who, token=token)
    return httpx.AsyncClient(base_url=sandbox.base_url, auth=(creds["username"], creds["secret"]))


def two_tasks_of_one_project(sandbox: FlexDeploySandbox) -> tuple[int, int]:
    return (
        sandbox.add_project_task(project="Payments", version="1.0", group="CAB", project_id=10002),
        sandbox.add_project_task(project="Payments", version="1.1", group="CAB", project_id=10002),
    )


async def test_a_query_form_that_matches_several_tasks_throws_and_changes_nothing(
    sandbox: FlexDeploySandbox, admin: httpx.AsyncClient
) -> None:
    first, second = two_tasks_of_one_project(sandbox)
    for verb in ("approve", "reject"):
        answer = await admin.put(f"{TASKS}/{verb}", params={"projectid": "10002", "notes": "all of them?"})
        assert answer.status_code == 500
        assert "only one approval task" in answer.json()["message"]
        assert isinstance(classify_flexdeploy(answer), Conflict)
    assert {sandbox.tasks[t].status for t in (first, second)} == {"PENDING"}
    assert sandbox.decisions == []


async def test_a_query_form_with_one_match_decides_it_with_case_insensitive_names_and_values(
    sandbox: FlexDeploySandbox, admin: httpx.AsyncClient
) -> None:
    two_tasks_of_one_project(sandbox)
    tied = sandbox.add_project_task(project="Inv", version="7", group="CAB", external=("JIRA", "OPS-1234"))
    answer = await admin.put(
        f"{TASKS}/approve",
        params={"EXTERNALSYSTEMTYPE": "jira", "externalid": "ops-1234", "Notes": "by query"},
    )
    assert answer.status_code == 200
    assert (answer.json()["taskId"], answer.json()["status"], answer.json()["notes"]) == (
        tied,
        "APPROVED",
        "by query",
    )
    nothing = await admin.put(f"{TASKS}/reject", params={"projectId": "99999"})
    assert nothing.status_code == 404


async def test_the_list_filters_as_documented(sandbox: FlexDeploySandbox, admin: httpx.AsyncClient) -> None:
    first, second = two_tasks_of_one_project(sandbox)
    other = sandbox.add_project_task(
        project="Other", version="1", group="QA", project_id=10003, environment_id=17000
    )
    gate = sandbox.add_release_task(
        pipeline="Retail", environment="Prod", gate="CAB", release="R", snapshot="S", group="CAB"
    )
    sandbox.decide(second, Status.APPROVED)

    async def ids(**params: str) -> list[int]:
        answer = await admin.get(TASKS, params=params)
        assert answer.status_code == 200
        return [t["taskId"] for t in answer.json()]

    assert await ids() == [first, second, other, gate], "no filter: every task, in any status"
    assert await ids(projectId="10002") == [first, second]
    assert await ids(PROJECTID="10002") == [first, second], "names are not case sensitive"
    assert await ids(environmentId="17000") == [other]
    pipeline_exec = sandbox.tasks[gate].attributes["pipelineStageGateExecId"]
    assert await ids(pipelineStageExecId=str(pipeline_exec)) == [gate]
    assert await ids(projectId="10002", notes="a note") == [first, second], "notes never filter"
    one = (await admin.get(f"{TASKS}/{first}")).json()
    assert set(one) >= {
        "taskId",
        "status",
        "requestType",
        "projectName",
        "workflowRequestId",
        "requestorPath",
    }


async def test_basic_auth_takes_a_password_or_an_api_token(sandbox: FlexDeploySandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anonymous:
        refused = await anonymous.get(TASKS)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
    for token in (False, True):
        async with as_user(sandbox, ALICE, token=token) as alice:
            assert (await alice.get(TASKS)).status_code == 200
    async with httpx.AsyncClient(base_url=sandbox.base_url, auth=("alice", "alice-fd-passwor")) as wrong:
        assert (await wrong.get(TASKS)).status_code == 401


async def test_people_see_and_decide_their_groups_tasks_and_an_admin_everything(
    sandbox: FlexDeploySandbox, admin: httpx.AsyncClient
) -> None:
    cab = sandbox.add_project_task(project="P", version="1", group="CAB")
    qa = sandbox.add_project_task(project="Q", version="1", group="QA")
    async with as_user(sandbox, CAROL) as carol, as_user(sandbox, DAVE) as dave:
        assert [t["taskId"] for t in (await carol.get(TASKS)).json()] == [qa]
        assert [t["taskId"] for t in (await dave.get(TASKS)).json()] == []
        assert (await carol.get(f"{TASKS}/{cab}")).status_code == 403
        refused = await dave.put(f"{TASKS}/approve/{cab}")
        assert (
            refused.status_code == 403 and "not a member of approval group 'CAB'" in refused.json()["message"]
        )
    assert [t["taskId"] for t in (await admin.get(TASKS)).json()] == [cab, qa]
    assert (await admin.put(f"{TASKS}/reject/{qa}", params={"notes": "admin says no"})).json()[
        "status"
    ] == "REJECTED"
    again = await admin.put(f"{TASKS}/approve/{qa}")
    assert again.status_code == 400 and "not pending" in again.json()["message"]
    assert sandbox.decisions == [(str(qa), "reject", SERVICE_USER)]


async def test_a_slow_answer_still_applies_and_a_dropped_one_does_not(
    sandbox: FlexDeploySandbox, admin: httpx.AsyncClient
) -> None:
    slow = sandbox.add_project_task(project="S", version="1", group="CAB")
    dropped = sandbox.add_project_task(project="D", version="1", group="CAB")
    sandbox.fail_next("timeout")
    with pytest.raises(httpx.ReadTimeout):
        await admin.put(f"{TASKS}/approve/{slow}", timeout=0.1)
    sandbox.fail_next("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await admin.put(f"{TASKS}/approve/{dropped}")
    assert (sandbox.tasks[slow].status, sandbox.tasks[dropped].status) == ("APPROVED", "PENDING")


async def test_the_user_api_tells_people_about_themselves(sandbox: FlexDeploySandbox) -> None:
    async with as_user(sandbox, BOB) as bob:
        mine = await bob.get("/rest/v1/administration/security/user", params={"userName": "bob"})
        assert mine.status_code == 200
        (me,) = mine.json()
        assert (me["firstName"], me["lastName"], me["email"], me["password"]) == (
            "Bob",
            "Builder",
            "bob@example.com",
            "*****",
        )
        assert (
            await bob.get("/rest/v1/administration/security/user", params={"userName": "alice"})
        ).status_code == 403


async def test_the_demo_is_seeded_and_its_people_can_link_and_decide() -> None:
    setup = await demo()
    connector = FlexDeployConnector(
        "deploys", FlexDeploySettings.model_validate(dict(setup.connector)), timeout=2.0
    )
    try:
        items = await connector.fetch_pending()
        assert sorted(i.kind for i in items) == ["Project deployment", "Project deployment", "Release gate"]
        gate = next(i for i in items if i.kind == "Release gate")
        assert gate.title == "CAB approval: release 2026.11 → Production"
        fields = {f.label: f.value for f in gate.fields}
        assert (fields["Pipeline"], fields["Environment"], fields["Snapshot"]) == (
            "Retail Web",
            "Production",
            "2026.11-RC3",
        )
        tied = [i for i in items if "OPS-1234" in " ".join(i.notices)]
        assert len(tied) == 1 and tied[0].actions == ()

        identities = {email: await connector.verify(creds) for email, creds in setup.people.items()}
        assert {i.user_id for i in identities.values()} == {"alice", "bob", "carol", "dave"}
        assert identities[ALICE.email].email == ALICE.email
        for person in (ALICE, BOB):
            creds = setup.people[person.email]
            item = next(i for i in await connector.fetch_pending() if i.actions)
            actor = Actor(person.slack_id, creds["username"], person.name, person.email, credentials=creds)
            assert (await connector.act(item, Action.APPROVE, actor)).status is Status.APPROVED
        async with httpx.AsyncClient() as browser:
            page = await browser.get(setup.connector["base_url"] + "/")
            assert page.status_code == 200 and "Approval Tasks" in page.text
    finally:
        await connector.aclose()
        await setup.stop()
