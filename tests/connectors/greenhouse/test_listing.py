"""Greenhouse listing: whose turn it is, what the card shows, and how a flow ends.

All over real HTTP against the Greenhouse sandbox (connectors/greenhouse/sandbox.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import Action, ApprovalItem, GroupState, Status
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.people import ALICE, BOB, CAROL, DAVE, DemoPerson
from tests.contract.kits.greenhouse import GreenhouseKit


def emails(item: ApprovalItem) -> list[str | None]:
    return [p.email for p in item.recipients]


async def listed(
    connector: GreenhouseConnector, kit: GreenhouseKit, flow: int, *people: DemoPerson
) -> ApprovalItem | None:
    """The flow's item as a poll with `people` linked (default: the whole cast) sees it."""
    linked = kit.link(*(people or (ALICE, BOB, CAROL, DAVE)))
    items = {i.external_id: i for i in await connector.fetch_pending(linked)}
    return items.get(str(flow))


def offer_flow(kit: GreenhouseKit, *, required: int = 1) -> int:
    sb = kit.sandbox
    job = kit.new_job("Senior Backend Engineer", department="Engineering", office="Berlin")
    candidate = sb.add_candidate("Jordan", "Rivera")
    offer = sb.add_offer(
        job, candidate, starts_at="2027-01-11", custom={"Salary": "EUR 86,000", "Notes": None}
    )
    ids = kit.ids
    return sb.add_flow(
        job,
        [([ids["alice"], ids["bob"]], required), ([ids["carol"]], 1)],
        approval_type="offer_candidate",
        offer_id=offer,
        sequential=True,
        requested_by=kit.recruiter,
    )


async def test_sequential_flow_cards_only_the_due_group_then_the_next(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = offer_flow(kit)
    item = await listed(connector, kit, flow)
    assert item is not None
    assert [(g.name, g.state) for g in item.groups] == [
        ("Group 1", GroupState.DUE),
        ("Group 2", GroupState.WAITING),
    ]
    assert emails(item) == [ALICE.email, BOB.email], "Carol's group is waiting: no card for her yet"

    kit.sandbox.approve(flow, kit.ids["alice"])
    item = await listed(connector, kit, flow)
    assert item is not None
    assert [g.state for g in item.groups] == [GroupState.RESOLVED, GroupState.DUE]
    assert emails(item) == [CAROL.email]
    assert item.due_since is not None, "reminders count from when Carol's group became due"
    assert item.status is Status.PENDING


async def test_an_approver_who_approved_gets_no_card_while_the_group_waits_on_others(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = offer_flow(kit, required=2)
    kit.sandbox.approve(flow, kit.ids["alice"])
    item = await listed(connector, kit, flow)
    assert item is not None
    assert item.groups[0].state is GroupState.DUE
    assert emails(item) == [BOB.email]


async def test_flow_is_found_through_any_mapped_person_and_cards_unlinked_approvers_by_email(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = offer_flow(kit)
    # Only Carol (waiting in group 2) is linked; Alice and Bob are reached by their Greenhouse emails.
    item = await listed(connector, kit, flow, CAROL)
    assert item is not None
    assert emails(item) == [ALICE.email, BOB.email]
    assert item.groups[0].state is GroupState.DUE


async def test_parallel_flow_cards_every_group_at_once(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job = kit.new_job("Product Designer")
    flow = kit.sandbox.add_flow(
        job, [([kit.ids["carol"]], 1), ([kit.ids["dave"]], 1)], sequential=False, requested_by=kit.recruiter
    )
    item = await listed(connector, kit, flow)
    assert item is not None
    assert [g.state for g in item.groups] == [GroupState.DUE, GroupState.DUE]
    assert emails(item) == [CAROL.email, DAVE.email]
    assert ("Order", "All groups at once") in [(f.label, f.value) for f in item.fields]

    kit.sandbox.approve(flow, kit.ids["dave"])
    item = await listed(connector, kit, flow)
    assert item is not None
    assert [g.state for g in item.groups] == [GroupState.DUE, GroupState.RESOLVED]
    assert emails(item) == [CAROL.email]


async def test_the_card_shows_what_an_approver_needs_and_only_what_greenhouse_can_do(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = offer_flow(kit)
    item = await listed(connector, kit, flow)
    assert item is not None
    offer = next(iter(kit.sandbox.offers.values()))
    assert item.title == "Offer to Jordan Rivera: Senior Backend Engineer"
    assert item.kind == "Candidate offer", "the card names the kind in words, not Harvest's identifier"
    assert (
        item.url
        == f"https://app.greenhouse.io/people/{offer.candidate_id}?application_id={offer.application_id}"
    )
    fields = dict((f.label, f.value) for f in item.fields)
    assert fields["Approval"] == "Candidate offer"
    assert fields["Candidate"] == "Jordan Rivera"
    assert fields["Start date"] == "2027-01-11"
    assert fields["Salary"] == "EUR 86,000"
    assert "Notes" not in fields, "empty custom fields are left out"
    assert fields["Requested by"] == "Rita Recruiter"
    assert fields["Order"] == "One group after another"
    assert item.requester is not None and item.requester.name == "Rita Recruiter"
    assert [a.action for a in item.actions] == [Action.REASSIGN]
    assert item.action(Action.APPROVE) is None and item.action(Action.REJECT) is None
    assert any("approve or reject in Greenhouse" in n for n in item.notices)
    assert item.groups[0].approvers[0].email == ALICE.email

    again = await listed(connector, kit, flow)
    assert again is not None and again.fingerprint() == item.fingerprint()


async def test_a_job_flow_links_to_the_job_and_names_it(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job = kit.new_job("Product Designer")
    flow = kit.sandbox.add_flow(
        job, [([kit.ids["alice"]], 1)], approval_type="offer_job", requested_by=kit.recruiter
    )
    item = await listed(connector, kit, flow)
    assert item is not None
    assert item.title == "Make offers on Product Designer"
    assert item.url == f"https://app.greenhouse.io/plans/{job}"


async def test_missing_endpoint_permission_shows_less_instead_of_failing(kit: GreenhouseKit) -> None:
    flow = offer_flow(kit)
    kit.sandbox.denied.update({"candidates", "offers"})
    connector = kit.build()
    try:
        item = await listed(connector, kit, flow)
    finally:
        await connector.aclose()
    assert item is not None
    assert item.title == "Offer on Senior Backend Engineer"
    assert item.url is not None and "/plans/" in item.url
    assert emails(item) == [ALICE.email, BOB.email]


async def test_flows_not_yet_requested_are_not_carded_but_can_be_requested(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job = kit.new_job()
    flow = kit.sandbox.add_flow(job, [([kit.ids["alice"]], 1), ([kit.ids["bob"]], 1)])
    assert await listed(connector, kit, flow) is None
    item = await connector.refresh(await _stub(kit, flow, connector))
    assert [g.state for g in item.groups] == [GroupState.WAITING, GroupState.WAITING]
    assert item.recipients == ()
    assert item.action(Action.REQUEST) is not None


async def _stub(kit: GreenhouseKit, flow: int, connector: GreenhouseConnector) -> ApprovalItem:
    return ApprovalItem(connector=connector.name, external_id=str(flow), kind="open_job", title="?")


async def test_pinned_users_are_polled_without_anyone_linking(kit: GreenhouseKit) -> None:
    flow = offer_flow(kit)
    connector = kit.build(users={ALICE.email.upper(): kit.ids["alice"]})
    try:
        items = await connector.fetch_pending(())
    finally:
        await connector.aclose()
    assert [i.external_id for i in items] == [str(flow)]


async def test_greenhouse_reminders_are_passed_on(kit: GreenhouseKit, connector: GreenhouseConnector) -> None:
    flow = offer_flow(kit)
    reminded = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    kit.sandbox.remind(flow, by=kit.recruiter, at=reminded)
    item = await listed(connector, kit, flow)
    assert item is not None
    assert item.vendor_reminded_at == reminded


@pytest.mark.parametrize("outcome", ["approved", "rejected"])
async def test_a_flow_decided_in_greenhouse_ends_every_card(
    kit: GreenhouseKit, connector: GreenhouseConnector, outcome: str
) -> None:
    flow = offer_flow(kit)
    item = await listed(connector, kit, flow)
    assert item is not None
    if outcome == "approved":
        kit.sandbox.approve(flow, kit.ids["bob"])
        kit.sandbox.approve(flow, kit.ids["carol"])
    else:
        kit.sandbox.reject(flow, kit.ids["alice"])
        kit.sandbox.reject(flow, kit.ids["bob"])
    assert await listed(connector, kit, flow) is None, "a decided flow leaves everyone's pending list"
    final = await connector.refresh(item)
    assert final.status is (Status.APPROVED if outcome == "approved" else Status.REJECTED)
    assert final.actions == ()
    assert final.recipients == ()
    assert final.decided_at is not None
    assert f"{outcome.capitalize()} in Greenhouse." in final.notices


async def test_a_flow_deleted_in_greenhouse_is_not_found(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    from connectors.errors import NotFound

    flow = offer_flow(kit)
    item = await listed(connector, kit, flow)
    assert item is not None
    del kit.sandbox.flows[flow]
    with pytest.raises(NotFound):
        await connector.refresh(item)
