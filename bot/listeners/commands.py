"""/approvals and its subcommands. Every answer is private; unknown input gets help."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.ids import ViewId
from bot.listeners.deps import Deps, user_id
from bot.services import Origin

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/approvals")
    async def approvals(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)  # a Slack id, or nothing (never a 30,000-character string)
        if user is None:
            return
        origin = Origin(channel=body.get("channel_id"), response_url=body.get("response_url"))
        words = str(body.get("text") or "").split()
        sub = words[0].lower() if words else "list"
        args = words[1:]
        message: blocks.Message | None
        if sub in ("list", "pending", "ls"):
            message = await list_for(deps, user)
        elif sub == "connect":
            if not args:
                message = connectors_overview(deps, "Which one? `/approvals connect NAME`.")
            else:
                await open_connect(deps, user, args[0], body.get("trigger_id"), origin)
                return
        elif sub == "disconnect":
            if not args:
                message = connectors_overview(deps, "Which one? `/approvals disconnect NAME`.")
            else:
                message = await deps.services.unlink(connector_name=args[0], slack_user=user)
        elif sub == "status":
            admin = await deps.services.is_admin(user)
            lines = await deps.services.status_lines(detail=admin)
            note = (
                ""
                if admin
                else "\n_Vendor errors, failure counts and sync times are shown to this bot's admins._"
            )
            message = blocks.notice(
                "*Connectors*\n"
                + ("\n".join(lines) or "No connectors are configured.")
                + (note if lines else "")
            )
        elif sub == "start":
            await open_request(deps, user, args, body.get("trigger_id"), origin)
            return
        elif sub in deps.subcommands:
            message = await deps.subcommands[sub](deps, user, args, body)
        elif sub == "help":
            message = await help_for(deps, user)
        else:
            message = await help_for(deps, user, prefix=f"I don't know `{blocks.escape(sub)}`. ")
        if message is not None:
            await deps.gateway.tell(
                user=user, message=message, response_url=origin.response_url, channel=origin.channel
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
        message = blocks.notice("Slack did not open the form in time. Please run the command again.")
    await deps.gateway.tell(
        user=user, message=message, response_url=origin.response_url, channel=origin.channel
    )


async def open_request(deps: Deps, user: str, args: list[str], trigger_id: Any, origin: Origin) -> None:
    """`/approvals start NAME [TARGET]`: a modal listing what the person may start."""
    services = deps.services
    starters = [n for n, c in services.connectors.items() if c.capabilities.request]
    if not args or args[0] not in services.connectors:
        message = blocks.notice(
            "Usage: `/approvals start NAME [TARGET]`, e.g. `/approvals start NAME PROJ-123`. "
            + (
                f"Connectors that can start approvals: {', '.join(f'`{n}`' for n in starters)}."
                if starters
                else "None of the configured connectors can start approvals."
            )
        )
        await deps.gateway.tell(
            user=user, message=message, response_url=origin.response_url, channel=origin.channel
        )
        return
    connector = services.connectors[args[0]]
    target = args[1] if len(args) > 1 else None
    if not connector.capabilities.request:
        message = blocks.notice(f"{connector.vendor_label} cannot start approvals from Slack.")
        await deps.gateway.tell(
            user=user, message=message, response_url=origin.response_url, channel=origin.channel
        )
        return
    actor = await services.actor(connector, user)
    if isinstance(actor, blocks.Message):
        await deps.gateway.tell(
            user=user, message=actor, response_url=origin.response_url, channel=origin.channel
        )
        return
    from connectors.errors import ConnectorError

    try:
        options = await connector.requestable(actor, target)
    except ConnectorError as exc:
        message = blocks.notice(
            f"{connector.vendor_label} did not list what you can start: {blocks.escape(str(exc))}"
        )
        await deps.gateway.tell(
            user=user, message=message, response_url=origin.response_url, channel=origin.channel
        )
        return
    if not options:
        where = f" for {blocks.escape(target)}" if target else ""
        message = blocks.notice(
            f"There is nothing you can start in {connector.vendor_label}{where} right now."
        )
        await deps.gateway.tell(
            user=user, message=message, response_url=origin.response_url, channel=origin.channel
        )
        return
    view = blocks.request_modal(
        connector_name=connector.name,
        vendor_label=connector.vendor_label,
        options=options,
        target=target,
        channel=origin.channel,
    )
    error = await deps.gateway.open_view(trigger_id=str(trigger_id or ""), view=view)
    if error is not None:
        message = blocks.notice("Slack did not open the form in time. Please run the command again.")
        await deps.gateway.tell(
            user=user, message=message, response_url=origin.response_url, channel=origin.channel
        )


__all__ = ["ViewId", "help_for", "list_for", "open_connect", "open_request"]
