"""Greenhouse approvers are found in Slack by any of their addresses, primary first."""

from __future__ import annotations

from bot.sandbox.slack_api import SlackSandbox
from connectors.people import CAROL
from tests.contract.kits.greenhouse import GreenhouseKit
from tests.harness import Bot, start_bot


async def test_an_approver_known_to_slack_by_a_secondary_address_gets_the_dm(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse_kit: GreenhouseKit
) -> None:
    kit = greenhouse_kit
    # Greenhouse has Carol under her old address first; Slack knows her by her current one.
    carol = kit.sandbox.add_user("Carol Checker", "carol@old-domain.example", extra_emails=[CAROL.email])
    job = kit.new_job("Site Reliability Engineer")
    kit.sandbox.add_flow(job, [([carol], 1)], requested_by=kit.recruiter)
    bot: Bot = await start_bot(
        database_url=db_url, secret_key=secret_key, slack=slack, connectors=[kit.bot_config()]
    )
    try:
        await bot.poll()
        text = bot.card("U0CAROL", "Site Reliability Engineer").render()
        assert "You are in" in text
        channel = bot.card("C0APPROVALS", "Site Reliability Engineer").render()
        assert "Not found in Slack" not in channel, "found by her second address"
    finally:
        await bot.stop()
