"""Buttons on approval cards and private answers: Approve, Reject, …, Connect, "with a comment"."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.ids import CARD_ACTION, ActionId, ItemRef, action_from_id
from bot.listeners.deps import Deps, origin_of, user_id
from connectors.base import Action, ActionSpec

log = logging.getLogger(__name__)

STALE = blocks.notice(
    "That button is from an older card I cannot read any more. Nothing was changed; `/approvals` lists "
    "what waits on you now."
)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ActionId.OPEN.value)
    async def open_link(ack: Any) -> None:
        # A URL button still sends an interaction; Slack opens the link itself.
        await ack()

    @app.action(CARD_ACTION)
    async def card_action(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await handle_click(deps, body, action_from_id(str(action.get("action_id"))), action.get("value"))

    @app.action(ActionId.WITH_COMMENT.value)
    async def with_comment(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        raw = str(action.get("value") or "")
        verb, _, value = raw.partition("#")
        try:
            chosen = Action(verb)
        except ValueError:
            chosen = None
        await handle_click(deps, body, chosen, value, force_comment=True)

    @app.action(ActionId.CONNECT.value)
    async def connect(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = user_id(body)
        if user is None:
            return
        from bot.listeners.commands import open_connect

        await open_connect(
            deps, user, str(action.get("value") or ""), body.get("trigger_id"), origin_of(body)
        )


async def handle_click(
    deps: Deps, body: dict[str, Any], chosen: Action | None, value: Any, *, force_comment: bool = False
) -> None:
    with deps.ack_first.working():
        await _handle_click(deps, body, chosen, value, force_comment=force_comment)


async def _handle_click(
    deps: Deps, body: dict[str, Any], chosen: Action | None, value: Any, *, force_comment: bool
) -> None:
    user = user_id(body)
    origin = origin_of(body)
    if user is None:
        return
    ref = ItemRef.decode(value if isinstance(value, str) else None)
    if chosen is None or ref is None:
        await deps.gateway.tell(
            user=user, message=STALE, response_url=origin.response_url, channel=origin.channel
        )
        return
    await deps.ack_first.wait()
    services = deps.services
    check = await services.precheck(ref=ref, action=chosen, slack_user=user, origin=origin)
    if check.reply is not None or check.item is None:
        if check.reply is not None:
            await deps.gateway.tell(
                user=user, message=check.reply, response_url=origin.response_url, channel=origin.channel
            )
        return
    spec = check.item.item.action(chosen)
    assert spec is not None
    if spec.needs_modal or force_comment:
        await open_decide_modal(deps, body, check.item.item, spec, force_comment=force_comment)
        return
    reply = await services.decide(ref=ref, action=chosen, slack_user=user, checked=check, origin=origin)
    if reply is not None:
        await deps.gateway.tell(
            user=user, message=reply, response_url=origin.response_url, channel=origin.channel
        )


async def open_decide_modal(
    deps: Deps, body: dict[str, Any], item: Any, spec: ActionSpec, *, force_comment: bool = False
) -> None:
    user = user_id(body)
    origin = origin_of(body)
    trigger = body.get("trigger_id")
    assert user is not None
    view = blocks.decide_modal(item=item, spec=spec, origin=origin.as_metadata(), force_comment=force_comment)
    error = await deps.gateway.open_view(trigger_id=str(trigger or ""), view=view)
    if error is not None:
        log.info("views.open failed: %s", error)
        await deps.gateway.tell(
            user=user,
            message=blocks.notice(
                "Slack did not open the form in time (it allows 3 seconds). Nothing was changed; click again."
            ),
            response_url=origin.response_url,
            channel=origin.channel,
        )
