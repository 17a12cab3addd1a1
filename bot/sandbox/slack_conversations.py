"""The users and conversations surface of the Slack sandbox: conversations.open/join/info,
users.info and users.lookupByEmail, conversations.members and usergroups.*, with Slack's scope rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sandbox.slack_core import SandboxCore, WebApiMethod
from bot.sandbox.slack_model import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_ID,
    TZ_LABELS,
    Channel,
    _flag,
    _Refused,
)
from connectors.people import DemoPerson


class ConversationsSurface(SandboxCore):
    """users.* and conversations.*."""

    def _web_api(self) -> dict[str, WebApiMethod]:
        return {
            **super()._web_api(),
            "conversations.open": self._conversations_open,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
        }

    # ---- conversations, users --------------------------------------------------------------------------

    async def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            channel = self._conversation(args["channel"], user_ids_as_dm=False)
            return {"no_op": True, "already_open": True, "channel": self._channel_info(channel)}
        users = [u.strip() for u in str(args.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _Refused("users_list_not_supplied")
        if len(users) > 8:
            raise _Refused("too_many_users")
        for user in users:
            if user == BOT_USER_ID:
                raise _Refused("cannot_dm_bot")
            if user not in self.people:
                raise _Refused("user_not_found")
        if len(users) > 1:
            channel = "G" + "".join(sorted(u[1:] for u in users))[:20]
        else:
            channel = self.dm_channel(users[0])
        already = channel in self._opened_dms
        self._opened_dms.add(channel)
        info = self._channel_info(channel) if _flag(args.get("return_im")) else {"id": channel}
        return {"no_op": already, "already_open": already, "channel": info}

    def _channel_info(self, channel: str) -> dict[str, Any]:
        owner = self._dm_owner(channel)
        if owner:
            return {
                "id": channel,
                "is_im": True,
                "is_channel": False,
                "is_private": True,
                "user": owner,
                "created": 0,
            }
        if channel.startswith("G") and channel not in self.channels:
            return {"id": channel, "is_mpim": True, "is_im": False, "is_channel": False, "is_private": True}
        info = self.channels[channel]
        return {
            "id": info.id,
            "name": info.name,
            "is_channel": not info.private,
            "is_group": info.private,
            "is_im": False,
            "is_private": info.private,
            "is_member": info.bot_member,
            "is_archived": False,
            "created": 0,
        }

    async def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        if info is None or info.private:
            raise _Refused("method_not_supported_for_channel_type")
        already = info.bot_member
        self.channels[channel] = Channel(info.id, info.name, True, info.private, info.members)
        result: dict[str, Any] = {"channel": self._channel_info(channel)}
        if already:
            result["warning"] = "already_in_channel"
        return result

    async def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        needed = (
            "im:read"
            if self._dm_owner(channel)
            else "groups:read"
            if info and info.private
            else "channels:read"
        )
        if needed not in self.scopes:
            raise _Refused("missing_scope", needed=needed)
        if info is not None and info.private and not info.bot_member:
            raise _Refused("channel_not_found")
        return {"channel": self._channel_info(channel)}

    async def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """Member ids a page at a time (`limit`, `cursor`); same scope rules as conversations.info."""
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        if info is None:
            raise _Refused("channel_not_found")
        needed = "groups:read" if info.private else "channels:read"
        if needed not in self.scopes:
            raise _Refused("missing_scope", needed=needed)
        if info.private and not info.bot_member:
            raise _Refused("channel_not_found")
        members = sorted(info.members if info.members is not None else self.people)
        try:
            start = int(str(args.get("cursor") or "0"))
            limit = max(1, min(1000, int(str(args.get("limit") or "100"))))
        except ValueError as exc:
            raise _Refused("invalid_cursor") from exc
        page = members[start : start + limit]
        following = str(start + limit) if start + limit < len(members) else ""
        return {"members": page, "response_metadata": {"next_cursor": following}}

    async def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages newest first (replies only when broadcast), `oldest`/`limit` honoured;
        each message's metadata only with include_all_metadata. The scope follows the conversation's
        type: channels:history, groups:history (private), im:history (DMs)."""
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        info = self.channels.get(channel)
        needed = (
            "im:history"
            if self._dm_owner(channel)
            else "groups:history"
            if info and info.private
            else "channels:history"
        )
        if needed not in self.scopes:
            raise _Refused("missing_scope", needed=needed)
        if info is not None and not info.bot_member:
            raise _Refused("not_in_channel")
        oldest = float(args.get("oldest") or 0)
        limit = max(1, min(999, int(args.get("limit") or 100)))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            m
            for (c, _), m in self.messages.items()
            if c == channel and float(m.ts) > oldest and (not m.thread_ts or m.broadcast)
        ]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        messages = []
        for message in found[:limit]:
            payload = message.payload()
            if with_metadata and message.metadata is not None:
                payload["metadata"] = message.metadata
            messages.append(payload)
        return {"messages": messages, "has_more": len(found) > limit}

    async def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "usergroups": [
                {
                    "id": gid,
                    "team_id": TEAM_ID,
                    "handle": gid.lower(),
                    "date_delete": 0,
                    "user_count": len(users),
                }
                for gid, users in sorted(self.usergroups.items())
            ]
        }

    async def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup") or "")
        if group not in self.usergroups:
            raise _Refused("no_such_subteam")
        return {"users": sorted(self.usergroups[group])}

    def _user_object(self, person: DemoPerson) -> dict[str, Any]:
        try:
            zone: ZoneInfo | None = ZoneInfo(person.tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        moment = datetime.fromtimestamp(self.clock(), tz=zone or UTC)
        offset = moment.utcoffset()
        abbreviation = moment.tzname() or "UTC"
        profile: dict[str, Any] = {
            "real_name": person.name,
            "real_name_normalized": person.name,
            "display_name": person.handle,
            "display_name_normalized": person.handle,
            "team": TEAM_ID,
        }
        if "users:read.email" in self.scopes:  # Slack leaves email out without this scope
            profile["email"] = person.email
        user: dict[str, Any] = {
            "id": person.slack_id,
            "team_id": person.team_id or TEAM_ID,
            "name": person.handle,
            "deleted": person.deleted,
            "real_name": person.name,
            "tz": person.tz,
            "tz_label": TZ_LABELS.get(abbreviation, abbreviation),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_bot": False,
            "is_admin": False,
            "is_restricted": person.guest in ("restricted", "ultra_restricted"),
            "is_ultra_restricted": person.guest == "ultra_restricted",
            "is_email_confirmed": person.email_confirmed,
            "profile": profile,
        }
        if person.stranger:
            user["is_stranger"] = True
        return user

    async def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user") or "")
        if user == BOT_USER_ID:
            bot = {"id": BOT_USER_ID, "team_id": TEAM_ID, "name": BOT_NAME, "deleted": False, "is_bot": True}
            return {
                "user": {**bot, "real_name": BOT_NAME, "profile": {"bot_id": BOT_ID, "real_name": BOT_NAME}}
            }
        person = self.people.get(user)
        if person is None:
            raise _Refused("user_not_found")
        return {"user": self._user_object(person)}

    async def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: email"]}
            )
        for person in self.people.values():
            if person.email.lower() == email:
                return {"user": self._user_object(person)}
        raise _Refused("users_not_found")
