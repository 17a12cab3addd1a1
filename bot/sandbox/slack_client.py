"""The playing client of the Slack sandbox: Slack's half that sends the app signed requests (clicks,
view submissions, slash commands, events) shaped like Slack's, and the plain-text page for curl.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.slack_blocks import (
    button_labels,
    find_button,
    state_values,
)
from bot.sandbox.slack_model import (
    _T,
    APP_ID,
    BOT_USER_ID,
    FORM,
    JSON,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    VIEW_STACK_MAX,
    AppReply,
    Ephemeral,
    SandboxError,
    StoredMessage,
    StoredView,
    SubmitResult,
    _indent,
    _Refused,
    _ts_key,
)
from bot.sandbox.slack_views import ViewsSurface
from connectors.people import DemoPerson

log = logging.getLogger(__name__)


class PlayingClient(ViewsSurface):
    """Slack sending requests to the app, on behalf of a person."""

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get("/sandbox", self._page_help)
        app.router.add_get("/sandbox/messages", self._page_messages)
        app.router.add_post("/sandbox/click", self._page_click)
        app.router.add_get("/sandbox/views", self._page_views)
        app.router.add_post("/sandbox/submit", self._page_submit)
        app.router.add_post("/sandbox/command", self._page_command)

    # ---- the client half: Slack sending requests to the app ---------------------------------------------

    def signed_headers(
        self, body: str | bytes, timestamp: int | None = None, *, content_type: str = FORM
    ) -> dict[str, str]:
        """Headers Slack sends: X-Slack-Request-Timestamp and the v0 HMAC signature over the body.

        Signed with wall-clock time (the app checks it against its own clock), not the injected one.
        """
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        raw = body.decode() if isinstance(body, bytes) else body
        signature = str(SignatureVerifier(self._signing_secret).generate_signature(timestamp=stamp, body=raw))
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }

    async def send_raw(self, bot_url: str, body: str | bytes, headers: Mapping[str, str]) -> AppReply:
        """POST exactly these bytes and headers to the app (for unsigned, stale, tampered, malformed)."""
        if self._session is None:
            raise RuntimeError("the Slack sandbox is not started")
        data = body.encode() if isinstance(body, str) else body
        try:
            async with self._session.post(
                bot_url,
                data=data,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as response:
                return AppReply(response.status, await response.text())
        except TimeoutError:
            # Slack gives up after 3 s: the user sees an error, events are retried by Slack later.
            return AppReply(0, "operation_timeout", timed_out=True)

    async def _send_payload(self, bot_url: str, payload: Mapping[str, Any]) -> AppReply:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.send_raw(bot_url, body, self.signed_headers(body))

    def _envelope(self, person: DemoPerson, trigger_id: str | None) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "user": {
                "id": person.slack_id,
                "username": person.handle,
                "name": person.handle,
                "team_id": TEAM_ID,
            },
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if trigger_id:
            envelope["trigger_id"] = trigger_id
        return envelope

    def _action(self, block: Mapping[str, Any], element: Mapping[str, Any]) -> dict[str, Any]:
        action: dict[str, Any] = {
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
            "text": copy.deepcopy(element.get("text")),
            "type": element.get("type", "button"),
            "action_ts": f"{self.clock():.6f}",
        }
        for key in ("value", "style"):
            if key in element:
                action[key] = element[key]
        return action

    def _visible_to(self, person: DemoPerson, channel: str) -> None:
        owner = self._dm_owner(channel)
        if owner is not None and owner != person.slack_id:
            raise SandboxError(
                f"{channel} is {self.people[owner].handle}'s DM with the bot; {person.handle} cannot see it"
            )
        info = self.channels.get(channel)
        if info is not None and not info.has_member(person.slack_id):
            raise SandboxError(f"{person.handle} is not in #{info.name}")

    async def click(
        self,
        bot_url: str,
        *,
        user: str,
        channel: str,
        ts: str,
        label: str | None = None,
        action_id: str | None = None,
    ) -> AppReply:
        """Press a button the message shows *now*, as `user`; block_actions shaped like Slack's."""
        person = self.person(user)
        channel = self._dm_if_user(channel)
        message = self.messages.get((channel, ts))
        if message is None:
            raise SandboxError(f"no message {channel}/{ts} in the Slack sandbox")
        self._visible_to(person, channel)
        block, element = find_button(
            message.blocks, label=label, action_id=action_id, where=f"message {channel}/{ts}"
        )
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "message": message.payload(),
            "state": {"values": {}},
            "response_url": self._new_hook(person.slack_id, channel, message=(channel, ts)),
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_ephemeral(
        self,
        bot_url: str,
        *,
        user: str,
        index_or_predicate: int | Callable[[Ephemeral], bool] = -1,
        label: str | None = None,
        action_id: str | None = None,
    ) -> AppReply:
        """Press a button in one of `user`'s ephemeral messages (by index, -1 the latest, or predicate)."""
        person = self.person(user)
        mine = self.ephemerals_for(person.slack_id)
        if callable(index_or_predicate):
            matching = [e for e in mine if index_or_predicate(e)]
            if not matching:
                raise SandboxError(f"no ephemeral message of {person.handle} matches")
            ephemeral = matching[-1]
        else:
            try:
                ephemeral = mine[index_or_predicate]
            except IndexError:
                raise SandboxError(
                    f"{person.handle} has {len(mine)} ephemeral messages; no index {index_or_predicate}"
                ) from None
        block, element = find_button(
            ephemeral.blocks, label=label, action_id=action_id, where=f"ephemeral {ephemeral.ts}"
        )
        channel = ephemeral.channel
        # Slack sends no `message` for ephemeral sources: only the container says which one it was.
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {
                "type": "message",
                "message_ts": ephemeral.ts,
                "channel_id": channel,
                "is_ephemeral": True,
            },
            "channel": {"id": channel, "name": self.channel_name(channel)},
            "state": {"values": {}},
            "response_url": self._new_hook(person.slack_id, channel, ephemeral=ephemeral),
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_view(
        self, bot_url: str, *, user: str, view_id: str, label: str | None = None, action_id: str | None = None
    ) -> AppReply:
        """Press a button in an open modal or a Home tab (container type "view"; no response_url)."""
        person = self.person(user)
        stored = self.views.get(view_id)
        if stored is None or stored.user != person.slack_id or not stored.open:
            raise SandboxError(f"{person.handle} has no open view {view_id}")
        block, element = find_button(stored.blocks, label=label, action_id=action_id, where=f"view {view_id}")
        payload = {
            "type": "block_actions",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "container": {"type": "view", "view_id": view_id},
            "view": copy.deepcopy(stored.view),
            "state": {"values": {}},
            "actions": [self._action(block, element)],
        }
        return await self._send_payload(bot_url, payload)

    async def click_home(
        self, bot_url: str, *, user: str, label: str | None = None, action_id: str | None = None
    ) -> AppReply:
        person = self.person(user)
        view_id = self._home_ids.get(person.slack_id)
        if view_id is None:
            raise SandboxError(f"no Home tab published for {person.handle}")
        return await self.click_view(bot_url, user=user, view_id=view_id, label=label, action_id=action_id)

    def open_modals(self, user: str) -> list[StoredView]:
        """The user's modal stack, bottom first."""
        return [self.views[v] for v in self._stacks.get(self.person(user).slack_id, [])]

    async def submit_view(
        self, bot_url: str, *, user: str, view_id: str | None = None, values: Mapping[str, Any] | None = None
    ) -> SubmitResult:
        """Fill in the modal's inputs (by label or block_id) and press its submit button.

        Like the Slack client, refuses to send when a required input is empty.
        `view_id` defaults to the top of the user's modal stack.
        """
        person = self.person(user)
        stack = self._stacks.get(person.slack_id, [])
        view_id = view_id or (stack[-1] if stack else None)
        stored = self.views.get(view_id or "")
        if stored is None or stored.user != person.slack_id or not stored.open or stored.kind != "modal":
            raise SandboxError(f"{person.handle} has no open modal {view_id}")
        if stack and stack[-1] != stored.id:
            raise SandboxError(f"view {stored.id} is under another modal; only the top one can be submitted")
        if not stored.view.get("submit"):
            raise SandboxError(f"view {stored.id} has no submit button")
        state = state_values(stored.blocks, values or {}, self)
        view = copy.deepcopy(stored.view)
        view["state"] = {"values": state}
        payload = {
            "type": "view_submission",
            **self._envelope(person, self.issue_trigger(person.slack_id)),
            "view": view,
            "response_urls": [],
        }
        reply = await self._send_payload(bot_url, payload)
        return self._after_submit(stored, reply)

    def _after_submit(self, stored: StoredView, reply: AppReply) -> SubmitResult:
        """What Slack does with the app's answer to a view_submission: its response_action."""
        if reply.status != 200:
            return SubmitResult(
                reply.status, reply.text, reply.timed_out
            )  # Slack shows an error; modal stays
        body = reply.json
        if not reply.text.strip():
            self._close(stored, "submit")
            return SubmitResult(reply.status, reply.text, closed=True)
        action = body.get("response_action") if isinstance(body, dict) else None
        if action == "errors":
            stored.errors = dict(body.get("errors") or {})
        elif action == "update":
            self._update_from(stored, body)
        elif action == "push":
            self._push_from(stored, body)
        elif action == "clear":
            for view_id in list(self._stacks.get(stored.user, [])):
                self._close(self.views[view_id], "clear")
            return SubmitResult(reply.status, reply.text, closed=True, response_action=action)
        else:
            self._close(stored, "submit")  # Slack treats any other 200 as "close the view"
            return SubmitResult(reply.status, reply.text, closed=True, response_action=action)
        return SubmitResult(reply.status, reply.text, closed=False, response_action=action)

    def _update_from(self, stored: StoredView, body: dict[str, Any]) -> None:
        """response_action update: the view is replaced in place, if Slack would accept the new one."""
        try:
            self._replace_view(stored, self._checked_view(body, ("modal",)))
        except _Refused as refused:
            log.warning("response_action update refused: %s", refused.error)

    def _push_from(self, stored: StoredView, body: dict[str, Any]) -> None:
        """response_action push: a new view on top of the stack, while the stack has room."""
        stack = self._stacks.setdefault(stored.user, [])
        if len(stack) >= VIEW_STACK_MAX:
            return
        try:
            view = self._checked_view(body, ("modal",))
        except _Refused as refused:
            log.warning("response_action push refused: %s", refused.error)
            return
        pushed = self._new_view(stored.user, view, root=stack[0] if stack else None, previous=stored.id)
        stack.append(pushed.id)

    def _close(self, stored: StoredView, how: str) -> None:
        stored.open = False
        stored.closed_by = how
        stack = self._stacks.get(stored.user, [])
        if stored.id in stack:
            stack.remove(stored.id)

    async def close_view(self, bot_url: str, *, user: str, view_id: str | None = None) -> AppReply | None:
        """The user presses Close; Slack tells the app only when the view has notify_on_close."""
        person = self.person(user)
        stack = self._stacks.get(person.slack_id, [])
        view_id = view_id or (stack[-1] if stack else None)
        stored = self.views.get(view_id or "")
        if stored is None or stored.user != person.slack_id or not stored.open:
            raise SandboxError(f"{person.handle} has no open modal {view_id}")
        self._close(stored, "user")
        if not stored.view.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed",
            **self._envelope(person, None),
            "view": copy.deepcopy(stored.view),
            "is_cleared": False,
        }
        return await self._send_payload(bot_url, payload)

    async def command(
        self,
        bot_url: str,
        *,
        user: str,
        text: str = "",
        channel: str = "C0GENERAL",
        command: str = "/approvals",
    ) -> AppReply:
        """A slash command as Slack sends it (form fields); a non-empty ack body is shown to the user."""
        person = self.person(user)
        channel = self._dm_if_user(channel)
        if channel not in self.channels and self._dm_owner(channel) is None:
            raise SandboxError(f"no channel {channel} in the Slack sandbox")
        self._visible_to(person, channel)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "directmessage" if self._dm_owner(channel) else self.channel_name(channel),
            "user_id": person.slack_id,
            "user_name": person.handle,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_hook(person.slack_id, channel),
            "trigger_id": self.issue_trigger(person.slack_id),
        }
        body = urlencode(fields)
        reply = await self.send_raw(bot_url, body, self.signed_headers(body))
        if reply.status == 200 and reply.text.strip():
            await self._show_ack(person, channel, reply)
        return reply

    async def _show_ack(self, person: DemoPerson, channel: str, reply: AppReply) -> None:
        body = reply.json
        blocks: list[dict[str, Any]] = []
        if isinstance(body, dict):
            text = str(body.get("text") or "")
            if isinstance(body.get("blocks"), list):
                blocks = body["blocks"]
            in_channel = body.get("response_type") == "in_channel"
        else:
            text, in_channel = reply.text, False
        if not text and not blocks:
            return
        if in_channel:
            ts = self._next_ts()
            self.messages[(channel, ts)] = StoredMessage(channel, ts, text, blocks, BOT_USER_ID, self.clock())
            await self._emit(channel, ts, text, blocks, "post")
            return
        ephemeral = self._add_ephemeral(channel, person.slack_id, text, blocks, "ack")
        await self._emit(channel, ephemeral.ts, text, blocks, "ephemeral")

    def new_event_id(self) -> str:
        self._seq += 1
        return f"Ev{self._seq:08d}{self._random_id(4).upper()}"

    async def event(
        self,
        bot_url: str,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> AppReply:
        """An Events API callback (JSON); pass the same event_id with retry_num to send Slack's retry."""
        now = self.clock()
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": event_id or self.new_event_id(),
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        body = json.dumps(envelope)
        headers = self.signed_headers(body, content_type=JSON)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self.send_raw(bot_url, body, headers)

    async def open_home(self, bot_url: str, *, user: str) -> AppReply:
        """The user opens the bot's Home tab: app_home_opened with tab "home"."""
        person = self.person(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": person.slack_id,
            "channel": self.dm_channel(person.slack_id),
            "tab": "home",
            "event_ts": f"{self.clock():.6f}",
        }
        home = self.home.get(person.slack_id)
        if home is not None:
            event["view"] = copy.deepcopy(home)
        return await self.event(bot_url, event)

    async def wait_for(
        self,
        predicate: Callable[[], _T | None],
        timeout: float = 5.0,
        *,
        interval: float = 0.02,
        what: str = "",
    ) -> _T:
        """Poll until `predicate()` is truthy and return its value (Bolt acks before the work is done).

        Uses real time: an injected clock would never advance while the app works.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"not within {timeout}s: {what or getattr(predicate, '__name__', 'condition')}"
                )
            await asyncio.sleep(interval)

    # ---- the page for people ---------------------------------------------------------------------------

    async def _page_help(self, request: web.Request) -> web.Response:
        text = (
            "Slack sandbox\n"
            f"  GET  {self.url}/sandbox/messages   every message as text, with its buttons\n"
            f"  GET  {self.url}/sandbox/views      open modals and Home tabs\n"
            f"  POST {self.url}/sandbox/click      press a button, e.g.\n"
            f'       curl -d \'{{"user": "alice", "channel": "C0DEPLOYS", "ts": "<ts>", "label": "Approve"}}\' '
            f"{self.url}/sandbox/click\n"
            f'       (or {{"user": "alice", "ephemeral": true, "label": ...}} for her latest private message)\n'
            f"  POST {self.url}/sandbox/submit     submit the open modal, e.g.\n"
            f'       curl -d \'{{"user": "alice", "values": {{"Reason": "not this week"}}}}\' {self.url}/sandbox/submit\n'
        )
        return web.Response(text=text)

    def transcript(self) -> str:
        """Every message and ephemeral as readable text, in posting order."""
        names = self.names()
        entries: list[tuple[tuple[int, int], str]] = []
        for m in self.messages.values():
            where = f"#{self.channel_name(m.channel)}"
            thread = f" (in thread {m.thread_ts})" if m.thread_ts else ""
            edited = f" (edited {m.edits}x)" if m.edits else ""
            head = f"── {where} channel={m.channel} ts={m.ts}{thread}{edited}"
            entries.append((_ts_key(m.ts), f"{head}\n{_indent(m.render(names))}"))
        for e in self.ephemerals:
            if e.deleted:
                continue
            head = (
                f"── #{self.channel_name(e.channel)} ts={e.ts} (only {self.people[e.user].handle} sees this)"
            )
            entries.append((_ts_key(e.ts), f"{head}\n{_indent(e.render(names))}"))
        return "\n\n".join(text for _, text in sorted(entries)) + ("\n" if entries else "(no messages yet)\n")

    async def _page_messages(self, request: web.Request) -> web.Response:
        if request.query.get("format") == "json":
            data = [
                {
                    "channel": m.channel,
                    "ts": m.ts,
                    "thread_ts": m.thread_ts,
                    "text": m.text,
                    "rendered": m.render(self.names()),
                    "buttons": button_labels(m.blocks),
                    "edits": m.edits,
                }
                for m in sorted(self.messages.values(), key=lambda m: _ts_key(m.ts))
            ]
            return web.json_response(data)
        return web.Response(text=self.transcript())

    async def _page_views(self, request: web.Request) -> web.Response:
        names = self.names()
        parts = []
        for stored in self.views.values():
            if not stored.open:
                continue
            who = self.people[stored.user].handle if stored.user in self.people else stored.user
            label = "Home tab" if stored.kind == "home" else "modal"
            parts.append(f"── {label} {stored.id} for {who}\n{_indent(stored.render(names))}")
        return web.Response(text="\n\n".join(parts) + "\n" if parts else "(no views open)\n")

    async def _page_click(self, request: web.Request) -> web.Response:
        """POST {user, channel, ts, label}; or {user, ephemeral: true, label} for the user's latest private message."""
        data = await _page_body(request)
        if data is None:
            return web.Response(status=400, text="send JSON: {user, channel, ts, label}\n")
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        label = str(data["label"]) if data.get("label") else None
        action_id = str(data["action_id"]) if data.get("action_id") else None
        needed = ("user",) if data.get("ephemeral") else ("user", "channel", "ts")
        missing = [k for k in needed if not data.get(k)] + ([] if label or action_id else ["label"])
        if missing:
            return web.Response(status=400, text=f"missing: {', '.join(missing)}\n")
        try:
            if data.get("ephemeral"):
                reply = await self.click_ephemeral(
                    self.bot_url, user=str(data["user"]), label=label, action_id=action_id
                )
            else:
                reply = await self.click(
                    self.bot_url,
                    user=str(data["user"]),
                    channel=str(data["channel"]),
                    ts=str(data["ts"]),
                    label=label,
                    action_id=action_id,
                )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": reply.status, "body": reply.text})

    async def _page_command(self, request: web.Request) -> web.Response:
        """POST {user, text, channel?}: run /approvals as that user; the answer lands in their ephemerals."""
        data = await _page_body(request)
        if data is None or not data.get("user"):
            return web.Response(status=400, text='send JSON: {"user": "alice", "text": "list"}\n')
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        try:
            reply = await self.command(
                self.bot_url,
                user=str(data["user"]),
                text=str(data.get("text") or ""),
                channel=str(data.get("channel") or "C0GENERAL"),
            )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": reply.status, "body": reply.text})

    async def _page_submit(self, request: web.Request) -> web.Response:
        """POST {user, values: {label: value}, view_id?}: submit the user's open modal."""
        data = await _page_body(request)
        if data is None or not data.get("user"):
            return web.Response(status=400, text="send JSON: {user, values: {label: value}, view_id}\n")
        if not self.bot_url:
            return web.Response(status=409, text="no bot is connected to this sandbox\n")
        values = data.get("values") if isinstance(data.get("values"), dict) else {}
        try:
            result = await self.submit_view(
                self.bot_url,
                user=str(data["user"]),
                view_id=str(data["view_id"]) if data.get("view_id") else None,
                values=values,
            )
        except SandboxError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        return web.json_response({"status": result.status, "body": result.text, "closed": result.closed})


async def _page_body(request: web.Request) -> dict[str, Any] | None:
    # `curl -d '{...}'` sends JSON labelled as a form: read JSON whatever the content type says.
    raw = await request.text()
    try:
        data = json.loads(raw)
    except ValueError:
        data = {k: v[-1] for k, v in parse_qs(raw).items()}
    return data if isinstance(data, dict) and data else None
