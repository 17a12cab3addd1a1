"""Approval Path through Slack: a path started with /approvals start, and one cancelled from its card."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.slack_api import SlackSandbox
from connectors.approval_path.sandbox import demo
from connectors.registry import SandboxSetup
from tests.harness import Bot, connector_config, start_bot
from tests.running import stopping


@pytest.fixture
async def paths() -> AsyncIterator[SandboxSetup]:
    setup = await demo()
    async with stopping(setup):
        yield setup


async def test_start_and_cancel_a_path_as_the_clicker(
    db_url: str, secret_key: str, slack: SlackSandbox, paths: SandboxSetup
) -> None:
    sandbox = paths.extra["sandbox"]
    bot: Bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[connector_config("paths", "approval_path", dict(paths.connector), channel="C0APPROVALS")],
    )
    try:
        await bot.command("alice", "connect paths")
        await bot.wait_private("alice", "Linked")
        await bot.poll()
        card = bot.card("U0ALICE", "Change approval")
        assert "[Cancel path]" in card.render()
        assert "[Approve]" not in card.render(), "Approval Path has no approve call"

        rotate = next(k for k, i in sandbox.jira.issues.items() if "Rotate" in i.summary)
        await bot.command("alice", f"start paths {rotate}")
        modal = await slack.wait_for(lambda: slack.open_modals("alice"), what="the start modal")
        assert "Change approval" in modal[-1].render()
        result = await slack.submit_view(bot.url, user="alice", values={"What to start": "Change approval"})
        assert result.closed
        await bot.wait_private("alice", "Started")
        assert sandbox.approvals.get(rotate), "the path now runs on the issue"

        await bot.click("alice", card, "Cancel path")
        await slack.wait_for(lambda: slack.open_modals("alice"), what="the cancel modal")
        result = await slack.submit_view(bot.url, user="alice", values={"Leave a comment on the issue": True})
        assert result.closed
        text = await bot.wait_card(card, "Cancelled")
        assert "[Cancel path]" not in text
        deploy = next(i for i in sandbox.jira.issues.values() if "Deploy payments" in i.summary)
        assert any("deleted" in text for _, text in deploy.comments), "the comment was left on the issue"
    finally:
        await bot.stop()
