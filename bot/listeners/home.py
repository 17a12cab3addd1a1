"""App Home: what waits on me, my linked accounts, each connector's health."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.bulk import (
    approve_all,
    bulk_candidates,
    bulk_modal,
    resolve,
    results_view,
    selected_values,
    working_view,
)
from bot.ids import ActionId, ViewId
from bot.listeners.deps import Deps, slack_id, user_id
from bot.services import Services
from bot.slack.gateway import Deferred, SlackFailure
from bot.slack_text import escaped

log = logging.getLogger(__name__)


async def home_view(services: Services, user: str) -> dict[str, Any]:
    """The App Home of one person, rendered now (used by the outbox's Home jobs too)."""
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
    # Rendered in a worker thread: a full Home is up to 100 blocks checked by slack_sdk, a CPU
    # burst that would otherwise hold up every click being acknowledged meanwhile.
    # Connector detail (vendor errors, counts, sync times) is for admins; others see working or failing.
    status = await services.status_lines(detail=await services.is_admin(user))
    return await asyncio.to_thread(blocks.home_view, states, accounts=accounts, status=status)


async def publish_home(deps: Deps, user: str) -> None:
    """Straight through the gateway: the person has just opened or changed their Home and looks at it."""
    view = await home_view(deps.services, user)
    try:
        await deps.gateway.publish_home(user=user, view=view)
    except (SlackFailure, Deferred) as exc:
        log.warning("views.publish for %s failed: %s", user, exc)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        user = slack_id(event.get("user"))
        if event.get("tab", "home") != "home" or user is None:
            return
        await publish_home(deps, user)

    @app.action(ActionId.DISCONNECT.value)
    async def disconnect(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is None:
            return
        message = await deps.services.unlink(connector_name=str(action.get("value") or ""), slack_user=user)
        await deps.gateway.tell(user=user, message=message)
        await publish_home(deps, user)

    @app.action(ActionId.BULK_OPEN.value)
    async def bulk_open(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is None:
            return
        states = await deps.services.pending_for(slack_user=user)
        candidates = bulk_candidates(states)
        if not candidates:
            await deps.gateway.tell(
                user=user, message=blocks.notice("Nothing waiting on you can be approved in bulk.")
            )
            return
        view = bulk_modal(candidates, skipped=len(states) - len(candidates))
        error = await deps.gateway.open_view(trigger_id=str(body.get("trigger_id") or ""), view=view)
        if error is not None:
            await deps.gateway.tell(
                user=user, message=blocks.notice("Slack did not open the list in time; try again.")
            )

    @app.view(ViewId.BULK.value)
    async def bulk_submitted(ack: Any, body: dict[str, Any]) -> None:
        user = user_id(body)
        refs = await resolve(deps.services.store, selected_values(body))
        if user is None or not refs:
            await ack(response_action="errors", errors={"bulk|0": "Pick at least one."})
            return
        await ack(response_action="update", view=working_view(len(refs)))
        results = await approve_all(deps.services, slack_user=user, refs=refs)
        view_id = (body.get("view") or {}).get("id")
        if await deps.gateway.update_view(view_id=str(view_id or ""), view=results_view(results)) is not None:
            lines = "\n".join(
                f"{'✅' if ok else '❌'} {escaped(t, 150)}: {escaped(w, 400)}" for t, ok, w in results
            )
            await deps.gateway.tell(user=user, message=blocks.notice(lines))
        await publish_home(deps, user)

    @app.action(ActionId.HOME_REFRESH.value)
    async def refresh(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is not None:
            await publish_home(deps, user)
