"""Harness names who may decide: each step's user groups resolved to their members (paged, cached),
a group the service token may not read kept without people (and named by `check`), and a person's
queue holding only the steps of their groups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.harness.groups import group_refs
from connectors.people import ALICE, BOB, CAROL, DAVE
from tests.contract.kits.harness import HarnessKit
from tests.harness import start_kit_bot, submit_harness_key
from tests.running import started


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def kit() -> AsyncIterator[HarnessKit]:
    k = HarnessKit()
    k.sandbox.add_group("sre_leads", [ALICE, BOB], display="SRE leads")
    async with started(k):
        yield k


async def _check(kit: HarnessKit) -> str:
    """What `approvals-bot check` prints for this connector, from a fresh one as the CLI builds."""
    connector = kit.build()
    try:
        return await connector.check()
    finally:
        await connector.aclose()


def _member_calls(kit: HarnessKit) -> list[str]:
    return [r for r in kit.sandbox.served if r.startswith("POST /ng/api/user-groups/")]


async def test_a_steps_groups_name_their_members_with_emails(kit: HarnessKit) -> None:
    kit.sandbox.add_group("account._account_all_users", [CAROL])
    kit.sandbox.add_group("org.release_managers", [DAVE], display="Release managers")
    kit.sandbox.add_waiting(groups=["sre_leads", "account._account_all_users", "org.release_managers"])
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending()
        assert [(g.name, [(p.id, p.email) for p in g.approvers]) for g in item.groups] == [
            ("SRE leads", [("u-alice", ALICE.email), ("u-bob", BOB.email)]),
            ("All Account Users", [("u-carol", CAROL.email)]),
            ("Release managers", [("u-dave", DAVE.email)]),
        ]
        assert {p.email for p in item.recipients} == {ALICE.email, BOB.email, CAROL.email, DAVE.email}
        assert not item.channel_card, "everyone is named"
        scopes = _member_calls(kit)
        assert any("/_account_all_users/users?accountIdentifier=acct1&pageIndex" in r for r in scopes)
        assert any(
            "/release_managers/users?accountIdentifier=acct1&orgIdentifier=default&pageIndex" in r
            for r in scopes
        )
        assert any(
            "/sre_leads/users?accountIdentifier=acct1&orgIdentifier=default&projectIdentifier=payments" in r
            for r in scopes
        )
    finally:
        await connector.aclose()


async def test_an_older_harness_without_validated_groups_gets_readable_names(kit: HarnessKit) -> None:
    kit.sandbox.send_validated = False
    kit.sandbox.add_group("_project_all_approvers", [CAROL])
    kit.sandbox.add_waiting(groups=["_project_all_approvers"])
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending()
        assert item.groups[0].name == "Project all approvers"
        assert "_project_all_approvers" not in item.title + " ".join(f.value for f in item.fields)
        assert [p.email for p in item.recipients] == [CAROL.email]
    finally:
        await connector.aclose()


async def test_members_are_paged_and_read_once_per_page_then_cached(kit: HarnessKit) -> None:
    crowd = [f"dev{n:03d}@example.com" for n in range(150)]
    kit.sandbox.add_group("everyone", crowd, display="Everyone")
    kit.sandbox.add_waiting(groups=["everyone", "sre_leads"])
    kit.sandbox.add_waiting(groups=["everyone"])  # the same group on a second step: not read twice
    clock = Clock()
    connector = kit.build(membership_ttl=timedelta(minutes=20), clock=clock)
    try:
        items = await connector.fetch_pending()
        assert {len(i.recipients) for i in items} == {150, 152}
        calls = _member_calls(kit)
        assert sum("/everyone/" in r for r in calls) == 2, "two pages of 100, each read once"
        assert sum("/sre_leads/" in r for r in calls) == 1
        kit.sandbox.kit.served.clear()
        again = await connector.fetch_pending()
        assert _member_calls(kit) == [], "nothing due for refresh: no membership call"
        assert [i.fingerprint() for i in again] == [i.fingerprint() for i in items]
        kit.sandbox.groups["sre_leads"].add(CAROL.email)
        clock.now += 21 * 60
        refreshed = await connector.fetch_pending()
        assert len(_member_calls(kit)) == 3, "after the TTL each group is read again, once per page"
        first = next(i for i in refreshed if len(i.groups) == 2)
        assert CAROL.email in {p.email for p in first.groups[1].approvers}
    finally:
        await connector.aclose()


async def test_a_group_the_token_may_not_read_keeps_the_step_for_the_channel(kit: HarnessKit) -> None:
    kit.sandbox.add_group("auditors", [CAROL], display="Auditors")
    kit.sandbox.unviewable.add("auditors")
    kit.sandbox.add_waiting(groups=["auditors", "sre_leads"])
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending()
        auditors, leads = item.groups
        assert (auditors.name, auditors.approvers) == ("Auditors", ())
        assert [p.id for p in leads.approvers] == ["u-alice", "u-bob"]
        assert item.channel_card, "someone may decide who cannot be named: the channel keeps it"
        kit.sandbox.kit.served.clear()
        await connector.fetch_pending()
        assert _member_calls(kit) == [], "a refusal is remembered too, not asked every poll"
        assert "Auditors" in (line := await _check(kit)) and "core_usergroup_view" in line
        kit.sandbox.unviewable.clear()
        assert "core_usergroup_view" not in await _check(kit)
    finally:
        await connector.aclose()


async def test_a_member_gets_a_dm_card_and_a_non_member_neither_card_nor_queue_entry(
    db_url: str, secret_key: str, slack: SlackSandbox, kit: HarnessKit
) -> None:
    kit.sandbox.add_waiting(groups=["sre_leads"], message="Roll out the new ingress?")
    bot = await start_kit_bot(
        kit, "pipelines", channel="C0DEPLOYS", database_url=db_url, secret_key=secret_key, slack=slack
    )
    try:
        for user in ("alice", "dave"):
            await bot.command(user, "connect pipelines")
            await submit_harness_key(bot, user, kit.sandbox.key(user))
        await bot.poll()
        card = bot.card("U0ALICE", "Roll out the new ingress?")
        assert "SRE leads" in card.render()
        assert not [m for m in bot.cards("U0DAVE") if "ingress" in m.render()]
        await bot.command("dave", "list")
        assert "deploy prod" not in await bot.wait_private("dave", "Nothing waits on you")
        await bot.command("alice", "list")
        assert "deploy prod" in await bot.wait_private("alice", "1 approval waiting on you")
    finally:
        await bot.stop()


async def test_a_thousand_approvers_in_a_hundred_groups_cost_one_call_per_page_then_none(
    kit: HarnessKit,
) -> None:
    for g in range(100):
        kit.sandbox.add_group(f"team_{g:02d}", [f"p{g:02d}x{n}@example.com" for n in range(10)])
    for g in range(0, 100, 2):  # fifty steps, each naming two groups
        kit.sandbox.add_waiting(groups=[f"team_{g:02d}", f"team_{g + 1:02d}"])
    connector = kit.build()
    try:
        items = await connector.fetch_pending()
        assert len({p.email for i in items for p in i.recipients}) == 1000
        assert len(_member_calls(kit)) == 100, "each group's members call once (one page of 10)"
        kit.sandbox.kit.served.clear()
        await connector.fetch_pending()
        assert _member_calls(kit) == [], "a no-change sync makes no membership call"
    finally:
        await connector.aclose()


def test_group_references_in_either_spelling_keep_their_scope() -> None:
    older = {"approvers": {"userGroups": ["account._account_all_users", "org.ops", "sre_leads"]}}
    assert [(r.org, r.project, r.identifier, r.name) for r in group_refs(older, "default", "payments")] == [
        (None, None, "_account_all_users", "All Account Users"),
        ("default", None, "ops", "Ops"),
        ("default", "payments", "sre_leads", "Sre leads"),
    ]
    snake = {
        "validated_approval_user_groups": [
            {"identifier": "ops", "name": "Operations", "org_identifier": "eu", "project_identifier": None}
        ],
        "approvers": {"userGroups": ["org.ops"]},
    }
    (ref,) = group_refs(snake, "default", "payments")
    assert (ref.org, ref.project, ref.name) == ("eu", None, "Operations")
