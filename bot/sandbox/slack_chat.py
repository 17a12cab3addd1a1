"""The chat surface of the Slack sandbox: chat.postMessage/update/postEphemeral/delete and the
response_urls interactions carry, with Slack's content rules.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.sandbox.slack_blocks import (
    _interactive_elements,
    block_problems,
)
from bot.sandbox.slack_conversations import ConversationsSurface
from bot.sandbox.slack_core import WebApiMethod
from bot.sandbox.slack_model import (
    BOT_USER_ID,
    JSON,
    MESSAGE_BLOCKS_MAX,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    TEAM_ID,
    TEXT_MAX,
    Ephemeral,
    ResponsePost,
    Revision,
    StoredMessage,
    _flag,
    _Hook,
    _json_arg,
    _Refused,
)


class ChatSurface(ConversationsSurface):
    """chat.* and response_url."""

    def _web_api(self) -> dict[str, WebApiMethod]:
        return {
            **super()._web_api(),
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
        }

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post("/response/{hook}", self._response_url)

    def _check_can_post(self, channel: str) -> None:
        info = self.channels.get(channel)
        if info is None or info.bot_member:
            return
        if info.private:
            raise _Refused("channel_not_found")
        if "chat:write.public" not in self.scopes:
            raise _Refused("not_in_channel")

    def _content(
        self, args: Mapping[str, Any], *, required: bool
    ) -> tuple[str | None, list[dict[str, Any]] | None]:
        text = args.get("text")
        if text is None and args.get("markdown_text"):
            text = args["markdown_text"]  # Slack renders markdown_text into the message; kept as its text
        text = None if text is None else str(text)
        blocks = _json_arg(args, "blocks", "invalid_blocks_format")
        if blocks is not None:
            blocks = self._checked_blocks(blocks, MESSAGE_BLOCKS_MAX)
        has_attachments = bool(_json_arg(args, "attachments", "invalid_attachments"))
        if required and not text and not blocks and not has_attachments:
            raise _Refused("no_text")
        if text is not None and len(text) > TEXT_MAX:
            raise _Refused("msg_too_long")
        return text, blocks

    def _checked_blocks(self, blocks: Any, limit: int, pointer: str = "/blocks") -> list[dict[str, Any]]:
        problems = block_problems(blocks, limit, pointer)
        if problems:
            raise _Refused(
                "invalid_blocks",
                errors=problems,
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        return self._with_ids(blocks)

    def _with_ids(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Slack fills in a block_id for each block and an action_id for each element without one."""
        filled = copy.deepcopy(blocks)
        for block in filled:
            block.setdefault("block_id", self._random_id(4))
            for element in _interactive_elements(block):
                element.setdefault("action_id", self._random_id(5))
        return filled

    async def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=True)
        self._check_can_post(channel)
        text, blocks = self._content(args, required=True)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        parent = self.messages.get((channel, thread_ts)) if thread_ts else None
        if parent is not None and parent.thread_ts:
            thread_ts = parent.thread_ts  # a reply to a reply joins the root's thread
        ts = self._next_ts()
        message = StoredMessage(
            channel=channel,
            ts=ts,
            text=text or "",
            blocks=blocks or [],
            user=BOT_USER_ID,
            at=self.clock(),
            thread_ts=thread_ts,
            broadcast=bool(thread_ts) and _flag(args.get("reply_broadcast")),
            metadata=_metadata(args.get("metadata")),
        )
        self.messages[(channel, ts)] = message
        await self._emit(channel, ts, message.text, message.blocks, "post")
        return {"channel": channel, "ts": ts, "message": message.payload()}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack: chat.update needs the D… id for DMs, never the user id posted to.
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        ts = str(args.get("ts") or "")
        if not ts:
            raise _Refused(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: ts"]}
            )
        message = self.messages.get((channel, ts))
        if message is None:
            raise _Refused("message_not_found")
        if not message.from_bot:
            raise _Refused("cant_update_message")
        text, blocks = self._content(args, required=False)
        self._revise(message, text, blocks, text_only_clears_blocks=True)
        await self._emit(channel, ts, message.text, message.blocks, "update")
        return {"channel": channel, "ts": ts, "text": message.text, "message": message.payload()}

    def _revise(
        self,
        target: StoredMessage | Ephemeral,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        *,
        text_only_clears_blocks: bool,
    ) -> None:
        target.history.append(Revision(target.text, target.blocks, target.at))
        if blocks is not None:
            target.blocks = blocks
        elif text is not None and text_only_clears_blocks:
            # Slack: "If blocks is omitted but text is given, the old blocks are removed."
            target.blocks = []
        if text is not None:
            target.text = text
        target.at = self.clock()

    async def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=True)
        user = str(args.get("user") or "")
        if user not in self.people:
            raise _Refused("user_not_found")
        info = self.channels.get(channel)
        if info is not None:
            if not info.bot_member:
                raise _Refused("channel_not_found" if info.private else "not_in_channel")
            if not info.has_member(user):
                raise _Refused("user_not_in_channel")
        elif self._dm_owner(channel) != user:
            raise _Refused("user_not_in_channel")
        text, blocks = self._content(args, required=True)
        ephemeral = self._add_ephemeral(channel, user, text or "", blocks or [], "api", args.get("thread_ts"))
        await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
        return {"message_ts": ephemeral.ts}

    def _add_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[dict[str, Any]],
        source: str,
        thread_ts: Any = None,
    ) -> Ephemeral:
        ephemeral = Ephemeral(
            channel=channel,
            user=user,
            text=text,
            blocks=blocks,
            ts=self._next_ts(),
            source=source,
            at=self.clock(),
            thread_ts=str(thread_ts) if thread_ts else None,
        )
        self.ephemerals.append(ephemeral)
        return ephemeral

    async def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(args.get("channel"), user_ids_as_dm=False)
        ts = str(args.get("ts") or "")
        message = self.messages.get((channel, ts))
        if message is None:
            raise _Refused("message_not_found")
        if not message.from_bot:
            raise _Refused("cant_delete_message")
        self.deleted.append(self.messages.pop((channel, ts)))
        return {"channel": channel, "ts": ts}

    # ---- response_url ----------------------------------------------------------------------------------

    def _new_hook(
        self,
        user: str,
        channel: str | None,
        *,
        message: tuple[str, str] | None = None,
        ephemeral: Ephemeral | None = None,
    ) -> str:
        self._seq += 1
        hook_id = f"{TEAM_ID}-{self._seq}-{self._rng.getrandbits(96):024x}"
        self._hooks[hook_id] = _Hook(hook_id, user, channel, message, ephemeral, self.clock())
        return f"{self.url}/response/{hook_id}"

    async def _response_url(self, request: web.Request) -> web.Response:
        hook = self._hooks.get(request.match_info["hook"])
        if hook is None:
            return web.json_response({"ok": False, "error": "invalid_url"}, status=404)
        try:
            if request.content_type == JSON:
                body = await request.json()
            else:
                form = await request.post()
                body = json.loads(str(form.get("payload", "")))
        except ValueError:
            body = None
        status, answer = await self._respond(hook, body)
        raw_blocks = body.get("blocks") if isinstance(body, dict) else None
        self.responses.append(
            ResponsePost(
                hook=hook.id,
                user=hook.user,
                channel=hook.channel,
                response_type=body.get("response_type") if isinstance(body, dict) else None,
                replace_original=_flag(body.get("replace_original")) if isinstance(body, dict) else False,
                delete_original=_flag(body.get("delete_original")) if isinstance(body, dict) else False,
                text=body.get("text") if isinstance(body, dict) else None,
                blocks=raw_blocks if isinstance(raw_blocks, list) else None,
                status=status,
                at=self.clock(),
            )
        )
        return web.json_response(answer, status=status)

    async def _respond(self, hook: _Hook, body: Any) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        if now - hook.created_at > RESPONSE_URL_TTL:
            return 404, {"ok": False, "error": "expired_url"}
        if hook.uses >= RESPONSE_URL_USES:  # Slack: usable 5 times within 30 minutes
            return 404, {"ok": False, "error": "used_url"}
        hook.uses += 1
        if not isinstance(body, dict):
            return 400, {"ok": False, "error": "invalid_payload"}
        if _flag(body.get("delete_original")):
            return self._delete_original(hook)
        try:
            text, blocks = self._content(body, required=True)
        except _Refused as refused:
            return 400, {"ok": False, "error": refused.error, **refused.extra}
        if _flag(body.get("replace_original")):
            return await self._replace_original(hook, text, blocks)
        channel = hook.channel or self.dm_channel(hook.user)
        if body.get("response_type") == "in_channel":
            ts = self._next_ts()
            message = StoredMessage(
                channel, ts, text or "", blocks or [], BOT_USER_ID, now, thread_ts=body.get("thread_ts")
            )
            self.messages[(channel, ts)] = message
            await self._emit(channel, ts, message.text, message.blocks, "post")
        else:
            ephemeral = self._add_ephemeral(channel, hook.user, text or "", blocks or [], "response_url")
            await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
        return 200, {"ok": True}

    def _delete_original(self, hook: _Hook) -> tuple[int, dict[str, Any]]:
        if hook.ephemeral is not None:
            hook.ephemeral.deleted = True
            return 200, {"ok": True}
        if hook.message is not None and hook.message in self.messages:
            self.deleted.append(self.messages.pop(hook.message))
            return 200, {"ok": True}
        return 404, {"ok": False, "error": "message_not_found"}

    async def _replace_original(
        self, hook: _Hook, text: str | None, blocks: list[dict[str, Any]] | None
    ) -> tuple[int, dict[str, Any]]:
        if hook.ephemeral is not None and not hook.ephemeral.deleted:
            target = hook.ephemeral
            self._revise(target, text, blocks if blocks is not None else [], text_only_clears_blocks=False)
            await self._emit(target.channel, target.ts, target.text, target.blocks, "ephemeral")
            return 200, {"ok": True}
        message = self.messages.get(hook.message) if hook.message else None
        if message is not None:
            # A response_url message replaces the whole original: no blocks given means none kept.
            self._revise(message, text, blocks if blocks is not None else [], text_only_clears_blocks=False)
            await self._emit(message.channel, message.ts, message.text, message.blocks, "update")
            return 200, {"ok": True}
        if hook.message is None and hook.ephemeral is None:
            # A slash command has no original: Slack posts the reply as a new ephemeral message.
            channel = hook.channel or self.dm_channel(hook.user)
            ephemeral = self._add_ephemeral(channel, hook.user, text or "", blocks or [], "response_url")
            await self._emit(channel, ephemeral.ts, ephemeral.text, ephemeral.blocks, "ephemeral")
            return 200, {"ok": True}
        return 404, {"ok": False, "error": "message_not_found"}


def _metadata(raw: Any) -> dict[str, Any] | None:
    """Message metadata as Slack takes it: an object (JSON bodies) or its JSON text (forms)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _Refused("invalid_metadata_format") from None
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str):
        raise _Refused("invalid_metadata_format")
    return {"event_type": raw["event_type"], "event_payload": dict(raw.get("event_payload") or {})}
