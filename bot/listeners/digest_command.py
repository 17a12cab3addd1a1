"""`/approvals digest on|off`: the daily DM of everything waiting on you, at the start of your day."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.blocks import Message
from bot.listeners.deps import Deps
from store.reminders import set_digest


def register(app: AsyncApp, deps: Deps) -> None:
    deps.subcommands["digest"] = digest
    deps.help_lines.append("• `/approvals digest on|off`: a morning DM of everything waiting on you")


async def digest(deps: Deps, user: str, args: list[str], body: dict[str, Any]) -> Message:
    choice = args[0].lower() if args else ""
    if choice not in ("on", "off"):
        return blocks.notice("Usage: `/approvals digest on` or `/approvals digest off`.")
    await set_digest(deps.services.store.db, slack_user=user, enabled=choice == "on")
    if choice == "on":
        return blocks.notice(
            ":sunrise: Digest on: at the start of each of your working days (your Slack time zone) you get one DM "
            "listing everything waiting on you, oldest first."
        )
    return blocks.notice("Digest off. Cards and reminders still come as before.")
