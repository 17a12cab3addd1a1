"""Herzum Approval for Jira: per-person listing with paging, the source-status rule, the
configuration switches (comment, password, abstain), and the whole loop through Slack."""

from __future__ import annotations

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.base import Action, LinkedUser, Status
from connectors.errors import InvalidInput, NotAllowed
from connectors.people import ALICE, BOB
from tests.contract.kits.herzum import HerzumKit
from tests.harness import start_kit_bot


async def test_listing_pages_and_merges_people_into_recipients(kit: HerzumKit) -> None:
    for n in range(120):  # more than two pages of 50
        issue = kit.sandbox.add_issue(f"BULK-{n}", f"Item {n}")
        kit.sandbox.add_approval(issue, ["alice", "bob"] if n == 0 else ["alice"])
    connector = kit.build()
    try:
        linked = [
            LinkedUser(ALICE.slack_id, "alice", ALICE.email),
            LinkedUser(BOB.slack_id, "bob", BOB.email),
        ]
        items = await connector.fetch_pending(linked)
        assert len(items) == 120
        first = next(i for i in items if i.title.startswith("BULK-0:"))
        assert [p.id for p in first.recipients] == ["alice", "bob"]
        assert first.url and first.url.endswith("/browse/BULK-0")
        assert any("startAt=50" in r for r in kit.sandbox.served), "paged with startAt/maxResults"
    finally:
        await connector.aclose()


async def test_an_issue_not_yet_in_its_source_status_has_no_buttons(kit: HerzumKit) -> None:
    issue = kit.sandbox.add_issue("OPS-9", "Not ready", status="3")
    kit.sandbox.add_approval(issue, ["alice"], source_status="10001")
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending(kit.linked())
        assert item.actions == ()
        assert "Awaiting approval" in item.notices[0]
        kit.sandbox.issues[issue]["status"] = "10001"
        (item,) = await connector.fetch_pending(kit.linked())
        assert [s.action for s in item.actions] == [Action.APPROVE, Action.REJECT]
    finally:
        await connector.aclose()


async def test_switches_comment_password_and_a_disabled_action(kit: HerzumKit) -> None:
    external_id = await kit.seed_pending()
    kit.sandbox.require_comment = True
    connector = kit.build(enable_abstain=True)
    try:
        item = (await connector.fetch_pending(kit.linked()))[0]
        with pytest.raises(InvalidInput) as caught:
            await connector.act(item, Action.APPROVE, kit.approver())
        assert caught.value.field == "comment"
        with pytest.raises(NotAllowed) as disabled:
            await connector.act(item, Action.ABSTAIN, kit.approver(), comment="no opinion")
        assert disabled.value.reason == "action_disabled"
        assert Action.ABSTAIN not in [
            s.action for s in (await connector.fetch_pending(kit.linked()))[0].actions
        ]
        kit.sandbox.require_password = True
        pw = kit.build(require_password=True, require_comment=True)
        try:
            item = (await pw.fetch_pending(kit.linked()))[0]
            spec = item.action(Action.APPROVE)
            assert spec is not None
            assert spec.comment == "required"
            assert [i.kind for i in spec.inputs] == ["password"]
            with pytest.raises(InvalidInput) as wrong:
                await pw.act(item, Action.APPROVE, kit.approver(), comment="ok", inputs={"password": "nope"})
            assert wrong.value.field == "password", "a mistyped password is bad input, not a broken link"
            after = await pw.act(
                item, Action.APPROVE, kit.approver(), comment="ok", inputs={"password": "alice-jira-password"}
            )
            assert after.status is Status.APPROVED
            assert kit.sandbox.decisions == [(external_id, "approve", "alice")]
        finally:
            await pw.aclose()
    finally:
        await connector.aclose()


async def test_the_loop_through_slack_with_a_dm_card(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HerzumKit
) -> None:
    external_id = await kit.seed_pending()
    bot = await start_kit_bot(
        kit, "approvals", channel="C0APPROVALS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        await bot.command("alice", "connect approvals")
        await slack.wait_for(lambda: slack.open_modals("alice"), what="the connect modal")
        result = await slack.submit_view(
            bot.url,
            user="alice",
            values={"Jira username": "alice", "Password or personal access token": "alice-jira-password"},
        )
        assert result.closed
        await bot.wait_private("alice", "Linked")
        await bot.poll()
        card = bot.card("U0ALICE", "Contract change")
        await bot.click("alice", card, "Approve")
        await bot.wait_card(card, "Approved")
        assert kit.sandbox.decisions == [(external_id, "approve", "alice")]
        # Decided in Jira: the next poll updates the card of another approval.
        other = await kit.seed_pending()
        await bot.poll()
        card2 = bot.card("U0ALICE", "Contract change 2")
        kit.sandbox.decide(int(other), "REJECTED", by="carol")
        await bot.poll()
        text = await bot.wait_card(card2, "Rejected")
        assert "carol" in text
    finally:
        await bot.stop()
