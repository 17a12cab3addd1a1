"""An Approval Path group step reaches each member of the Jira group in their DM, saying why; a
member whose email Jira hides is named on the channel's copy."""

from __future__ import annotations

from bot.sandbox.slack_api import SlackSandbox
from connectors.approval_path.sandbox import ApprovalPathSandbox
from connectors.people import ALICE, BOB, CAROL
from tests.harness import Bot, connector_config, start_bot


async def test_each_member_of_a_group_step_gets_the_card_and_a_hidden_email_is_named_in_the_channel(
    db_url: str, secret_key: str, slack: SlackSandbox, approval_path_sandbox: ApprovalPathSandbox
) -> None:
    sandbox = approval_path_sandbox
    hidden = "557058:hidden-0000-4000-8000-000000000009"
    sandbox.jira.add_user(hidden, "Pat Private", "pat@example.com", email_hidden=True)
    group = sandbox.add_group("release-managers", [BOB, CAROL, hidden], group_id="group-rm")
    definition = sandbox.add_definition("Release approval", [sandbox.group_step(group)], project="OPS")
    issue = sandbox.add_issue("OPS", "Ship the ledger")
    sandbox.start_path(issue, definition, by=ALICE)
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
            text = bot.card(member, "Ship the ledger").render()
            assert "You are in Step 1: Group release-managers" in text
            assert "[Connect" not in text, "Approval Path acts through the email mapping: no linking first"
        channel = bot.card("C0APPROVALS", "Ship the ledger").render()
        assert "Not found in Slack, so carded here: Pat Private" in channel
        assert not [m for m in bot.cards("U0DAVE") if "Ship the ledger" in m.render()]
        await bot.command("bob", "list")
        assert "Release approval on OPS-1" in await bot.wait_private("bob", "waiting on you")
        await bot.command("dave", "list")
        assert "OPS-1" not in await bot.wait_private("dave", "Nothing waits on you")
    finally:
        await bot.stop()
