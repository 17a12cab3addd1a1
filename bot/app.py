"""Builds the Bolt AsyncApp: listeners, event de-duplication, one handler for the unexpected."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners import register_all
from bot.listeners.deps import Deps

log = logging.getLogger(__name__)


def build_app(
    deps: Deps, *, client: AsyncWebClient, signing_secret: str | None, socket_mode: bool
) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret if not socket_mode else None,
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )

    @app.middleware
    async def once_per_event(body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        # Slack re-sends an event it thinks we missed (up to 3 times): handle each event id once.
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not await deps.services.store.first_time_event(event_id=event_id):
            return BoltResponse(status=200, body="")
        return await next()

    register_all(app, deps)

    @app.error
    async def unexpected(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)

    return app
