"""Herzum reaches every approver: the service account lists every PENDING approval (paged), linked
people's own listings say who may decide each, and personal access tokens go as Bearer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.base import Action, LinkedUser, Status
from connectors.errors import AuthExpired
from connectors.people import ALICE, BOB
from tests.contract.kits.herzum import HerzumKit
from tests.harness import start_kit_bot


def _alice() -> list[LinkedUser]:
    return [LinkedUser(ALICE.slack_id, "alice", ALICE.email)]


async def test_an_approval_waiting_on_someone_unlinked_is_an_item_for_the_channel(kit: HerzumKit) -> None:
    theirs = kit.sandbox.add_issue("FIN-1", "Carol's budget")
    kit.sandbox.add_approval(theirs, ["carol"], name="Budget approval")
    mine = kit.sandbox.add_issue("OPS-1", "Alice's release")
    kit.sandbox.add_approval(mine, ["alice", "carol"], name="Release sign-off")
    connector = kit.build()
    try:
        items = {i.title: i for i in await connector.fetch_pending(_alice())}
        carol = items["FIN-1: Carol's budget"]
        assert carol.recipients == (), "nobody linked may decide it, so no DM"
        assert carol.channel_card, "but it is carded in the channel"
        assert carol.groups[0].name == "Budget approval"
        assert [s.action for s in carol.actions] == [Action.APPROVE, Action.REJECT]
        alice = items["OPS-1: Alice's release"]
        assert [(p.id, p.name, p.email) for p in alice.recipients] == [("alice", ALICE.name, ALICE.email)]
        assert [p.id for p in alice.groups[0].approvers] == ["alice"], "the queue filter can tell"
        assert alice.channel_card
        # The service listing has no username: every approval, not only the linked people's.
        assert any("username" not in r and "status=PENDING" in r for r in kit.sandbox.served)
    finally:
        await connector.aclose()


async def test_the_service_listing_is_paged(kit: HerzumKit) -> None:
    for n in range(120):
        kit.sandbox.add_approval(kit.sandbox.add_issue(f"BULK-{n}", f"Item {n}"), ["carol"])
    connector = kit.build()
    try:
        items = await connector.fetch_pending(())
        assert len({i.external_id for i in items}) == 120
        service = [r for r in kit.sandbox.served if "issueapprovals?" in r and "username" not in r]
        assert [("startAt=0" in r, "startAt=50" in r, "startAt=100" in r) for r in service] == [
            (True, False, False),
            (False, True, False),
            (False, False, True),
        ]
        kit.sandbox.kit.served.clear()
        await connector.fetch_pending(())
        assert not [r for r in kit.sandbox.served if "/rest/api/2/issue/" in r], (
            "issue keys are cached; the issue's status comes with the approval"
        )
    finally:
        await connector.aclose()


async def test_a_personal_access_token_is_sent_as_bearer_and_a_password_as_basic(kit: HerzumKit) -> None:
    token = kit.sandbox.credentials("alice", token=True)
    password = kit.sandbox.credentials("alice")
    connector = kit.build()
    try:
        kit.sandbox.log.clear()
        me = await connector.verify(token)
        assert (me.user_id, me.email) == ("alice", ALICE.email)
        assert kit.sandbox.log == [("GET", "/rest/api/2/myself", "Bearer")], "a token is never sent as Basic"
        kit.sandbox.log.clear()
        assert (await connector.verify(password)).user_id == "alice"
        assert [scheme for *_, scheme in kit.sandbox.log] == ["Basic"]
        with pytest.raises(AuthExpired):
            await connector.verify({"username": "alice", "secret": "not-her-password"})
        with pytest.raises(AuthExpired):
            await connector.verify({"username": "alice", "secret": token["secret"][:-4] + "AAAA"})
        # A decision made with the token, as Alice.
        kit.sandbox.add_approval(kit.sandbox.add_issue("OPS-7", "Token decision"), ["alice"])
        (item,) = await connector.fetch_pending(_alice())
        after = await connector.act(item, Action.APPROVE, replace(kit.actor(ALICE), credentials=token))
        assert after.status is Status.APPROVED
        assert kit.sandbox.decisions == [(item.external_id, "approve", "alice")]
    finally:
        await connector.aclose()


async def test_a_token_shaped_password_still_links(kit: HerzumKit) -> None:
    odd = "A" * 40  # looks like a token, is Bob's password: Bearer is refused, then Basic works
    kit.sandbox.users["bob"].password = odd
    connector = kit.build()
    try:
        me = await connector.verify({"username": "bob", "secret": odd})
        assert me.user_id == "bob"
        assert [scheme for *_, scheme in kit.sandbox.log] == ["Bearer", "Basic"]
    finally:
        await connector.aclose()


async def test_a_service_account_token_and_a_rate_limit(kit: HerzumKit) -> None:
    kit.sandbox.add_approval(kit.sandbox.add_issue("OPS-2", "Limited"), ["bob"])
    kit.sandbox.rate_limit_next = 1
    connector = kit.build(token=True)
    try:
        (item,) = await connector.fetch_pending([LinkedUser(BOB.slack_id, "bob", BOB.email)])
        assert [p.id for p in item.recipients] == ["bob"]
        assert {scheme for *_, scheme in kit.sandbox.log if scheme != " "} == {"Bearer"}
        assert connector.vendor_label == "Herzum Approval (Jira)"
    finally:
        await connector.aclose()


async def test_an_unlinked_approvers_item_is_carded_in_the_channel(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HerzumKit
) -> None:
    kit.sandbox.add_approval(kit.sandbox.add_issue("FIN-9", "Quarterly accruals"), ["carol"])
    bot = await start_kit_bot(
        kit, "approvals", channel="C0APPROVALS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        await bot.poll()
        card = bot.card("C0APPROVALS", "Quarterly accruals")
        assert "Herzum Approval (Jira)" in card.render()
    finally:
        await bot.stop()
