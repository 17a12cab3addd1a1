"""What `approvals-bot check` asks Slack about an install: granted scopes and channel membership.

Why: a scope left out at install time, or a channel the bot was never invited to, otherwise shows up
only in production, as `missing_scope` or `not_in_channel` on the first card. Slack names the token's
scopes in every Web API answer (the `x-oauth-scopes` header), and conversations.info says whether the
bot is a member, so both can be named before anything is posted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.slack.gateway import SlackFailure, SlackGateway

# The bot scopes of manifest.yml: exactly what the code calls (tests/install/test_manifest.py keeps them equal).
REQUIRED_SCOPES = frozenset(
    {
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "groups:history",
        "groups:read",
        "im:history",
        "im:write",
        "usergroups:read",
        "users:read",
        "users:read.email",
    }
)


def granted_scopes(header: str) -> set[str]:
    """Scopes from Slack's `x-oauth-scopes` header value (comma-separated)."""
    return {s.strip() for s in header.split(",") if s.strip()}


def missing_scopes(granted: Iterable[str]) -> list[str]:
    return sorted(REQUIRED_SCOPES - set(granted))


def configured_channels(channels: Iterable[str | None]) -> list[str]:
    """Each configured channel once, in the order the config names them."""
    seen: dict[str, None] = {}
    for channel in channels:
        if channel:
            seen.setdefault(channel, None)
    return list(seen)


async def channel_problems(gateway: SlackGateway, channels: Sequence[str]) -> list[str]:
    """A line per configured channel the bot cannot post to, saying how to fix it."""
    problems: list[str] = []
    for channel in channels:
        try:
            info = await gateway.channel_info(channel)
        except SlackFailure as exc:
            error = exc.error
            if error == "channel_not_found":
                problems.append(
                    f"Slack: channel {channel} not found (private channels: invite the bot first, "
                    "`/invite @approvals-bot`)"
                )
            else:
                problems.append(f"Slack: conversations.info on {channel} failed: {error}")
            continue
        if info.get("is_archived"):
            problems.append(f"Slack: channel #{info.get('name', channel)} ({channel}) is archived")
        elif not info.get("is_member") and not info.get("is_im"):
            problems.append(
                f"Slack: the bot is not in #{info.get('name', channel)} ({channel}): "
                "invite it there (`/invite @approvals-bot`)"
            )
    return problems
