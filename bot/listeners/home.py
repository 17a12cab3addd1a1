"""App Home: what waits on me, my linked accounts, each connector's health."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.ids import ActionId
from bot.listeners.deps import Deps, user_id

log = logging.getLogger(__name__)


async def publish_home(deps: Deps, user: str) -> None:
    services = deps.services
    states = await services.pending_for(slack_user=user)
    linked = {i.connector: i for i in await services.store.identities(slack_user_id=user)}
    accounts = [
        (
            name,
            connector.vendor_label,
            linked[name].display_name if name in linked else None,
            connector.capabilities.link_mode,
        )
        for name, connector in services.connectors.items()
    ]
    view = blocks.home_view(states, accounts=accounts, status=await services.status_lines())
    try:
        await deps.notifier.client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("views.publish for %s failed: %s", user, exc.response.get("error"))


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home" or not isinstance(event.get("user"), str):
            return
        await publish_home(deps, event["user"])

    @app.action(ActionId.DISCONNECT.value)
    async def disconnect(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is None:
            return
        message = await deps.services.unlink(connector_name=str(action.get("value") or ""), slack_user=user)
        await deps.notifier.tell(user=user, message=message)
        await publish_home(deps, user)

    @app.action(ActionId.HOME_REFRESH.value)
    async def refresh(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is not None:
            await publish_home(deps, user)
