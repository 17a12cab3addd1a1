"""The contract every connector keeps, run against each vendor's own sandbox."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator

import pytest

from connectors.base import Action, Status
from connectors.errors import AlreadyDecided, AuthExpired, NotAllowed, TransientError, Unsupported
from tests.contract import kits
from tests.contract.kit import ContractKit
from tests.running import started


def _kits() -> list[type[ContractKit]]:
    found = []
    for module in pkgutil.iter_modules(kits.__path__):
        kit = getattr(importlib.import_module(f"tests.contract.kits.{module.name}"), "KIT", None)
        if kit is not None:
            found.append(kit)
    return sorted(found, key=lambda k: k.type)


@pytest.fixture(params=_kits(), ids=lambda k: k.type)
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[ContractKit]:
    instance: ContractKit = request.param()
    async with started(instance):
        yield instance


async def test_pending_item_is_listed_with_what_a_card_needs(kit: ContractKit) -> None:
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        items = {i.external_id: i for i in await connector.fetch_pending(kit.linked())}
        assert external_id in items
        item = items[external_id]
        assert item.status is Status.PENDING
        assert item.connector == connector.name
        assert item.title.strip()
        assert item.url and item.url.startswith("http")
        again = {i.external_id: i for i in await connector.fetch_pending(kit.linked())}[external_id]
        assert again.fingerprint() == item.fingerprint(), "an unchanged item must keep its fingerprint"
        refreshed = await connector.refresh(item)
        assert refreshed.status is Status.PENDING
        assert refreshed.external_id == external_id
    finally:
        await connector.aclose()


async def test_every_offered_action_is_one_the_vendor_can_do(kit: ContractKit) -> None:
    await kit.seed_pending()
    connector = kit.build()
    try:
        caps = connector.capabilities
        allowed = {
            Action.APPROVE: caps.approve,
            Action.REJECT: caps.reject,
            Action.ABSTAIN: caps.abstain,
            Action.RESET: caps.reset,
            Action.REASSIGN: caps.reassign,
            Action.REQUEST: caps.request,
            Action.CANCEL: caps.cancel,
            Action.COMMENT: caps.comments,
        }
        for item in await connector.fetch_pending(kit.linked()):
            for spec in item.actions:
                assert allowed[spec.action], f"{item.external_id} offers {spec.action} the API cannot do"
    finally:
        await connector.aclose()


@pytest.mark.parametrize("action", [Action.APPROVE, Action.REJECT])
async def test_decision_is_made_as_the_person_who_clicked(kit: ContractKit, action: Action) -> None:
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        actor = kit.approver()
        if not kit.can_approve:
            assert item.action(action) is None
            with pytest.raises(Unsupported):
                await connector.act(item, action, actor, comment="from the contract suite")
            return
        after = await connector.act(item, action, actor, comment="from the contract suite")
        expected = Status.APPROVED if action is Action.APPROVE else Status.REJECTED
        assert after.status is expected
        assert (external_id, action.value, actor.vendor_user_id) in kit.vendor_actions()
        assert (await connector.refresh(item)).status is expected
        pending_ids = {i.external_id for i in await connector.fetch_pending(kit.linked())}
        assert external_id not in pending_ids
    finally:
        await connector.aclose()


async def test_vendor_refuses_someone_who_is_not_an_approver(kit: ContractKit) -> None:
    if not kit.can_approve:
        pytest.skip(f"{kit.type} has no approve call, so there is nobody to refuse")
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        with pytest.raises(NotAllowed):
            await connector.act(item, Action.APPROVE, kit.outsider())
        assert (await connector.refresh(item)).status is Status.PENDING
        assert not [a for a in kit.vendor_actions() if a[0] == external_id]
    finally:
        await connector.aclose()


async def test_decided_elsewhere_is_seen_on_refresh_and_refused_on_act(kit: ContractKit) -> None:
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        await kit.decide_elsewhere(external_id, Status.APPROVED)
        assert external_id not in {i.external_id for i in await connector.fetch_pending(kit.linked())}
        final = await connector.refresh(item)
        assert final.status is Status.APPROVED
        assert not final.actions, "a decided item offers no actions"
        if kit.can_approve:
            with pytest.raises(AlreadyDecided) as caught:
                await connector.act(item, Action.APPROVE, kit.approver())
            assert caught.value.status in (None, Status.APPROVED)
    finally:
        await connector.aclose()


async def test_a_failing_read_is_retried(kit: ContractKit) -> None:
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        await kit.fail_next("500")
        items = await connector.fetch_pending(kit.linked())
        assert external_id in {i.external_id for i in items}
    finally:
        await connector.aclose()


async def test_an_action_that_times_out_is_transient_and_the_truth_is_reread(kit: ContractKit) -> None:
    if not kit.can_approve:
        pytest.skip(f"{kit.type} has no approve call")
    external_id = await kit.seed_pending()
    connector = kit.build(timeout=0.5)
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        await kit.fail_next("timeout")
        with pytest.raises(TransientError):
            await connector.act(item, Action.APPROVE, kit.approver())
        # The vendor applied it after all: the re-read says so, and nothing was sent twice.
        assert (await connector.refresh(item)).status is Status.APPROVED
        assert len([a for a in kit.vendor_actions() if a[0] == external_id]) == 1
    finally:
        await connector.aclose()


async def test_a_dropped_action_changes_nothing(kit: ContractKit) -> None:
    if not kit.can_approve:
        pytest.skip(f"{kit.type} has no approve call")
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        await kit.fail_next("drop")
        with pytest.raises(TransientError):
            await connector.act(item, Action.APPROVE, kit.approver())
        assert (await connector.refresh(item)).status is Status.PENDING
        assert not [a for a in kit.vendor_actions() if a[0] == external_id]
    finally:
        await connector.aclose()


async def test_linking_tells_who_the_person_is(kit: ContractKit) -> None:
    connector = kit.build()
    try:
        if kit.link_mode == "credentials":
            identity = await connector.verify(kit.good_credentials())
            assert identity.user_id == kit.approver().vendor_user_id
            with pytest.raises(AuthExpired):
                await connector.verify(kit.bad_credentials())
        else:
            found = await connector.identify(kit.approver_email())
            assert found is not None
            assert found.user_id == kit.approver().vendor_user_id
            assert await connector.identify("nobody-at-all@example.invalid") is None
    finally:
        await connector.aclose()


async def test_expired_credentials_are_reported_as_such(kit: ContractKit) -> None:
    if not kit.can_approve or kit.link_mode != "credentials":
        pytest.skip(f"{kit.type} does not act with personal credentials")
    external_id = await kit.seed_pending()
    connector = kit.build()
    try:
        item = next(i for i in await connector.fetch_pending(kit.linked()) if i.external_id == external_id)
        approver = kit.approver()
        from dataclasses import replace

        stale = replace(approver, credentials=kit.bad_credentials())
        with pytest.raises(AuthExpired):
            await connector.act(item, Action.APPROVE, stale)
        assert (await connector.refresh(item)).status is Status.PENDING
    finally:
        await connector.aclose()
