"""Who may do what, where the vendor cannot tell: the bot's admins and channel membership.

Why the bot checks at all: Approval Path trusts its app key and Greenhouse its On-Behalf-Of
header, and subscribing a channel touches no vendor. Whoever can click would be believed.

Slack calls and the scopes they need (manifest.yml lists them):
- `usergroups.users.list` (`usergroups:read`): members of an admin user group;
- `conversations.members` (`channels:read` for public channels, `groups:read` for private ones
  the bot is in): whether a person is in the channel they want to subscribe.
Both fail closed: when Slack cannot answer, nobody gains a right from it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from bot.slack.gateway import Deferred, SlackFailure, SlackGateway

log = logging.getLogger(__name__)

# How long a user group's membership is trusted before it is asked again.
GROUP_TTL = 300.0


def mention(admin_id: str) -> str:
    return f"<!subteam^{admin_id}>" if admin_id.startswith("S") else f"<@{admin_id}>"


class Admins:
    """`[slack] admins`: user ids match themselves; user-group ids match their members."""

    def __init__(
        self,
        ids: Sequence[str] = (),
        gateway: SlackGateway | None = None,
        *,
        ttl: float = GROUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = frozenset(i for i in ids if not i.startswith("S"))
        self.groups = tuple(i for i in ids if i.startswith("S"))
        self.ids = tuple(ids)
        self.gateway = gateway
        self.ttl = ttl
        self.clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def __bool__(self) -> bool:
        return bool(self.ids)

    def mentions(self) -> str:
        return ", ".join(mention(i) for i in self.ids)

    async def contains(self, user: str) -> bool:
        if user in self.users:
            return True
        for group in self.groups:
            if user in await self._group(group):
                return True
        return False

    async def _group(self, group: str) -> frozenset[str]:
        now = self.clock()
        cached = self._members.get(group)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        members: frozenset[str] = frozenset()
        if self.gateway is not None:
            try:
                members = frozenset(await self.gateway.usergroup_members(group))
            except SlackFailure as exc:
                # Fail closed, and say why once per ttl (e.g. missing usergroups:read).
                log.warning("admins: members of %s unknown: %s", group, exc.error)
        self._members[group] = (now, members)
        return members


class MembershipUnknown(Exception):
    """Slack would not tell whether someone is in a channel (a missing scope, a private channel)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def in_channel(gateway: SlackGateway, *, channel: str, user: str) -> bool:
    """Whether `user` is a member of `channel`, page by page through conversations.members."""
    cursor: str | None = None
    for _ in range(200):  # 200 pages of 1,000: beyond any real channel
        try:
            members, cursor = await gateway.channel_members(channel, cursor=cursor)
        except SlackFailure as exc:
            raise MembershipUnknown(exc.error) from exc
        except Deferred as exc:
            raise MembershipUnknown("ratelimited") from exc
        if user in members:
            return True
        if not cursor:
            return False
    return False


async def problems_with_ids(gateway: SlackGateway, ids: Sequence[str]) -> list[str]:
    """`approvals-bot check`: one line per admin id Slack does not know (or cannot be asked about).

    User groups (ids starting with S) are listed once, on the first one met."""
    problems: list[str] = []
    groups: dict[str, dict[str, object]] | None = None
    for admin in ids:
        problem: str | None
        if admin.startswith("S"):
            if groups is None:
                groups, problem = await _user_groups(gateway)
                if problem is not None:
                    problems.append(problem)
                    continue
            problem = _group_problem(admin, groups)
        else:
            problem = await _user_problem(gateway, admin)
        if problem is not None:
            problems.append(problem)
    return problems


async def _user_groups(gateway: SlackGateway) -> tuple[dict[str, dict[str, object]], str | None]:
    """The workspace's user groups by id, or none and why they cannot be listed."""
    try:
        return {str(g.get("id")): g for g in await gateway.usergroups()}, None
    except SlackFailure as exc:
        why = (
            f"[slack] admins: cannot list user groups ({exc.error}); the app needs the usergroups:read scope"
        )
        return {}, why


def _group_problem(admin: str, groups: Mapping[str, Mapping[str, object]]) -> str | None:
    """What is wrong with a user group named as admin (nothing is said when none could be listed)."""
    group = groups.get(admin)
    if group is None:
        return f"[slack] admins: {admin} is not a user group of this workspace" if groups else None
    if group.get("date_delete"):
        return f"[slack] admins: user group {admin} is disabled"
    return None


async def _user_problem(gateway: SlackGateway, admin: str) -> str | None:
    """What is wrong with a user named as admin: unknown, deactivated, or a bot."""
    try:
        user = await gateway.user_info(admin)
    except SlackFailure as exc:
        return f"[slack] admins: {admin}: {exc.error} (not a user of this workspace)"
    if user.get("deleted"):
        return f"[slack] admins: {admin} is a deactivated user"
    if user.get("is_bot"):
        return f"[slack] admins: {admin} is a bot, not a person"
    return None


def loopback(remote: str | None) -> bool:
    """Whether the peer address is this machine (127.0.0.0/8, ::1, or IPv4-mapped loopback)."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def health_detail_allowed(*, remote: str | None, authorization: str | None, token: str | None) -> bool:
    """/healthz detail (connector names, vendor errors, counts) for loopback callers, or for callers
    presenting `Authorization: Bearer <APPROVALS_HEALTHZ_TOKEN>` when that token is set.

    Behind a reverse proxy on the same host every caller looks like loopback: set the token there
    and have the proxy not forward /healthz, or forward it only from the monitor (docs/security.md)."""
    if loopback(remote):
        return True
    if not token or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
