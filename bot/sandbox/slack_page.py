"""The Slack-like page of the sandbox: a browser client for people trying the bot (`approvals-bot demo`).

Why in the sandbox and not in the bot: the page plays Slack's client. Every click, submission and
command it makes is turned here into the payload Slack would send, signed with the signing secret
and POSTed to the bot's ordinary /slack/events; the bot cannot tell it from Slack. The page learns
of changes (chat.postMessage, chat.update, views.*, ephemerals) over server-sent events and reads
the state again. Its assets are plain files under bot/sandbox/web/, served from here: nothing is
fetched from the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bot.sandbox.slack_blocks import _interactive_elements
from bot.sandbox.slack_model import (
    BOT_NAME,
    BOT_USER_ID,
    AppReply,
    SandboxError,
    StoredView,
    _ts_key,
)
from bot.sandbox.slack_socket import SocketModeSurface
from connectors.people import DemoPerson

WEB = Path(__file__).resolve().parent / "web"
ASSETS = {"app.css": "text/css", "app.js": "text/javascript"}
# Web API answers that mean "Slack refused what the bot sent": shown on the page as a banner.
REFUSALS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_attachments",
        "msg_too_long",
        "no_text",
        "view_too_large",
        "invalid_payload",
    }
)
MUTATING = ("chat.", "views.")
BANNERS_KEPT = 20


class VendorControls(Protocol):
    """The vendor panel's half that lives with the vendor sandboxes (set by the demo)."""

    def panels(self) -> list[dict[str, Any]]: ...

    async def act(self, vendor: str, action: str, item: str | None, option: str | None) -> str: ...


@dataclass
class Banner:
    method: str
    error: str
    detail: list[str]


class PageSurface(SocketModeSurface):
    """The browser client: state as JSON, server-sent events, and people's actions sent on as Slack's."""

    vendor_controls: VendorControls | None = None
    intro: Sequence[str] = ()
    roles: Mapping[str, str] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listeners: list[asyncio.Queue[str | None]] = []
        self._banners: list[Banner] = []
        self._reads: dict[tuple[str, str], str] = {}  # (user, channel) → the last ts they saw

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get("/", self._page_index)
        app.router.add_get("/assets/{name}", self._page_asset)
        app.router.add_get("/app/state", self._app_state)
        app.router.add_get("/app/events", self._app_events)
        app.router.add_post("/app/action", self._app_action)
        app.router.add_post("/app/submit", self._app_submit)
        app.router.add_post("/app/close", self._app_close)
        app.router.add_post("/app/command", self._app_command)
        app.router.add_post("/app/home", self._app_home)
        app.router.add_post("/app/read", self._app_read)
        app.router.add_post("/app/vendor", self._app_vendor)

    # ---- change notices ------------------------------------------------------------------------------

    def notify(self, what: str = "changed") -> None:
        """Tell every open page to read the state again."""
        for queue in self._listeners:
            queue.put_nowait(what)

    async def _answer(
        self, method: str, args: dict[str, Any], token: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        body, status, headers = await super()._answer(method, args, token)
        if not body.get("ok") and body.get("error") in REFUSALS:
            detail = [str(m) for m in (body.get("response_metadata") or {}).get("messages") or []]
            self._add_banner(Banner(method, str(body["error"]), detail))
        if method.startswith(MUTATING):
            self.notify()
        return body, status, headers

    async def _response_url(self, request: web.Request) -> web.Response:
        answer = await super()._response_url(request)
        if answer.status == 400 and answer.text:
            with contextlib.suppress(ValueError):
                error = json.loads(answer.text)
                self._add_banner(Banner("response_url", str(error.get("error")), []))
        self.notify()
        return answer

    def _add_banner(self, banner: Banner) -> None:
        banners = self._banners
        banners.append(banner)
        del banners[:-BANNERS_KEPT]

    async def stop(self) -> None:
        for queue in self._listeners:
            queue.put_nowait(None)
        await super().stop()

    # ---- assets and state ----------------------------------------------------------------------------

    async def _page_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"})

    async def _page_asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.FileResponse(
            WEB / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "no-store"}
        )

    def _viewer(self, request: web.Request) -> DemoPerson:
        try:
            return self.person(request.query.get("user") or next(iter(self.people)))
        except SandboxError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None

    def page_state(self, viewer: DemoPerson) -> dict[str, Any]:
        """What `viewer` sees: their channels and DMs, messages and private ones, modals, Home, banners."""
        uid = viewer.slack_id
        dm = self.dm_channel(uid)
        conversations = [c for c in self.channels.values() if c.has_member(uid) and not c.private]
        conversations += [c for c in self.channels.values() if c.private and c.has_member(uid)]
        rows: list[dict[str, Any]] = []
        messages: dict[str, list[dict[str, Any]]] = {}
        for cid, name, kind in [(c.id, c.name, "channel") for c in conversations] + [(dm, BOT_NAME, "dm")]:
            shown = self._visible_messages(cid, uid)
            messages[cid] = shown
            last_read = self._reads.get((uid, cid), "0.0")
            unread = sum(
                1
                for m in shown
                if (not m["thread_ts"] or m["broadcast"]) and _ts_key(m["ts"]) > _ts_key(last_read)
            )
            rows.append({"id": cid, "name": name, "kind": kind, "unread": unread})
        stack = [self._view_json(v) for v in self.open_modals(uid)]
        home_id = self._home_ids.get(uid)
        home = self.views.get(home_id) if home_id else None
        return {
            "me": uid,
            "bot": {"id": BOT_USER_ID, "name": BOT_NAME},
            "people": [
                {"id": p.slack_id, "handle": p.handle, "name": p.name, "role": self.roles.get(p.slack_id, "")}
                for p in self.people.values()
            ],
            "names": {p.slack_id: p.handle for p in self.people.values()} | {BOT_USER_ID: BOT_NAME},
            "channel_names": {c.id: c.name for c in self.channels.values()},
            "conversations": rows,
            "messages": messages,
            "modals": stack,
            "home": self._view_json(home) if home is not None else None,
            "banners": [b.__dict__ for b in self._banners],
            "vendors": self.vendor_controls.panels() if self.vendor_controls else [],
            "intro": list(self.intro),
        }

    def _visible_messages(self, channel: str, uid: str) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = []
        for m in self.messages.values():
            if m.channel == channel:
                shown.append(
                    {
                        "ts": m.ts,
                        "user": m.user,
                        "text": m.text,
                        "blocks": m.blocks,
                        "thread_ts": m.thread_ts,
                        "edited": m.edits > 0,
                        "ephemeral": False,
                        "broadcast": m.broadcast,
                    }
                )
        for e in self.ephemerals:
            if e.channel == channel and e.user == uid and not e.deleted:
                shown.append(
                    {
                        "ts": e.ts,
                        "user": BOT_USER_ID,
                        "text": e.text,
                        "blocks": e.blocks,
                        "thread_ts": e.thread_ts,
                        "edited": bool(e.history),
                        "ephemeral": True,
                        "broadcast": False,
                    }
                )
        shown.sort(key=lambda m: _ts_key(m["ts"]))
        for row in shown:
            if row["thread_ts"] == row["ts"]:
                row["thread_ts"] = None
        for row in shown:
            row["replies"] = sum(1 for r in shown if r["thread_ts"] == row["ts"])
        return shown

    @staticmethod
    def _view_json(stored: StoredView) -> dict[str, Any]:
        return {"id": stored.id, "view": stored.view, "errors": stored.errors or {}}

    async def _app_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.page_state(self._viewer(request)))

    async def _app_events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            await response.write(b"event: hello\ndata: {}\n\n")
            while True:
                try:
                    what = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if what is None:
                    break
                while not queue.empty():  # a burst of changes is one re-read
                    if queue.get_nowait() is None:
                        return response
                await response.write(f"event: change\ndata: {json.dumps(what)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._listeners.remove(queue)
        return response

    # ---- people's actions, sent on as Slack sends them -----------------------------------------------------

    async def _json(self, request: web.Request) -> tuple[dict[str, Any], DemoPerson, str]:
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="send JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        if not self.bot_url:
            raise web.HTTPConflict(text="no bot is connected to this sandbox")
        try:
            person = self.person(str(data.get("user") or ""))
        except SandboxError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return data, person, self.bot_url

    @staticmethod
    def _reply(reply: AppReply, **extra: Any) -> web.Response:
        problem = None
        if reply.timed_out:
            problem = "The app did not answer within 3 seconds (Slack shows: operation_timeout)."
        elif reply.status >= 400 or reply.status == 0:
            problem = f"The app answered HTTP {reply.status}."
        return web.json_response({"status": reply.status, "problem": problem, **extra})

    async def _app_action(self, request: web.Request) -> web.Response:
        """{user, where: message|ephemeral|view, channel, ts, view_id, block_id, action_id, selected}."""
        data, person, bot_url = await self._json(request)
        try:
            payload = self._block_actions(person, data)
        except SandboxError as exc:
            return web.json_response({"status": 400, "problem": str(exc)}, status=400)
        reply = await self._send_payload(bot_url, payload)
        self.notify()
        return self._reply(reply)

    def _block_actions(self, person: DemoPerson, data: Mapping[str, Any]) -> dict[str, Any]:
        where = str(data.get("where") or "message")
        uid = person.slack_id
        base: dict[str, Any] = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(uid)),
            "state": {"values": {}},
        }
        if where == "view":
            stored = self.views.get(str(data.get("view_id") or ""))
            if stored is None or stored.user != uid or not stored.open:
                raise SandboxError(f"{person.handle} has no open view {data.get('view_id')}")
            action = self._pressed(stored.blocks, data)
            view = copy.deepcopy(stored.view)
            if isinstance(data.get("values"), dict) and stored.kind == "modal":
                from bot.sandbox.slack_blocks import state_values

                view["state"] = {"values": state_values(stored.blocks, data["values"], self)}
                base["state"] = view["state"]
            return {
                **base,
                "container": {"type": "view", "view_id": stored.id},
                "view": view,
                "actions": [action],
            }
        channel = str(data.get("channel") or "")
        ts = str(data.get("ts") or "")
        self._visible_to(person, channel)
        channel_info = {"id": channel, "name": self.channel_name(channel)}
        if where == "ephemeral":
            found = [e for e in self.ephemerals if e.ts == ts and e.user == uid and not e.deleted]
            if not found:
                raise SandboxError(f"{person.handle} has no private message {ts}")
            ephemeral = found[0]
            return {
                **base,
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel,
                    "is_ephemeral": True,
                },
                "channel": channel_info,
                "response_url": self._new_hook(uid, channel, ephemeral=ephemeral),
                "actions": [self._pressed(ephemeral.blocks, data)],
            }
        message = self.messages.get((channel, ts))
        if message is None:
            raise SandboxError(f"no message {channel}/{ts}")
        return {
            **base,
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": channel_info,
            "message": message.payload(),
            "response_url": self._new_hook(uid, channel, message=(channel, ts)),
            "actions": [self._pressed(message.blocks, data)],
        }

    def _pressed(self, blocks: Sequence[Mapping[str, Any]], data: Mapping[str, Any]) -> dict[str, Any]:
        """The action Slack reports for the element the person used, as it is shown *now*."""
        block_id, action_id = data.get("block_id"), data.get("action_id")
        for block in blocks:
            if block.get("block_id") != block_id:
                continue
            for element in _interactive_elements(block):
                if element.get("action_id") != action_id:
                    continue
                action = self._action(block, element)
                selected = data.get("selected")
                if element.get("type") in ("overflow", "static_select", "radio_buttons"):
                    options = list(element.get("options") or [])
                    for group in element.get("option_groups") or []:
                        options.extend(group.get("options") or [])
                    chosen = [o for o in options if o.get("value") == selected]
                    if not chosen:
                        raise SandboxError(f"{action_id} offers no option {selected!r}")
                    action["selected_option"] = copy.deepcopy(chosen[0])
                    action.pop("text", None)
                elif element.get("type") == "users_select":
                    action["selected_user"] = selected
                elif element.get("type") in ("conversations_select", "channels_select"):
                    key = (
                        "selected_conversation"
                        if element["type"] == "conversations_select"
                        else "selected_channel"
                    )
                    action[key] = selected
                return action
        raise SandboxError(f"nothing {action_id!r} is shown in block {block_id!r} any more")

    async def _app_submit(self, request: web.Request) -> web.Response:
        data, person, bot_url = await self._json(request)
        values = data.get("values") if isinstance(data.get("values"), dict) else {}
        try:
            result = await self.submit_view(
                bot_url, user=person.slack_id, view_id=str(data.get("view_id") or "") or None, values=values
            )
        except SandboxError as exc:
            return web.json_response({"status": 400, "problem": str(exc)}, status=400)
        self.notify()
        return self._reply(result, closed=result.closed)

    async def _app_close(self, request: web.Request) -> web.Response:
        data, person, bot_url = await self._json(request)
        try:
            reply = await self.close_view(
                bot_url, user=person.slack_id, view_id=str(data.get("view_id") or "")
            )
        except SandboxError as exc:
            return web.json_response({"status": 400, "problem": str(exc)}, status=400)
        self.notify()
        return (
            self._reply(reply) if reply is not None else web.json_response({"status": 200, "problem": None})
        )

    async def _app_command(self, request: web.Request) -> web.Response:
        data, person, bot_url = await self._json(request)
        line = str(data.get("text") or "").strip()
        command, _, text = line.partition(" ")
        if command != "/approvals":
            return web.json_response(
                {"status": 400, "problem": f"{command or 'That'} is not a command here: try /approvals help"},
                status=400,
            )
        try:
            reply = await self.command(
                bot_url,
                user=person.slack_id,
                text=text.strip(),
                channel=str(data.get("channel") or "C0GENERAL"),
            )
        except SandboxError as exc:
            return web.json_response({"status": 400, "problem": str(exc)}, status=400)
        self.notify()
        return self._reply(reply)

    async def _app_home(self, request: web.Request) -> web.Response:
        _data, person, bot_url = await self._json(request)
        reply = await self.open_home(bot_url, user=person.slack_id)
        return self._reply(reply)

    async def _app_read(self, request: web.Request) -> web.Response:
        data, person, _bot_url = await self._json(request)
        channel = str(data.get("channel") or "")
        shown = self._visible_messages(channel, person.slack_id)
        if shown:
            self._reads[(person.slack_id, channel)] = shown[-1]["ts"]
        return web.json_response({"ok": True})

    async def _app_vendor(self, request: web.Request) -> web.Response:
        """{vendor, action: decide|fail|add, item?, option?}: a change made in the vendor's own system."""
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="send JSON") from None
        if self.vendor_controls is None:
            return web.json_response({"ok": False, "problem": "no vendor sandboxes here"}, status=409)
        try:
            said = await self.vendor_controls.act(
                str(data.get("vendor") or ""),
                str(data.get("action") or ""),
                str(data["item"]) if data.get("item") else None,
                str(data["option"]) if data.get("option") else None,
            )
        except (KeyError, ValueError, SandboxError) as exc:
            return web.json_response({"ok": False, "problem": str(exc)}, status=400)
        self.notify()
        return web.json_response({"ok": True, "said": said})
