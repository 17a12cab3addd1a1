"""/approvals and its subcommands. Every answer is private; unknown input gets help."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.ids import ViewId
from bot.listeners.deps import Deps, user_id
from bot.services import Origin
from connectors.base import Connector, Requestable
from connectors.errors import ConnectorError

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/approvals")
    async def approvals(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await approvals_command(deps, body)


async def approvals_command(deps: Deps, body: dict[str, Any]) -> None:
    """`/approvals SUB ARGS…`: one private answer, or a modal (then nothing to answer)."""
    user = user_id(body)  # a Slack id, or nothing (never a 30,000-character string)
    if user is None:
        return
    origin = Origin(channel=body.get("channel_id"), response_url=body.get("response_url"))
    words = str(body.get("text") or "").split()
    sub = words[0].lower() if words else "list"
    message = await _answer(deps, Command(user=user, args=words[1:], body=body, origin=origin), sub)
    if message is not None:
        await _tell(deps, user, origin, message)


@dataclass(frozen=True)
class Command:
    """One /approvals command as its subcommand's handler needs it."""

    user: str
    args: list[str]
    body: dict[str, Any]
    origin: Origin

    @property
    def trigger_id(self) -> Any:
        return self.body.get("trigger_id")


async def _answer(deps: Deps, command: Command, sub: str) -> blocks.Message | None:
    """The answer to `sub`, or None when a modal opened. Built-in subcommands come first, then
    those other modules add, then help; anything else gets help saying the word is unknown."""
    builtin = SUBCOMMANDS.get(_ALIASES.get(sub, sub))
    if builtin is not None:
        return await builtin(deps, command)
    if sub in deps.subcommands:
        answer: blocks.Message | None = await deps.subcommands[sub](
            deps, command.user, command.args, command.body
        )
        return answer
    if sub == "help":
        return await help_for(deps, command.user)
    return await help_for(deps, command.user, prefix=f"I don't know `{blocks.escape(sub)}`. ")


async def _list(deps: Deps, command: Command) -> blocks.Message | None:
    return await list_for(deps, command.user)


async def _connect(deps: Deps, command: Command) -> blocks.Message | None:
    if not command.args:
        return connectors_overview(deps, "Which one? `/approvals connect NAME`.")
    await open_connect(deps, command.user, command.args[0], command.trigger_id, command.origin)
    return None


async def _disconnect(deps: Deps, command: Command) -> blocks.Message | None:
    if not command.args:
        return connectors_overview(deps, "Which one? `/approvals disconnect NAME`.")
    return await deps.services.unlink(connector_name=command.args[0], slack_user=command.user)


async def _status(deps: Deps, command: Command) -> blocks.Message | None:
    return await status_for(deps, command.user)


async def _start(deps: Deps, command: Command) -> blocks.Message | None:
    await open_request(deps, command.user, command.args, command.trigger_id, command.origin)
    return None


# The built-in subcommands, each named in the manifest's usage_hint (tests/install/test_manifest.py checks).
SUBCOMMANDS: dict[str, Callable[[Deps, Command], Awaitable[blocks.Message | None]]] = {
    "list": _list,
    "connect": _connect,
    "disconnect": _disconnect,
    "status": _status,
    "start": _start,
}


# Other words people type for a subcommand, kept out of the usage hint.
_ALIASES = {"pending": "list", "ls": "list"}


async def _tell(deps: Deps, user: str, origin: Origin, message: blocks.Message) -> None:
    """A private answer where the command was typed."""
    await deps.gateway.tell(
        user=user, message=message, response_url=origin.response_url, channel=origin.channel
    )


async def status_for(deps: Deps, user: str) -> blocks.Message:
    admin = await deps.services.is_admin(user)
    lines = await deps.services.status_lines(detail=admin)
    note = "" if admin else "\n_Vendor errors, failure counts and sync times are shown to this bot's admins._"
    return blocks.notice(
        "*Connectors*\n" + ("\n".join(lines) or "No connectors are configured.") + (note if lines else "")
    )


async def list_for(deps: Deps, user: str) -> blocks.Message:
    states = await deps.services.pending_for(slack_user=user)
    linked = {i.connector for i in await deps.services.store.identities(slack_user_id=user)}
    unlinked = deps.services.unlinked_connectors(linked)
    hint = ""
    if unlinked:
        hint = (
            " Not linked yet: "
            + ", ".join(f"`{n}` ({label})" for n, label in unlinked)
            + " (`/approvals connect NAME`)."
        )
    count = len(states)
    title = f"{count} approval{'s' if count != 1 else ''} waiting on you"
    # A worker thread renders it: up to 50 blocks checked by slack_sdk (see publish_home).
    return await asyncio.to_thread(
        blocks.list_message, states, title=title, empty=f"Nothing waits on you right now. :tada:{hint}"
    )


async def help_for(deps: Deps, user: str, prefix: str = "") -> blocks.Message:
    linked = {i.connector for i in await deps.services.store.identities(slack_user_id=user)}
    rows = [(n, c.vendor_label, n in linked) for n, c in deps.services.connectors.items()]
    message = blocks.help_message(rows, extra=deps.help_lines)
    if prefix:
        message = blocks.notice(prefix + "Here is what I can do:")
        return blocks.Message(
            message.text, message.blocks + blocks.help_message(rows, extra=deps.help_lines).blocks
        )
    return message


def connectors_overview(deps: Deps, lead: str) -> blocks.Message:
    names = ", ".join(f"`{n}` ({c.vendor_label})" for n, c in deps.services.connectors.items())
    return blocks.notice(f"{lead} Connectors: {names or 'none configured'}.")


async def open_connect(deps: Deps, user: str, name: str, trigger_id: Any, origin: Origin) -> None:
    connector = deps.services.connectors.get(name)
    if connector is None:
        message = connectors_overview(deps, f"There is no connector named `{blocks.escape(name)}`.")
    elif connector.capabilities.link_mode == "email":
        message = await deps.services.link_by_email(connector_name=name, slack_user=user)
    else:
        view = blocks.connect_modal(
            connector_name=name,
            vendor_label=connector.vendor_label,
            fields=connector.credential_fields,
        )
        view["private_metadata"] = blocks.metadata_json({"c": name}, origin={"ch": origin.channel or ""})
        error = await deps.gateway.open_view(trigger_id=str(trigger_id or ""), view=view)
        if error is None:
            return
        log.info("views.open for connect failed: %s", error)
        message = _not_opened()
    await _tell(deps, user, origin, message)


async def open_request(deps: Deps, user: str, args: list[str], trigger_id: Any, origin: Origin) -> None:
    """`/approvals start NAME [TARGET]`: a modal listing what the person may start."""
    found = await _requestable(deps, user, args)
    if isinstance(found, blocks.Message):
        await _tell(deps, user, origin, found)
        return
    connector, target, options = found
    view = blocks.request_modal(
        connector_name=connector.name,
        vendor_label=connector.vendor_label,
        options=options,
        target=target,
        channel=origin.channel,
    )
    error = await deps.gateway.open_view(trigger_id=str(trigger_id or ""), view=view)
    if error is not None:
        await _tell(deps, user, origin, _not_opened())


async def _requestable(
    deps: Deps, user: str, args: list[str]
) -> tuple[Connector, str | None, list[Requestable]] | blocks.Message:
    """The connector, target and what the person may start there; or the answer saying why nothing."""
    services = deps.services
    if not args or args[0] not in services.connectors:
        return _start_usage(deps)
    connector = services.connectors[args[0]]
    target = args[1] if len(args) > 1 else None
    if not connector.capabilities.request:
        return blocks.notice(f"{connector.vendor_label} cannot start approvals from Slack.")
    actor = await services.actor(connector, user)
    if isinstance(actor, blocks.Message):
        return actor
    try:
        options = await connector.requestable(actor, target)
    except ConnectorError as exc:
        return blocks.notice(
            f"{connector.vendor_label} did not list what you can start: {blocks.escape(str(exc))}"
        )
    if not options:
        where = f" for {blocks.escape(target)}" if target else ""
        return blocks.notice(f"There is nothing you can start in {connector.vendor_label}{where} right now.")
    return connector, target, options


def _start_usage(deps: Deps) -> blocks.Message:
    """How `/approvals start` is typed, and which connectors can start approvals at all."""
    starters = [n for n, c in deps.services.connectors.items() if c.capabilities.request]
    return blocks.notice(
        "Usage: `/approvals start NAME [TARGET]`, e.g. `/approvals start NAME PROJ-123`. "
        + (
            f"Connectors that can start approvals: {', '.join(f'`{n}`' for n in starters)}."
            if starters
            else "None of the configured connectors can start approvals."
        )
    )


def _not_opened() -> blocks.Message:
    """Slack gives three seconds from the command to open a modal; past that the trigger is dead."""
    return blocks.notice("Slack did not open the form in time. Please run the command again.")


__all__ = ["ViewId", "help_for", "list_for", "open_connect", "open_request"]
