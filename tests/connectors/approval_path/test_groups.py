"""Approval Path group steps reach each member: Jira Cloud's group member API (paged, cached),
emails as Jira shows them, and a card that says so when a profile hides one."""

from __future__ import annotations

from datetime import timedelta

from bot.sandbox.slack_api import SlackSandbox
from connectors.approval_path import ApprovalPathSettings
from connectors.approval_path.connector import HIDDEN_EMAILS, ApprovalPathConnector
from connectors.approval_path.sandbox import ACCOUNTS, ApprovalPathSandbox
from connectors.people import ALICE, BOB, CAROL, DAVE
from tests.connectors.approval_path import Clock
from tests.harness import Bot, connector_config, start_bot


def _connector(sandbox: ApprovalPathSandbox, clock: Clock, **options: object) -> ApprovalPathConnector:
    settings = ApprovalPathSettings.model_validate(sandbox.connector_settings())
    return ApprovalPathConnector("paths", settings, timeout=2.0, clock=clock, **options)  # type: ignore[arg-type]


def _member_reads(sandbox: ApprovalPathSandbox) -> int:
    return sum(1 for method, path in sandbox.requests if path == "/jira/rest/api/3/group/member")


def _group_path(sandbox: ApprovalPathSandbox, members: list[object], name: str = "release-managers") -> str:
    """A running path whose only step is the group `name`; its external id."""
    group = sandbox.add_group(name, members, group_id=f"group-{name}")  # type: ignore[arg-type]
    definition = sandbox.add_definition("Release approval", [sandbox.group_step(group)], project="OPS")
    issue = sandbox.add_issue("OPS", "Ship the ledger")
    return f"{issue}:{sandbox.start_path(issue, definition, by=ALICE)}"


async def test_a_group_step_names_every_member_across_pages(sandbox: ApprovalPathSandbox) -> None:
    crowd = [f"557058:crowd-{n:03d}" for n in range(120)]
    for n, account in enumerate(crowd):
        sandbox.jira.add_user(account, f"Crowd {n}", f"crowd{n}@example.com")
    external_id = _group_path(sandbox, [BOB, CAROL, *crowd])
    connector = _connector(sandbox, Clock())
    try:
        (item,) = [i for i in await connector.fetch_pending() if i.external_id == external_id]
        (group,) = item.groups
        assert group.name == "Step 1: Group release-managers"
        assert len(group.approvers) == 122
        assert {(p.id, p.email) for p in group.approvers} >= {
            (ACCOUNTS[BOB.email], BOB.email),
            (ACCOUNTS[CAROL.email], CAROL.email),
        }
        assert len(item.recipients) == 122
        assert not item.channel_card and HIDDEN_EMAILS not in item.notices
        assert _member_reads(sandbox) == 3, "50 a page: three pages, each read once"
    finally:
        await connector.aclose()


async def test_a_hidden_email_keeps_the_person_and_tells_the_card(sandbox: ApprovalPathSandbox) -> None:
    hidden = "557058:hidden-0000-4000-8000-000000000009"
    sandbox.jira.add_user(hidden, "Pat Private", "pat@example.com", email_hidden=True)
    external_id = _group_path(sandbox, [CAROL, hidden])
    connector = _connector(sandbox, Clock())
    try:
        (item,) = [i for i in await connector.fetch_pending() if i.external_id == external_id]
        assert {(p.name, p.email) for p in item.groups[0].approvers} == {
            (CAROL.name, CAROL.email),
            ("Pat Private", None),
        }
        assert item.channel_card, "Pat cannot be reached by email: the channel keeps the card"
        assert HIDDEN_EMAILS in item.notices
    finally:
        await connector.aclose()


async def test_members_are_cached_until_their_ttl(sandbox: ApprovalPathSandbox) -> None:
    external_id = _group_path(sandbox, [BOB])
    clock = Clock()
    connector = _connector(sandbox, clock, membership_ttl=timedelta(minutes=30))
    try:
        await connector.fetch_pending()
        assert _member_reads(sandbox) == 1
        sandbox.groups["group-release-managers"][1].add(ACCOUNTS[DAVE.email])  # Dave joins in Jira
        clock.now += timedelta(minutes=20)  # past recheck_after (15 min): the path is read again
        (item,) = [i for i in await connector.fetch_pending() if i.external_id == external_id]
        assert _member_reads(sandbox) == 1, "membership not due for refresh: no call"
        assert [p.email for p in item.recipients] == [BOB.email]
        clock.now += timedelta(minutes=20)
        (item,) = [i for i in await connector.fetch_pending() if i.external_id == external_id]
        assert _member_reads(sandbox) == 2
        assert {p.email for p in item.recipients} == {BOB.email, DAVE.email}
    finally:
        await connector.aclose()


async def test_a_group_jira_will_not_list_stays_for_the_channel(sandbox: ApprovalPathSandbox) -> None:
    sandbox.jira.browse_users = False
    external_id = _group_path(sandbox, [BOB, CAROL])
    connector = _connector(sandbox, Clock())
    try:
        (item,) = [i for i in await connector.fetch_pending() if i.external_id == external_id]
        assert item.groups[0].name == "Step 1: Group release-managers"
        assert item.groups[0].approvers == () and item.recipients == ()
        assert item.channel_card
        checker = _connector(sandbox, Clock())
        try:
            line = await checker.check()
        finally:
            await checker.aclose()
        assert "release-managers" in line and "Browse users and groups" in line
    finally:
        await connector.aclose()


async def test_a_group_step_reaches_each_member_in_slack(
    db_url: str, secret_key: str, slack: SlackSandbox, sandbox: ApprovalPathSandbox
) -> None:
    _group_path(sandbox, [BOB, CAROL])
    bot: Bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config("paths", "approval_path", sandbox.connector_settings(), channel="C0APPROVALS")
        ],
    )
    try:
        await bot.poll()
        for member in ("U0BOB", "U0CAROL"):
            assert "Release approval" in bot.card(member, "Ship the ledger").render()
        assert not [m for m in bot.cards("U0DAVE") if "Ship the ledger" in m.render()]
    finally:
        await bot.stop()
