"""Modal submissions: linking credentials, deciding with a comment or inputs, starting approvals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.ids import ItemRef, ViewId, ref_digest
from bot.listeners.deps import Deps, metadata, user_id, view_values
from bot.services import LinkOutcome, Origin
from connectors.base import Action, ActionSpec, Actor, Connector, InputDef
from connectors.errors import ConnectorError

log = logging.getLogger(__name__)

# Slack closes a view_submission after 3 s; verification gets this long before the modal says "Checking…".
VERIFY_WINDOW = 2.0


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(ViewId.CONNECT.value)
    async def connect_submitted(ack: Any, body: dict[str, Any]) -> None:
        await _connect_submitted(deps, ack, body)

    @app.view(ViewId.DECIDE.value)
    async def decide_submitted(ack: Any, body: dict[str, Any]) -> None:
        await _decide_submitted(deps, ack, body)

    @app.view(ViewId.REQUEST.value)
    async def request_submitted(ack: Any, body: dict[str, Any]) -> None:
        await _request_submitted(deps, ack, body)


async def _connect_submitted(deps: Deps, ack: Any, body: dict[str, Any]) -> None:
    user = user_id(body)
    meta = metadata(body)
    name = str(meta.get("c") or "")
    connector = deps.services.connectors.get(name)
    if user is None or connector is None:
        await ack()
        return
    values = {key.removeprefix("cred|"): v for key, v in view_values(body).items() if key.startswith("cred|")}
    task = asyncio.ensure_future(deps.services.link(connector_name=name, slack_user=user, values=values))
    done, _ = await asyncio.wait({task}, timeout=VERIFY_WINDOW)
    if not done:
        await _finish_slow_link(deps, ack, body, user=user, name=name, connector=connector, task=task)
        return
    outcome = task.result()
    if outcome.field_errors:
        await ack(response_action="errors", errors={f"cred|{k}": v for k, v in outcome.field_errors.items()})
        return
    await ack()
    if outcome.message:
        await deps.gateway.tell(user=user, message=outcome.message, channel=meta.get("ch"))


async def _finish_slow_link(
    deps: Deps,
    ack: Any,
    body: dict[str, Any],
    *,
    user: str,
    name: str,
    connector: Connector,
    task: asyncio.Future[LinkOutcome],
) -> None:
    """The vendor is slow: keep the modal open with a "Checking…" page and finish there."""
    await ack(response_action="update", view=blocks.checking_view(connector.vendor_label))
    outcome = await task
    view_id = (body.get("view") or {}).get("id")
    if outcome.field_errors:
        text = (
            ":x: "
            + " ".join(outcome.field_errors.values())
            + f" Run `/approvals connect {name}` to try again."
        )
    else:
        text = outcome.message.text if outcome.message else "Done."
    error = await deps.gateway.update_view(
        view_id=str(view_id or ""), view=blocks.checking_view(connector.vendor_label, text)
    )
    if error is not None:  # the person may have closed the modal; tell them in a DM instead
        log.info("views.update after slow verify failed: %s", error)
        if outcome.message:
            await deps.gateway.tell(user=user, message=outcome.message)


async def _decide_submitted(deps: Deps, ack: Any, body: dict[str, Any]) -> None:
    user = user_id(body)
    meta = metadata(body)
    try:
        action = Action(str(meta.get("a")))
    except ValueError:
        action = None
    ref = await _decided_ref(deps, meta)
    connector = deps.services.connectors.get(ref.connector) if ref else None
    if user is None or action is None or connector is None or ref is None:
        await ack()
        if user is not None:
            await deps.gateway.tell(user=user, message=STALE_FORM)
        return
    values = view_values(body)
    comment = values.pop("input|__comment__", None)
    stored = await deps.services.store.item(connector=ref.connector, external_id=ref.external_id)
    spec = stored.item.action(action) if stored else None
    inputs, errors = await _decide_inputs(deps, connector, spec, values)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    origin = Origin(channel=str(meta.get("ch") or "") or None, ts=str(meta.get("ts") or "") or None)
    reply = await deps.services.decide(
        ref=ref, action=action, slack_user=user, comment=comment, inputs=inputs, origin=origin
    )
    if reply is not None:
        await deps.gateway.tell(user=user, message=reply, channel=meta.get("ch") or None)


async def _decide_inputs(
    deps: Deps, connector: Connector, spec: ActionSpec | None, values: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The modal's inputs by name (a picked Slack user turned into their vendor id, a digest back
    into the choice it stands for), and the errors to show on the modal, by block."""
    kinds: dict[str, InputDef] = {i.name: i for i in spec.inputs} if spec else {}
    inputs: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        if not key.startswith("input|"):
            continue
        name = key.removeprefix("input|")
        definition = kinds.get(name)
        if definition is not None and definition.kind == "slack_user" and value:
            vendor_id, problem = await _vendor_user(deps, connector, value)
            if problem:
                errors[key] = problem
                continue
            value = vendor_id or ""
        elif definition is not None and definition.kind == "select" and definition.allowed:
            # Option values longer than Slack allows were sent as digests (blocks.option_value).
            picked = blocks.chosen_value(value, definition.allowed)
            if picked is None:
                errors[key] = "Pick one of the choices offered."
                continue
            value = picked
        inputs[name] = value
    return inputs, errors


async def _request_submitted(deps: Deps, ack: Any, body: dict[str, Any]) -> None:
    """A "start an approval" modal: acknowledged at once (the vendor may take longer than Slack
    waits), then started as the person and answered privately."""
    user = user_id(body)
    meta = metadata(body)
    connector = deps.services.connectors.get(str(meta.get("c") or ""))
    if user is None or connector is None:
        await ack()
        return
    chosen, inputs = _request_form(body, meta)
    await ack()
    actor = await deps.services.actor(connector, user)
    if isinstance(actor, blocks.Message):
        message = actor
    else:
        message = await _start_request(connector, actor, chosen, inputs, str(meta.get("t") or "") or None)
    await deps.gateway.tell(user=user, message=message, channel=meta.get("ch") or None)


def _request_form(body: dict[str, Any], meta: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """What was picked (an id, or `#digest` of one too long for an option value) and the inputs;
    the target the modal was opened for is an input too unless the form gave one."""
    values = view_values(body)
    chosen = values.pop("input|__requestable__", "")
    inputs = {k.removeprefix("input|"): v for k, v in values.items() if k.startswith("input|")}
    if meta.get("t"):
        inputs.setdefault("target", str(meta["t"]))
    return chosen, inputs


async def _start_request(
    connector: Connector, actor: Actor, chosen: str, inputs: dict[str, str], target: str | None
) -> blocks.Message:
    """Start `chosen` in the vendor as `actor`; the answer says what started or why not."""
    try:
        if chosen.startswith("#"):  # an id longer than an option value holds: find it again
            offered = await connector.requestable(actor, target)
            chosen = next((o.id for o in offered if blocks.option_value(o.id) == chosen), "")
            if not chosen:
                return STALE_FORM
        item = await connector.request(actor, chosen, inputs)
    except ConnectorError as exc:
        return blocks.notice(
            f"{connector.vendor_label} did not start it: {blocks.cut(blocks.escape(exc.detail or str(exc)), 300)}"
        )
    title = f"“{blocks.escape(item.title)}”" if item else "it"
    return blocks.notice(
        f":white_check_mark: Started {title} in {connector.vendor_label}. Approvers get their cards on the next sync."
    )


STALE_FORM = blocks.notice(
    "That form is from an older view I cannot read any more. Nothing was changed; "
    "`/approvals` lists what waits on you now."
)


async def _decided_ref(deps: Deps, meta: Mapping[str, str]) -> ItemRef | None:
    """The item a decide modal was opened for: its id, or the digest of an id too long to carry."""
    connector = meta.get("c") or ""
    if meta.get("i"):
        return ItemRef(connector, meta["i"])
    wanted = meta.get("h")
    if not connector or not wanted:
        return None
    for stored in await deps.services.store.pending_items(connectors=[connector]):
        if ref_digest(stored.item.external_id) == wanted:
            return ItemRef(connector, stored.item.external_id)
    return None


async def _vendor_user(deps: Deps, connector: Any, slack_user: str) -> tuple[str | None, str | None]:
    """A picked Slack user → their vendor id, by their Slack email (never by trusting a name)."""
    try:
        profile = await deps.gateway.user_profile(slack_user)
    except Exception:
        return None, "Could not read that person's Slack profile. Try again."
    email = profile.get("email")
    if not email:
        return None, "That person has no email on their Slack profile, so I cannot find them."
    try:
        identity = await connector.identify(email)
    except ConnectorError:
        return None, f"Could not reach {connector.vendor_label} to look them up. Try again."
    if identity is None:
        return (
            None,
            f"{profile.get('name') or 'That person'} has no {connector.vendor_label} account with {email}.",
        )
    return identity.user_id, None
