"""The bot under measurement: the real Runtime and HTTP server against the FlexDeploy and Slack sandboxes.

Imports no sandbox: the worker that measures the bot's memory must hold only what the bot holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography.fernet import Fernet

from bot.config import Config, ConnectorConfig, Reminders
from bot.runtime import Runtime, SlackSettings, settle_heap
from bot.server import build_web
from bot.slack.gateway import Tiers
from connectors.flexdeploy import FlexDeploySettings
from connectors.people import ALICE


@dataclass
class Bench:
    runtime: Runtime
    url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.runtime.stop()


async def start(
    *,
    folder: Path,
    slack: SlackSettings,
    flexdeploy: dict[str, Any],
    channel: str | None,
    rate: tuple[float, float],
    tiers: Tiers | None = None,
    background: bool = True,
    connectors: tuple[ConnectorConfig, ...] = (),
) -> Bench:
    """The real Runtime and HTTP server, pointed at sandboxes (in this process or a peer's)."""
    settings = FlexDeploySettings.model_validate(flexdeploy)
    config = Config(
        connectors=connectors
        or (ConnectorConfig("deploys", "flexdeploy", timedelta(seconds=60), channel, Reminders(), settings),)
    )
    runtime = Runtime(
        config=config,
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        secret_key=Fernet.generate_key().decode(),
        slack=slack,
        deliver_interval=0.01,
        slack_rate=rate,
        # Unless a benchmark enforces Slack's tiers (`tiers`), the sandbox enforces only
        # chat.postMessage's per-channel rate (`rate`); the other methods' tiers are then scaled out
        # of the way so the figures measure the bot, not Tier 3.
        slack_tiers=tiers or Tiers().scaled(1000.0),
    )
    await runtime.start(background=background, poll=False)
    runner = web.AppRunner(build_web(runtime), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    settle_heap()  # as `run` does once it listens
    return Bench(runtime, url, runner)


def click_body(external_id: str, *, user: str = ALICE.slack_id, channel: str = "C0DEPLOYS") -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": "T0SANDBOX"},
        "api_app_id": "A0APPROVALS",
        "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "deploys"},
        "trigger_id": f"{time.time()}.bench",
        "actions": [
            {
                "action_id": "card.approve",
                "block_id": "b",
                "type": "button",
                "value": f"1|deploys|{external_id}",
                "action_ts": str(time.time()),
            }
        ],
    }
    return "payload=" + quote(json.dumps(payload))
