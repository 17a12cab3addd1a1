"""`/approvals subscribe NAME #channel` and `unsubscribe`: a channel follows how a connector's flows end."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.blocks import Message
from bot.listeners.deps import Deps
from bot.slack.gateway import URGENT, Deferred, Kind, SlackFailure
from store import subscriptions

# With should_escape false Slack sends a picked channel as <#C123|name> (or <#C123>).
CHANNEL = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9]{2,})$")


def parse_channel(text: str) -> str | None:
    match = CHANNEL.match(text.strip())
    return (match.group(1) or match.group(2)) if match else None


def register(app: AsyncApp, deps: Deps) -> None:
    deps.subcommands["subscribe"] = subscribe
    deps.subcommands["unsubscribe"] = unsubscribe
    deps.help_lines.append(
        "• `/approvals unsubscribe NAME #channel`: stop following a connector in a channel"
    )


def _usage(word: str, deps: Deps) -> Message:
    names = ", ".join(f"`{n}`" for n in deps.services.connectors) or "none configured"
    return blocks.notice(
        f"Usage: `/approvals {word} NAME #channel`, picking the channel from Slack's autocomplete so I get its id. "
        f"Connectors: {names}."
    )


async def subscribe(deps: Deps, user: str, args: list[str], body: dict[str, Any]) -> Message:
    if len(args) < 2 or args[0] not in deps.services.connectors or parse_channel(args[1]) is None:
        return _usage("subscribe", deps)
    name, channel = args[0], parse_channel(args[1])
    assert channel is not None
    connector = deps.services.connectors[name]
    refusal = await deps.services.may_follow(connector_name=name, channel=channel, slack_user=user)
    if refusal is not None:
        return refusal
    try:
        # Meant for the channel: everyone there learns what it now follows (and it proves the bot can
        # post). Straight through the gateway: its answer decides what the person is told now.
        await deps.gateway.post_message(
            channel=channel,
            text=f"This channel now follows how {connector.vendor_label} approvals of `{name}` go "
            f"(subscribed by <@{user}>). One message per flow, updated in place.",
            patience=URGENT,
        )
    except Deferred:
        return blocks.notice("Slack asks me to slow down; nothing was subscribed. Try again in a minute.")
    except SlackFailure as exc:
        error = exc.error
        if exc.kind is Kind.CHANNEL_GONE:
            return blocks.notice(
                f"I cannot post in <#{channel}> ({error}), so nothing was subscribed. Invite me there first with "
                "`/invite @approvals-bot`, then run the command again."
            )
        return blocks.notice(
            f"Slack refused the test post to <#{channel}> ({error}); nothing was subscribed."
        )
    await subscriptions.subscribe(deps.services.store.db, connector=name, channel=channel, created_by=user)
    return blocks.notice(f":white_check_mark: <#{channel}> now follows `{name}` flows.")


async def unsubscribe(deps: Deps, user: str, args: list[str], body: dict[str, Any]) -> Message:
    if len(args) < 2 or args[0] not in deps.services.connectors or parse_channel(args[1]) is None:
        return _usage("unsubscribe", deps)
    name, channel = args[0], parse_channel(args[1])
    assert channel is not None
    refusal = await deps.services.may_follow(
        connector_name=name, channel=channel, slack_user=user, word="unsubscribe"
    )
    if refusal is not None:
        return refusal
    if await subscriptions.unsubscribe(deps.services.store.db, connector=name, channel=channel):
        return blocks.notice(f"<#{channel}> no longer follows `{name}` flows.")
    return blocks.notice(f"<#{channel}> was not following `{name}`; nothing to do.")
