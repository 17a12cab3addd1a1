"""The Socket Mode surface of the Slack sandbox: the WebSocket an app opens after
apps.connections.open, envelopes delivered over it and the acks awaited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from bot.sandbox.slack_client import PlayingClient
from bot.sandbox.slack_model import (
    APP_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    AppReply,
    SandboxError,
)


class SocketModeSurface(PlayingClient):
    """Socket Mode."""

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get("/socket-mode/{id}", self._socket)

    # ---- Socket Mode ---------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """The WebSocket an app opens after apps.connections.open: hello, then envelopes it must ack."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "connection_info": {"app_id": APP_ID},
                "debug_info": {"host": "sandbox"},
            }
        )
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    continue
                future = self._acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data.get("payload") or {})
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def socket_send(
        self, kind: str, payload: Mapping[str, Any], timeout: float | None = None
    ) -> AppReply:
        """Deliver one envelope over Socket Mode ("slash_commands", "interactive", "events_api") and
        wait for the app's ack, as Slack does (3 s)."""
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            raise SandboxError("no app is connected over Socket Mode")
        envelope_id = f"{self._random_id(8)}-{self._next_ts()}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await live[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": dict(payload),
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            ack = await asyncio.wait_for(future, timeout or self.ack_timeout)
        except TimeoutError:
            self._acks.pop(envelope_id, None)
            return AppReply(0, "operation_timeout", timed_out=True)
        return AppReply(200, json.dumps(ack) if ack else "")

    async def socket_command(self, *, user: str, text: str = "", channel: str = "C0GENERAL") -> AppReply:
        """/approvals over Socket Mode (the same fields as over HTTP, as a JSON payload)."""
        person = self.person(user)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": self.channel_name(channel),
            "user_id": person.slack_id,
            "user_name": person.handle,
            "command": "/approvals",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_hook(person.slack_id, channel),
            "trigger_id": self.issue_trigger(person.slack_id),
        }
        return await self.socket_send("slash_commands", fields)
