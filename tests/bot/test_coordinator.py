"""An admin with many connectors: at start the scheduler syncs every one of them at once."""

from __future__ import annotations

import asyncio

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import connector_config, start_bot

# More than the database pool holds (5 connections, 10 more on demand).
TEAMS = 24


async def test_every_connector_syncing_at_once_succeeds_and_cards_each_item(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    fd.add_group("Release approvers", ["alice"])
    fd.add_project_task(
        project="Ledger export", version="2.0.0", group="Release approvers", requestor_path="x"
    )
    settings = fd.connector_settings()
    bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[connector_config(f"team{n:02d}", "flexdeploy", settings) for n in range(TEAMS)],
    )
    try:
        # Each sync holds one pooled connection for its transaction; one that asked for a second
        # inside it waited on the others, all of them, until the pool gave up after 30 s.
        results = await asyncio.wait_for(
            asyncio.gather(*(c.run_once() for c in bot.runtime.coordinators.values())), timeout=25
        )
        assert [r.error for r in results if not r.ok] == []
        await bot.settle(timeout=20)
        cards = [m for m in bot.cards("C0DEPLOYS") if "Ledger export" in m.render()]
        assert len(cards) == TEAMS, "one card per connector listing the deployment"
    finally:
        await bot.stop()
