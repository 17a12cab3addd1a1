"""Greenhouse actions: reassign and request approvals, as the person who clicked and nobody else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from connectors.base import Action, ApprovalItem, GroupState, Status
from connectors.errors import (
    AlreadyDecided,
    InvalidInput,
    NotAllowed,
    RateLimited,
    TransientError,
    Unsupported,
)
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY
from tests.contract.kits.greenhouse import GreenhouseKit


@pytest.fixture
async def connector(kit: GreenhouseKit) -> AsyncIterator[GreenhouseConnector]:
    built = kit.build(timeout=0.4)
    try:
        yield built
    finally:
        await built.aclose()


def sequential_flow(kit: GreenhouseKit) -> int:
    ids = kit.ids
    return kit.sandbox.add_flow(
        kit.new_job("Senior Backend Engineer"),
        [([ids["alice"], ids["bob"]], 1), ([ids["carol"]], 1)],
        requested_by=kit.recruiter,
    )


async def card(connector: GreenhouseConnector, kit: GreenhouseKit, flow: int) -> ApprovalItem:
    items = await connector.fetch_pending(kit.linked())
    return next(i for i in items if i.external_id == str(flow))


def choices(item: ApprovalItem) -> tuple[str, ...]:
    spec = item.action(Action.REASSIGN)
    assert spec is not None
    return next(i for i in spec.inputs if i.name == "replace").allowed


# ---------------------------------------------------------------------------------------------- reassign


async def test_reassign_modal_fits_one_modal(kit: GreenhouseKit, connector: GreenhouseConnector) -> None:
    item = await card(connector, kit, sequential_flow(kit))
    spec = item.action(Action.REASSIGN)
    assert spec is not None and spec.label == "Reassign" and spec.needs_modal
    kinds = {i.name: (i.kind, i.required) for i in spec.inputs}
    assert kinds == {"replace": ("select", True), "new_approver": ("slack_user", True)}
    assert choices(item) == ("Group 1: Alice Approver", "Group 1: Bob Builder", "Group 2: Carol Checker")


async def test_reassign_round_trip_moves_the_card_to_the_new_approver(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    dave = kit.ids["dave"]
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, dave)

    after = await connector.act(
        item,
        Action.REASSIGN,
        kit.actor(ALICE),
        inputs={"replace": "Group 1: Alice Approver", "new_approver": str(dave)},
    )

    assert [p.email for p in after.recipients] == [BOB.email, DAVE.email]
    assert [p.email for p in after.groups[0].approvers] == [BOB.email, DAVE.email]
    assert "Group 1: Dave Deployer" in choices(after)
    assert (str(flow), "reassign", str(kit.ids["alice"])) in kit.sandbox.decisions
    # Made with a token minted for Alice herself, with the body the client builds in one place.
    (write,) = kit.sandbox.writes
    group = kit.sandbox.flows[flow].groups[0].id
    assert (write.method, write.path, write.sub, write.status) == (
        "PUT",
        f"/v3/approver_groups/{group}/replace_approver",
        kit.ids["alice"],
        200,
    )
    assert write.body == {"remove_user_id": kit.ids["alice"], "add_user_id": dave}
    # The next poll cards Dave, not Alice.
    polled = {i.external_id: i for i in await connector.fetch_pending(())}[str(flow)]
    assert [p.email for p in polled.recipients] == [BOB.email, DAVE.email]


async def test_reassign_in_a_waiting_group_does_not_card_the_new_approver_yet(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, kit.ids["dave"])
    after = await connector.act(
        item,
        Action.REASSIGN,
        kit.actor(CAROL),  # her own slot, in a group whose turn has not come
        inputs={"replace": "Group 2: Carol Checker", "new_approver": str(kit.ids["dave"])},
    )
    assert after.groups[1].state is GroupState.WAITING
    assert DAVE.email not in [p.email for p in after.recipients]
    assert [p.email for p in after.groups[1].approvers] == [DAVE.email]


async def test_reassign_in_a_group_that_decided_meanwhile_is_refused_before_greenhouse(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    kit.sandbox.approve(flow, kit.ids["bob"])  # group 1 resolves in Greenhouse
    with pytest.raises(InvalidInput) as caught:
        await connector.act(
            item,
            Action.REASSIGN,
            kit.actor(ALICE),
            inputs={"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["dave"])},
        )
    assert caught.value.field == "replace"
    assert not [w for w in kit.sandbox.writes if "replace_approvers" in w.path]


async def test_greenhouse_refusals_come_back_in_its_own_words(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    outsider = kit.sandbox.add_user("Olive Outsider", "olive@example.com")  # no access to the job

    with pytest.raises(InvalidInput) as invalid:
        await connector.act(
            item,
            Action.REASSIGN,
            kit.actor(ALICE),
            inputs={"replace": "Group 1: Alice Approver", "new_approver": str(outsider)},
        )
    assert invalid.value.field == "add_user_id"
    assert invalid.value.detail == "add_user_id: Must have access to this approval flow"

    # Dave is neither an approver of this flow nor its requester: refused before any write.
    writes = len(kit.sandbox.writes)
    assert connector.permits(item, Action.REASSIGN, kit.actor(DAVE)) == (
        "the approver whose slot it is or the flow's requester"
    )
    with pytest.raises(NotAllowed) as refused:
        await connector.act(
            item,
            Action.REASSIGN,
            kit.actor(DAVE),
            inputs={"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["carol"])},
        )
    assert refused.value.reason == "not_your_slot"
    assert len(kit.sandbox.writes) == writes, "no call reached Greenhouse"

    # Alice lost access to the job in Greenhouse: its 403, in its own words.
    kit.sandbox.jobs[kit.sandbox.flows[flow].job_id].access.discard(kit.ids["alice"])
    with pytest.raises(NotAllowed) as refused:
        await connector.act(item, Action.REASSIGN, kit.actor(ALICE), inputs=alice_to_dave(kit))
    assert refused.value.reason == "permission"
    assert refused.value.detail == "Forbidden"
    assert [a for a in kit.sandbox.decisions if a[1] == "reassign"] == []


async def test_reassign_to_someone_without_a_greenhouse_account_is_refused(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    item = await card(connector, kit, sequential_flow(kit))
    with pytest.raises(InvalidInput) as caught:
        await connector.act(
            item, Action.REASSIGN, kit.actor(ALICE), inputs={"replace": "Group 1: Alice Approver"}
        )
    assert caught.value.field == "new_approver"
    assert kit.sandbox.writes == []


async def test_reassign_on_a_flow_decided_elsewhere_says_so(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    kit.sandbox.decide_flow(flow, "approved", by=kit.recruiter)
    with pytest.raises(AlreadyDecided) as caught:
        await connector.act(
            item,
            Action.REASSIGN,
            kit.actor(ALICE),
            inputs={"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["dave"])},
        )
    assert caught.value.status is Status.APPROVED


async def test_approve_and_reject_are_not_pretended(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    item = await card(connector, kit, sequential_flow(kit))
    for action in (Action.APPROVE, Action.REJECT):
        with pytest.raises(Unsupported):
            await connector.act(item, action, kit.actor(ALICE))
    assert kit.sandbox.writes == []


def alice_to_dave(kit: GreenhouseKit) -> dict[str, str]:
    return {"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["dave"])}


async def test_a_reassign_that_times_out_is_transient_and_took_effect_once(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, kit.ids["dave"])
    kit.sandbox.fail_next("timeout", method="PUT")  # answers after the client gave up, but applies
    with pytest.raises(TransientError):
        await connector.act(item, Action.REASSIGN, kit.actor(ALICE), inputs=alice_to_dave(kit))
    await kit.sandbox.settle()
    refreshed = await connector.refresh(item)
    assert [p.email for p in refreshed.groups[0].approvers] == [BOB.email, DAVE.email]
    assert [a for a in kit.sandbox.decisions if a[1] == "reassign"] == [
        (str(flow), "reassign", str(kit.ids["alice"]))
    ]
    assert len([w for w in kit.sandbox.writes if w.method == "PUT"]) == 1, "a write is never resent"


async def test_a_dropped_reassign_changes_nothing(kit: GreenhouseKit, connector: GreenhouseConnector) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    kit.sandbox.grant(kit.sandbox.flows[flow].job_id, kit.ids["dave"])
    kit.sandbox.fail_next("drop", method="PUT")
    with pytest.raises(TransientError):
        await connector.act(item, Action.REASSIGN, kit.actor(ALICE), inputs=alice_to_dave(kit))
    refreshed = await connector.refresh(item)
    assert [p.email for p in refreshed.groups[0].approvers] == [ALICE.email, BOB.email]
    assert [a for a in kit.sandbox.decisions if a[1] == "reassign"] == []
    assert len([r for r in kit.sandbox.requests if r[1] == "PUT"]) == 1


async def test_a_write_over_the_rate_limit_is_not_applied_nor_resent(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job = kit.new_job()
    flow = kit.sandbox.add_flow(job, [([kit.ids["alice"]], 1)])
    kit.sandbox.can_request.add(kit.ids["alice"])
    kit.sandbox.throttle_next(method="POST")
    with pytest.raises(RateLimited):
        await connector.request(kit.actor(ALICE), str(flow))
    assert [r[3] for r in kit.sandbox.requests if r[1] == "POST" and r[2].startswith("/v3/")] == [429]
    assert not kit.sandbox.flows[flow].requested
    assert kit.sandbox.decisions == []


# ---------------------------------------------------------------------------------------------- request


def unrequested_flow(kit: GreenhouseKit) -> tuple[int, int]:
    job = kit.new_job("Product Designer")
    flow = kit.sandbox.add_flow(
        job, [([kit.ids["alice"]], 1), ([kit.ids["bob"]], 1)], approval_type="offer_job", sequential=True
    )
    return job, flow


async def test_requesting_approvals_starts_the_flow_and_cards_the_first_group(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job, flow = unrequested_flow(kit)
    kit.sandbox.grant(job, kit.ids["dave"])
    kit.sandbox.can_request.add(kit.ids["dave"])
    dave = kit.actor(DAVE)

    offered = await connector.requestable(dave, str(job))
    assert [(r.id, r.title) for r in offered] == [(str(flow), "Make offers on Product Designer")]
    assert "Alice Approver" in offered[0].description

    item = await connector.request(dave, str(flow))
    assert item is not None
    assert item.status is Status.PENDING
    assert [g.state for g in item.groups] == [GroupState.DUE, GroupState.WAITING]
    assert [p.email for p in item.recipients] == [ALICE.email]
    assert item.requester is not None and item.requester.email == DAVE.email
    assert item.action(Action.REQUEST) is None
    assert (str(flow), "request", str(kit.ids["dave"])) in kit.sandbox.decisions
    assert str(flow) in {i.external_id for i in await connector.fetch_pending(kit.link(ALICE))}
    assert await connector.requestable(dave, f"https://app.greenhouse.io/plans/{job}") == []


async def test_requestable_without_a_target_lists_the_actors_own_waiting_flows(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    _, flow = unrequested_flow(kit)
    sequential_flow(kit)  # started: Bob has it due, not requestable
    offered = await connector.requestable(kit.actor(BOB))
    assert [r.id for r in offered] == [str(flow)]


async def test_request_refusals_are_greenhouses_403_and_422(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    job, flow = unrequested_flow(kit)
    kit.sandbox.grant(job, kit.ids["carol"])
    with pytest.raises(NotAllowed) as refused:
        await connector.request(kit.actor(CAROL), str(flow))  # may see the job, may not request
    assert refused.value.reason == "permission"
    assert refused.value.detail == "You do not have permission to request approvals."

    kit.sandbox.request(flow, kit.recruiter)
    kit.sandbox.can_request.add(kit.ids["carol"])
    with pytest.raises(InvalidInput) as invalid:
        await connector.request(kit.actor(CAROL), str(flow))
    assert invalid.value.detail == "This approval flow can't be started."


async def test_requestable_rejects_a_target_that_is_not_a_job(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await connector.requestable(kit.actor(ALICE), "OPS-12")
    assert caught.value.field == "target"


# ---------------------------------------------------------------------------------------------- impersonation guard


async def test_every_write_carries_a_token_of_the_clickers_own(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    erin = kit.sandbox.add_user("Erin Evans", "erin@example.com")
    job = kit.sandbox.flows[flow].job_id
    kit.sandbox.grant(job, kit.ids["dave"], erin)
    # Alice and Bob click at the same moment, each handing over their own slot.
    await asyncio.gather(
        connector.act(
            item,
            Action.REASSIGN,
            kit.actor(ALICE),
            inputs={"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["dave"])},
        ),
        connector.act(
            item,
            Action.REASSIGN,
            kit.actor(BOB),
            inputs={"replace": "Group 1: Bob Builder", "new_approver": str(erin)},
        ),
    )
    group = kit.sandbox.flows[flow].groups[0].id
    writes = sorted((w.path, w.sub, w.status) for w in kit.sandbox.writes)
    path = f"/v3/approver_groups/{group}/replace_approver"
    assert writes == sorted([(path, kit.ids["alice"], 200), (path, kit.ids["bob"], 200)])


async def test_one_persons_click_cannot_carry_anothers_id(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    flow = sequential_flow(kit)
    item = await card(connector, kit, flow)
    inputs = {"replace": "Group 1: Alice Approver", "new_approver": str(kit.ids["dave"])}

    # Mallory's Slack profile carrying Alice's Greenhouse id (a tampered or stale link).
    forged = replace(kit.actor(MALLORY), vendor_user_id=str(kit.ids["alice"]))
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.REASSIGN, forged, inputs=inputs)
    assert caught.value.reason == "wrong_user"

    # Bob's click with Alice's id.
    with pytest.raises(NotAllowed) as caught:
        await connector.act(item, Action.REASSIGN, kit.actor(BOB, str(kit.ids["alice"])), inputs=inputs)
    assert caught.value.reason == "wrong_user"

    # Someone with no mapping at all.
    with pytest.raises(NotAllowed) as caught:
        await connector.request(kit.mallory(), str(flow))
    assert caught.value.reason == "not_linked"

    assert kit.sandbox.writes == [], "nothing reached Greenhouse on anyone's behalf"


async def test_a_pinned_mapping_wins_over_the_email_lookup_for_acting_too(kit: GreenhouseKit) -> None:
    flow = sequential_flow(kit)
    # The admin pins Alice's Slack email to Bob's Greenhouse account: the pin is the truth.
    connector = kit.build(users={ALICE.email: kit.ids["bob"]})
    try:
        item = await card(connector, kit, flow)
        inputs = {"replace": "Group 1: Bob Builder", "new_approver": str(kit.ids["dave"])}
        kit.sandbox.grant(kit.sandbox.flows[flow].job_id, kit.ids["dave"])
        with pytest.raises(NotAllowed):
            await connector.act(item, Action.REASSIGN, kit.actor(ALICE), inputs=inputs)
        await connector.act(item, Action.REASSIGN, kit.actor(ALICE, str(kit.ids["bob"])), inputs=inputs)
    finally:
        await connector.aclose()
    assert [w.sub for w in kit.sandbox.writes] == [kit.ids["bob"]]
