"""`approvals-bot demo`: every vendor sandbox, a local Slack, the bot and SQLite on this machine.

Why a real run and not a slideshow: the demo is the same Runtime as production, pointed at
simulators. A person sees cards arrive as text in the terminal and clicks them through the Slack
sandbox, which signs and posts the interaction to the bot exactly as Slack would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.blocks import Message
from bot.config import Config, ConnectorConfig, Reminders
from bot.runtime import Runtime, SlackSettings
from bot.sandbox.render import blocks_to_text
from bot.sandbox.slack_api import SlackSandbox
from bot.server import build_web
from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.people import CAST
from connectors.registry import SandboxSetup, specs
from store.crypto import CredentialBox

log = logging.getLogger(__name__)

SIGNING_SECRET = "demo-signing-secret-not-for-production"
BOT_TOKEN = "xoxb-demo-sandbox"
CHANNELS = {"flexdeploy": "C0DEPLOYS"}
DEFAULT_CHANNEL = "C0APPROVALS"
# Who is linked from the start, so a click works at once; Carol is left to try "Connect".
PRELINKED = ("alice@example.com", "bob@example.com")


@dataclass
class Demo:
    runtime: Runtime
    slack: SlackSandbox
    sandboxes: dict[str, SandboxSetup]
    bot_url: str
    runner: web.AppRunner
    printed: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.runtime.stop()
        await self.slack.stop()
        for setup in self.sandboxes.values():
            await setup.stop()


async def start_demo(
    *,
    port: int = 3000,
    workdir: str | Path = "./demo-data",
    poll_interval: str = "15s",
    out: Callable[[str], None] = print,
    slack_port: int | None = None,
) -> Demo:
    folder = Path(workdir)
    secret_key = _demo_key(folder)

    slack = SlackSandbox(signing_secret=SIGNING_SECRET, token=BOT_TOKEN)
    if slack_port is None:
        slack_port = port + 1 if port else 0
    await slack.start(port=slack_port)

    sandboxes: dict[str, SandboxSetup] = {}
    connectors: list[ConnectorConfig] = []
    from bot.config import parse_duration

    for type_name, spec in specs().items():
        if spec.demo is None:
            continue
        setup = await spec.demo()
        sandboxes[type_name] = setup
        settings = spec.settings.model_validate(dict(setup.connector))
        connectors.append(
            ConnectorConfig(
                name=type_name.replace("_", "-"),
                type=type_name,
                poll_interval=parse_duration(poll_interval),
                channel=CHANNELS.get(type_name, DEFAULT_CHANNEL),
                reminders=Reminders(),
                settings=settings,
            )
        )
    config = Config(connectors=tuple(connectors), notify_channel=DEFAULT_CHANNEL, source="demo")
    runtime = Runtime(
        config=config,
        database_url=f"sqlite+aiosqlite:///{(folder / 'approvals.db').resolve()}",
        secret_key=secret_key,
        slack=SlackSettings(token=BOT_TOKEN, api_url=f"{slack.url}/api/", signing_secret=SIGNING_SECRET),
    )
    await runtime.start(background=False)

    demo_ref: dict[str, Demo] = {}

    async def show(channel: str, ts: str, message: Message, kind: str) -> None:
        text = blocks_to_text(message.blocks)
        where = "posted to" if kind == "post" else "updated in"
        lines = [f"\n── card {where} {channel} (ts {ts}) ──", text]
        buttons = [b for b in ("Approve", "Reject") if f"[{b}]" in text]
        if buttons:
            body = json.dumps({"user": "alice", "channel": channel, "ts": ts, "label": buttons[0]})
            lines.append(f"   click as Alice: curl -s -X POST {slack.url}/sandbox/click -d '{body}'")
        chunk = "\n".join(lines)
        if demo_ref:
            demo_ref["d"].printed.append(chunk)
        out(chunk)

    runtime.delivery.on_card = show

    async def show_private(channel: str, ts: str, text: str, blocks: list[dict[str, Any]], kind: str) -> None:
        if kind == "ephemeral":
            out(f"\n── private answer in {channel} ──\n{blocks_to_text(blocks) if blocks else text}")

    slack.on_post = show_private

    for type_name, setup in sandboxes.items():
        name = type_name.replace("_", "-")
        await _prelink(runtime, runtime.connectors[name], name, setup)

    runner = web.AppRunner(build_web(runtime), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    slack.bot_url = bot_url
    demo = Demo(runtime=runtime, slack=slack, sandboxes=sandboxes, bot_url=bot_url, runner=runner)
    demo_ref["d"] = demo
    runtime._start_background()
    return demo


def _demo_key(folder: Path) -> str:
    """The demo's own encryption key, kept in its folder so a restart can read what it stored."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret.key"
    if not key_file.exists():
        # Created 0600 in the same call that creates it (O_EXCL): never readable by others, not
        # even for the moment a chmod afterwards would leave open.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(CredentialBox.generate())
    return key_file.read_text().strip()


async def _prelink(runtime: Runtime, connector: Connector, name: str, setup: SandboxSetup) -> None:
    """Link the demo people the way they would link themselves (verify, then store encrypted)."""
    people = {p.email: p for p in CAST}
    for email, credentials in setup.people.items():
        person = people.get(email)
        if person is None or email not in PRELINKED:
            continue
        try:
            if connector.capabilities.link_mode == "email":
                identity = await connector.identify(email)
            else:
                identity = await connector.verify(credentials)
        except ConnectorError as exc:
            log.warning("demo: could not link %s to %s: %s", person.handle, name, exc)
            continue
        if identity is None:
            continue
        await runtime.store.link(
            slack_user_id=person.slack_id,
            connector=name,
            vendor_user_id=identity.user_id,
            display_name=identity.display_name or person.name,
            email=email,
            credentials=dict(credentials) or None,
        )


def _intro(demo: Demo) -> str:
    slack = demo.slack.url
    names = ", ".join(f"{n} ({c.vendor_label})" for n, c in demo.runtime.connectors.items())
    people = ", ".join(f"{p.handle} ({p.slack_id})" for p in CAST)
    return f"""
approvals-bot demo — everything runs on this machine, nothing leaves it.

  bot            {demo.bot_url}   (also /healthz and /metrics)
  Slack sandbox  {slack}/api/  — every message: {slack}/sandbox/messages
  connectors     {names}
  people         {people}
                 Alice and Bob are linked everywhere; Carol is not (try a click as carol).

Cards appear below as they are posted. To click a button, as Slack would:
  curl -s -X POST {slack}/sandbox/click -d '{{"user": "alice", "channel": "C0DEPLOYS", "ts": "<ts>", "label": "Approve"}}'
To run a slash command:
  curl -s -X POST {slack}/sandbox/command -d '{{"user": "alice", "text": "list"}}'
Press Ctrl-C to stop. The database is kept in the demo folder between runs.
"""


async def run_demo(*, port: int = 3000, workdir: str = "./demo-data") -> int:
    try:
        demo = await start_demo(port=port, workdir=workdir, out=lambda s: print(s, flush=True))
    except OSError as exc:
        print(
            f"error: could not start the demo: {exc.strerror or exc} (is port {port} or {port + 1} in use? "
            "try --port)",
            file=sys.stderr,
        )
        return 2
    print(_intro(demo), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("\nstopping the demo…", flush=True)
    await demo.stop()
    return 0
