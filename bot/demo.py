"""`approvals-bot demo`: every vendor sandbox, a local Slack, the bot and SQLite on this machine.

Why a real run and not a slideshow: the demo is the same Runtime as production, pointed at
simulators. A person opens the Slack sandbox's page in a browser (cards are also printed as text in
the terminal) and clicks there; the sandbox signs and posts each interaction to the bot exactly as
Slack would. The cast is seeded so each way of meeting the bot shows: Alice linked everywhere, Bob
linked nowhere (he meets the link prompt), Carol found by email only, Rita recruiting in Greenhouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.blocks import Message
from bot.config import Config, ConnectorConfig, Reminders
from bot.runtime import Runtime, SlackSettings
from bot.sandbox.render import blocks_to_text
from bot.sandbox.slack_api import Channel, SlackSandbox
from bot.sandbox.vendor_panel import panels_for
from bot.server import build_web
from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.people import ALICE, BOB, CAROL, CAST, DAVE, MALLORY, DemoPerson
from connectors.registry import SandboxSetup, specs
from store.crypto import CredentialBox

log = logging.getLogger(__name__)

SIGNING_SECRET = "demo-signing-secret-not-for-production"
BOT_TOKEN = "xoxb-demo-sandbox"
CHANNELS = {"flexdeploy": "C0DEPLOYS"}
DEFAULT_CHANNEL = "C0APPROVALS"
# Flow notices ("the offer for Jordan was approved") go to their own channel, so #approvals shows
# one card per item and not a card plus a status line for the same thing.
NOTICES = Channel("C0APPROVALLOG", "approval-log")
# Greenhouse's recruiter: the person who reassigns approvers (found in Greenhouse by email).
RITA = DemoPerson("rita", "Rita Recruiter", "rita.recruiter@example.com", "U0RITA", "Europe/Berlin")
PEOPLE = (*CAST, RITA)
# Who is linked from the start, so a click works at once. Bob is linked nowhere and meets the link
# prompt; Carol is never linked by hand: vendors that match by email find her.
PRELINKED = (ALICE.email,)
ROLES = {
    ALICE.slack_id: "approver, linked everywhere",
    BOB.slack_id: "approver, linked nowhere yet",
    CAROL.slack_id: "approver, found by email only",
    RITA.slack_id: "Greenhouse recruiter",
    DAVE.slack_id: "requester",
    MALLORY.slack_id: "no vendor account",
}
# Herzum is set to ask for a comment (in the sandbox and in the connector), so the tour shows it.
TOUR_SETTINGS: dict[str, dict[str, Any]] = {"herzum": {"require_comment": True}}
# Reminders in seconds, at any hour, so one arrives while a newcomer is still looking.
DEMO_REMINDERS = Reminders(
    first_after=timedelta(seconds=5),
    every=timedelta(minutes=2),
    max=3,
    working_hours=(time(0, 0), time(23, 59, 59)),
    working_days=frozenset(range(7)),
)


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


async def _start_vendor_sandboxes(
    poll_interval: str,
) -> tuple[dict[str, SandboxSetup], list[ConnectorConfig]]:
    """A seeded sandbox per vendor that has one, and the [[connectors]] entry pointing at it."""
    sandboxes: dict[str, SandboxSetup] = {}
    connectors: list[ConnectorConfig] = []
    from bot.config import parse_duration

    for type_name, spec in specs().items():
        if spec.demo is None:
            continue
        setup = await spec.demo()
        sandboxes[type_name] = setup
        _tune_for_the_tour(type_name, setup)
        settings = spec.settings.model_validate(dict(setup.connector) | TOUR_SETTINGS.get(type_name, {}))
        connectors.append(
            ConnectorConfig(
                name=type_name.replace("_", "-"),
                type=type_name,
                poll_interval=parse_duration(poll_interval),
                channel=CHANNELS.get(type_name, DEFAULT_CHANNEL),
                reminders=DEMO_REMINDERS,
                settings=settings,
            )
        )
    return sandboxes, connectors


async def start_demo(
    *,
    port: int = 3000,
    workdir: str | Path = "./demo-data",
    poll_interval: str = "15s",
    out: Callable[[str], None] = print,
    slack_port: int | None = None,
) -> Demo:
    """Slack sandbox, vendor sandboxes, the bot on SQLite in `workdir`, Alice pre-linked; the
    background work starts last, once every printer and panel is in place."""
    folder = Path(workdir)
    secret_key = _demo_key(folder)

    if slack_port is None:
        slack_port = port + 1 if port else 0
    slack = await _start_slack(slack_port)

    sandboxes, connectors = await _start_vendor_sandboxes(poll_interval)
    config = Config(connectors=tuple(connectors), notify_channel=NOTICES.id, source="demo")
    runtime = Runtime(
        config=config,
        database_url=f"sqlite+aiosqlite:///{(folder / 'approvals.db').resolve()}",
        secret_key=secret_key,
        slack=SlackSettings(token=BOT_TOKEN, api_url=f"{slack.url}/api/", signing_secret=SIGNING_SECRET),
    )
    await runtime.start(background=False)

    printed: list[str] = []
    runtime.delivery.on_card = _card_printer(slack.url, out, printed)
    slack.on_post = _private_printer(out)

    for type_name, setup in sandboxes.items():
        name = type_name.replace("_", "-")
        await _prelink(runtime, runtime.connectors[name], name, setup)

    slack.vendor_controls = panels_for(
        {t: s.extra["sandbox"] for t, s in sandboxes.items() if "sandbox" in s.extra}
    )
    runner, bot_url = await _serve_bot(runtime, port, page=f"{slack.url}/")
    slack.bot_url = bot_url
    slack.intro = INTRO
    demo = Demo(
        runtime=runtime, slack=slack, sandboxes=sandboxes, bot_url=bot_url, runner=runner, printed=printed
    )
    runtime._start_background()
    return demo


def _card_printer(
    slack_url: str, out: Callable[[str], None], printed: list[str]
) -> Callable[[str, str, Message, str], Awaitable[None]]:
    """Each card posted or updated, printed as text with the curl that clicks it as Alice: the
    terminal tells the tour as well as the page does."""

    async def show(channel: str, ts: str, message: Message, kind: str) -> None:
        text = blocks_to_text(message.blocks)
        where = "posted to" if kind == "post" else "updated in"
        lines = [f"\n── card {where} {channel} (ts {ts}) ──", text]
        buttons = [b for b in ("Approve", "Reject") if f"[{b}]" in text]
        if buttons:
            body = json.dumps({"user": "alice", "channel": channel, "ts": ts, "label": buttons[0]})
            lines.append(f"   click as Alice: curl -s -X POST {slack_url}/sandbox/click -d '{body}'")
        chunk = "\n".join(lines)
        printed.append(chunk)
        out(chunk)

    return show


def _private_printer(
    out: Callable[[str], None],
) -> Callable[[str, str, str, list[dict[str, Any]], str], Awaitable[None]]:
    """The bot's private (ephemeral) answers, printed: only the clicker sees them on the page."""

    async def show_private(channel: str, ts: str, text: str, blocks: list[dict[str, Any]], kind: str) -> None:
        if kind == "ephemeral":
            out(f"\n── private answer in {channel} ──\n{blocks_to_text(blocks) if blocks else text}")

    return show_private


async def _start_slack(port: int) -> SlackSandbox:
    slack = SlackSandbox(signing_secret=SIGNING_SECRET, token=BOT_TOKEN, people=PEOPLE)
    slack.add_channel(NOTICES)
    slack.roles = ROLES
    await slack.start(port=port)
    return slack


async def _serve_bot(runtime: Runtime, port: int, *, page: str) -> tuple[web.AppRunner, str]:
    """The bot's HTTP endpoint on 127.0.0.1:`port`; returns its runner and Slack events URL."""
    web_app = build_web(runtime)

    async def to_the_page(request: web.Request) -> web.Response:
        raise web.HTTPFound(page)  # the bot's own port: send a person to the page, not a 404

    web_app.router.add_get("/", to_the_page)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


INTRO = (
    "*1.* You are Alice (switch at the top right): in #deploys press *Approve* on the release gate, "
    "or *Reject* on another card and give a reason.",
    "*2.* Switch to *Bob* and press Approve: he is linked nowhere, so the bot asks him to connect first.",
    "*3.* Open *Home* to approve several at once, *Vendors* to act in a vendor; reminders reach your DM.",
)


def _tune_for_the_tour(type_name: str, setup: SandboxSetup) -> None:
    """Small settings of the seeded sandboxes that make the tour show each kind of approval."""
    sandbox = setup.extra.get("sandbox")
    if type_name == "herzum" and sandbox is not None:
        sandbox.require_comment = True  # Herzum's "comment required" setting: the card asks for one


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
    people = "; ".join(f"{p.handle} ({ROLES.get(p.slack_id, '')})" for p in PEOPLE)
    return f"""
approvals-bot demo — everything runs on this machine, nothing leaves it.

  Open {slack}/ in a browser: a Slack-like page where you click, reject with a reason, link
  accounts and watch reminders arrive. Every click there reaches the bot signed, as Slack sends it.

  bot            {demo.bot_url}   (also /healthz and /metrics)
  Slack sandbox  {slack}/api/  — every message as text: {slack}/sandbox/messages
  connectors     {names}
  people         {people}

Cards also appear below as they are posted. To click a button from a terminal, as Slack would:
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
