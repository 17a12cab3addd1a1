"""Harvest v3 as Greenhouse serves it: tokens per acting user, cursor paging, turns by sort_order,
and what a poll costs when nothing changed. All over real HTTP against the v3 sandbox."""

from __future__ import annotations

import httpx

from connectors.base import Action, Actor, GroupState
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.people import ALICE, BOB, CAROL, DAVE
from tests.contract.kits.greenhouse import GreenhouseKit


async def listed(connector: GreenhouseConnector) -> dict[str, list[str | None]]:
    return {i.external_id: [p.email for p in i.recipients] for i in await connector.fetch_pending(())}


async def test_due_approvers_are_found_across_the_organisation_without_anyone_linking(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(kit.new_job(), [([ids["alice"], ids["bob"]], 1)], requested_by=kit.recruiter)
    assert await listed(connector) == {str(flow): [ALICE.email, BOB.email]}
    assert kit.sandbox.minted == [kit.service], "listing acts as the service user only"


async def test_a_two_group_sequential_flow_cards_the_second_group_only_after_the_first(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(
        kit.new_job(), [([ids["alice"]], 1), ([ids["carol"], ids["dave"]], 1)], requested_by=kit.recruiter
    )
    assert await listed(connector) == {str(flow): [ALICE.email]}
    kit.sandbox.approve(flow, ids["alice"])
    assert await listed(connector) == {str(flow): [CAROL.email, DAVE.email]}
    kit.sandbox.approve(flow, ids["dave"])
    assert await listed(connector) == {}, "the flow is approved; Carol's unvoted 'due' row is not a turn"


async def test_groups_with_equal_sort_order_run_in_parallel(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(
        kit.new_job(),
        [([ids["alice"]], 1, 0), ([ids["bob"]], 1, 0), ([ids["carol"]], 1, 1)],
        requested_by=kit.recruiter,
    )
    assert await listed(connector) == {str(flow): [ALICE.email, BOB.email]}
    kit.sandbox.approve(flow, ids["alice"])
    items = {i.external_id: i for i in await connector.fetch_pending(())}
    item = items[str(flow)]
    assert [p.email for p in item.recipients] == [BOB.email], "Carol waits for both groups of order 0"
    assert [g.state for g in item.groups] == [GroupState.RESOLVED, GroupState.DUE, GroupState.WAITING]


async def test_cursor_paging_over_more_than_500_approvers(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    people = [kit.sandbox.add_user(f"Approver {n}", f"approver{n}@example.com") for n in range(520)]
    flows = [
        kit.sandbox.add_flow(kit.new_job(), [(people[n : n + 10], 1)], requested_by=kit.recruiter)
        for n in range(0, 520, 10)
    ]
    items = await connector.fetch_pending(())
    assert sorted(i.external_id for i in items) == sorted(str(f) for f in flows)
    assert sum(len(i.recipients) for i in items) == 520
    approvers = [
        q for path, q in kit.sandbox.query_log if path == "/v3/approvers" and q.get("status") == "due"
    ]
    assert approvers == [{"status": "due", "per_page": "500"}], "per_page on the first request only"
    cursors = [q for path, q in kit.sandbox.query_log if "cursor" in q]
    assert cursors and all(list(q) == ["cursor"] for q in cursors), "a cursor request carries nothing else"
    assert all(
        len(q[key].split(",")) <= 50 for _, q in kit.sandbox.query_log for key in q if key.endswith("ids")
    )


async def test_a_cursor_with_other_parameters_is_refused_with_422(kit: GreenhouseKit) -> None:
    for _ in range(3):
        kit.sandbox.add_flow(kit.new_job(), [([kit.ids["alice"]], 1)], requested_by=kit.recruiter)
    async with httpx.AsyncClient() as http:
        minted = await http.post(
            kit.sandbox.auth_url,
            auth=(kit.sandbox.client_id, kit.sandbox.client_secret),
            data={"grant_type": "client_credentials", "sub": str(kit.service)},
        )
        token = {"Authorization": f"Bearer {minted.json()['access_token']}"}
        first = await http.get(f"{kit.sandbox.url}/v3/approvers", params={"per_page": 1}, headers=token)
        assert first.status_code == 200 and len(first.json()) == 1
        following = first.links["next"]["url"]
        refused = await http.get(f"{following}&per_page=1", headers=token)
        assert refused.status_code == 422
        assert refused.json()["errors"] == ["When passing a cursor, do not include other query params."]
        too_many = await http.get(f"{kit.sandbox.url}/v3/approvers", params={"per_page": 600}, headers=token)
        assert too_many.status_code == 422


async def test_one_token_per_acting_user_kept_until_it_expires_then_minted_once_more(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(kit.new_job(), [([ids["alice"]], 1)], requested_by=kit.recruiter)
    for _ in range(3):
        await connector.fetch_pending(())
    assert kit.sandbox.minted == [kit.service], "never minted per request"

    kit.sandbox.expire_tokens()  # an hour passes mid-run: the next call answers 401
    assert await listed(connector) == {str(flow): [ALICE.email]}
    assert kit.sandbox.minted == [kit.service, kit.service], "one fresh token, and the call retried once"
    refused = [r for r in kit.sandbox.requests if r[3] == 401]
    assert len(refused) == 1


async def test_expires_in_is_read_as_well_as_expires_at() -> None:
    kit = GreenhouseKit(expiry_field="expires_in", token_seconds=3600)
    await kit.start()
    connector = kit.build()
    try:
        kit.sandbox.add_flow(kit.new_job(), [([kit.ids["alice"]], 1)], requested_by=kit.recruiter)
        for _ in range(2):
            await connector.fetch_pending(())
        assert kit.sandbox.minted == [kit.service]
    finally:
        await connector.aclose()
        await kit.stop()


async def test_request_approvals_is_made_as_the_clicker(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(kit.new_job(), [([ids["alice"]], 1), ([ids["bob"]], 1)])
    kit.sandbox.can_request.add(ids["dave"])
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, ids["dave"])
    dave = kit.actor(DAVE)
    started = await connector.request(dave, str(flow))
    assert started is not None and [p.email for p in started.recipients] == [ALICE.email]
    (write,) = kit.sandbox.writes
    assert (write.path, write.sub, write.status, write.body) == (
        f"/v3/approval_flows/{flow}/request_approvals",
        ids["dave"],
        200,
        {},
    )
    assert kit.sandbox.flows[flow].requested_by == ids["dave"]
    assert started.requester is not None and started.requester.email == DAVE.email


async def test_permits_reassign_for_own_slot_and_for_the_requester_only(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(
        kit.new_job(), [([ids["alice"]], 1), ([ids["carol"]], 1)], requested_by=kit.recruiter
    )
    item = next(i for i in await connector.fetch_pending(()) if i.external_id == str(flow))
    rita = Actor("U0RITA", str(kit.recruiter), "Rita Recruiter", "rita.recruiter@example.com")
    assert connector.permits(item, Action.REASSIGN, kit.actor(ALICE)) is None
    assert connector.permits(item, Action.REASSIGN, kit.actor(CAROL)) is None, "her slot, though not due yet"
    assert connector.permits(item, Action.REASSIGN, rita) is None
    assert connector.permits(item, Action.REASSIGN, kit.actor(BOB)) is not None
    assert connector.permits(item, Action.REQUEST, kit.actor(BOB)) is None, "Greenhouse decides that one"


async def test_a_poll_where_nothing_changed_reads_only_the_approvers_and_their_flows(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    for _ in range(3):
        kit.sandbox.add_flow(
            kit.new_job(), [([ids["alice"], ids["bob"]], 1), ([ids["carol"]], 1)], requested_by=kit.recruiter
        )
    first = await connector.fetch_pending(())
    before = len(kit.sandbox.query_log)
    again = await connector.fetch_pending(())
    paths = [path for path, _ in kit.sandbox.query_log[before:]]
    assert paths == ["/v3/approvers", "/v3/approval_flows"]
    assert [i.fingerprint() for i in again] == [i.fingerprint() for i in first]


async def test_the_requester_may_reassign_any_undecided_slot_with_their_own_token(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    ids = kit.ids
    flow = kit.sandbox.add_flow(
        kit.new_job(), [([ids["alice"]], 1), ([ids["carol"]], 1)], requested_by=kit.recruiter
    )
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, ids["dave"])
    item = next(i for i in await connector.fetch_pending(()) if i.external_id == str(flow))
    rita = Actor("U0RITA", str(kit.recruiter), "Rita Recruiter", "rita.recruiter@example.com")
    after = await connector.act(
        item,
        Action.REASSIGN,
        rita,
        inputs={"replace": "Group 2: Carol Checker", "new_approver": str(ids["dave"])},
    )
    assert [p.email for p in after.groups[1].approvers] == [DAVE.email]
    assert [(w.sub, w.status) for w in kit.sandbox.writes] == [(kit.recruiter, 200)]
