"""Delivery lanes go independently: a channel whose work drains slowly (Tier 3's pace on
chat.update) does not hold up the cards of another channel, and Slack's limits hold (no 429)."""

from __future__ import annotations

import asyncio

from bot.sandbox.slack_api import SlackSandbox
from bot.slack.gateway import Tiers
from connectors.base import Status
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import connector_config, start_bot

SLOW, OTHER = "C0DEPLOYS", "C0APPROVALS"
# Slack's tiers times 6: chat.update (Tier 3) at 5 a second for the whole workspace.
FACTOR = 6.0


def _team(fd: FlexDeploySandbox, name: str, tasks: int) -> dict[str, str]:
    """An approval group listed by a service account of its own (so a connector of its own)."""
    fd.add_user(f"svc-{name}", f"Service {name}", None, password=f"{name}-password")
    fd.add_group(name, [f"svc-{name}"])
    for n in range(tasks):
        fd.add_project_task(project=f"{name} service {n}", version="1.0.0", group=name)
    return fd.connector_settings(username=f"svc-{name}", password=f"{name}-password")


async def test_a_slow_channel_does_not_hold_up_another_channels_cards(
    db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox
) -> None:
    bot = await start_bot(
        database_url=db_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[
            connector_config("slow", "flexdeploy", _team(fd, "slow", 20), channel=SLOW),
            connector_config("other", "flexdeploy", _team(fd, "other", 0), channel=OTHER),
        ],
        slack_tiers=Tiers(burst_seconds=1.0).scaled(FACTOR * 0.97),
    )
    try:
        await bot.poll()
        assert len(bot.cards(SLOW)) == 20
        slack.enforce_tiers(factor=FACTOR, burst_seconds=1.0)
        for task_id, task in list(fd.tasks.items()):
            if task.group == "slow":
                fd.decide(task_id, Status.APPROVED, "approved in FlexDeploy's UI")
        # Twenty "decided elsewhere" updates start draining at Tier 3's pace...
        await bot.runtime.coordinators["slow"].run_once()
        bot.runtime.delivery.kick()
        await asyncio.sleep(0.5)

        # ...when three new approvals come up for the other channel.
        for n in range(3):
            fd.add_project_task(project=f"other service {n}", version="1.0.0", group="other")
        await bot.runtime.coordinators["other"].run_once()
        bot.runtime.delivery.kick()
        await slack.wait_for(lambda: len(bot.cards(OTHER)) == 3, 1.5, what="the other channel's cards")

        waiting = await bot.runtime.store.outbox_size()
        assert waiting >= 5, f"the other channel's cards went once the slow backlog was done ({waiting} left)"
        await bot.settle(timeout=15)
        assert all("approved" in m.render().lower() for m in bot.cards(SLOW)), "the backlog is delivered too"
        assert slack.rate_limited_count == 0, "Slack's limits held"
    finally:
        await bot.stop()
