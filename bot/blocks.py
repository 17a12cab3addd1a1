"""Block Kit as pure functions of stored state.

Why pure: a card update is "rebuild from the store and chat.update", so every state must render
from data alone (pending, working, approved by whom, rejected with notes, decided elsewhere,
expired, cancelled, failed). Nothing here touches the network or the database.
Built with slack_sdk's models so Slack's limits are checked in `to_dict()`; texts are escaped and
cut to fit before they get there.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.ids import ActionId, ViewId, card_action_id, fitted_ref, ref_digest
from bot.slack_text import (
    BUTTON_URL,
    BUTTON_VALUE,
    CONFIRM_BUTTON,
    CONFIRM_TEXT,
    CONFIRM_TITLE,
    FIELD_TEXT,
    INPUT_LABEL,
    OPTION_TEXT,
    OPTION_VALUE,
    PLACEHOLDER,
    PRIVATE_METADATA,
    VIEW_TITLE,
    clean,
    escaped,
    plain,
    short_id,
)
from bot.slack_text import cut as cut  # re-exported: listeners and services use blocks.cut/escape
from bot.slack_text import escape as escape
from bot.slack_text import link as mrkdwn_link
from connectors.base import (
    Action,
    ActionSpec,
    ApprovalItem,
    CredentialField,
    GroupState,
    InputDef,
    Requestable,
    Status,
)

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
FALLBACK_TEXT = 3000

ACTION_LABELS = {
    Action.APPROVE: "Approve",
    Action.REJECT: "Reject",
    Action.ABSTAIN: "Abstain",
    Action.RESET: "Reset",
    Action.REASSIGN: "Reassign",
    Action.COMMENT: "Comment",
    Action.CANCEL: "Cancel",
    Action.REQUEST: "Request approvals",
}
ACTION_VERBS = {
    Action.APPROVE: "approving",
    Action.REJECT: "rejecting",
    Action.ABSTAIN: "abstaining",
    Action.RESET: "resetting",
    Action.REASSIGN: "reassigning",
    Action.COMMENT: "commenting",
    Action.CANCEL: "cancelling",
    Action.REQUEST: "requesting",
}
STATUS_LINES = {
    Status.APPROVED: ":white_check_mark: *Approved*",
    Status.REJECTED: ":x: *Rejected*",
    Status.EXPIRED: ":hourglass: *Expired*",
    Status.CANCELLED: ":no_entry_sign: *Cancelled*",
}


# Escaped vendor text inside a longer line (a kind, a person, a label) gets at most this much.
SHORT = 200


def slack_date(when: datetime, fmt: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack renders in each reader's own time zone, with a UTC fallback."""
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{fmt}|{fallback}>"


def humanize(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 90:
        return f"{max(seconds, 1)} s" if seconds < 60 else "1 min"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


@dataclass(frozen=True)
class CardState:
    """What a card is rendered from: the vendor snapshot plus the bot's own knowledge."""

    item: ApprovalItem
    vendor_label: str
    connector_name: str
    now: datetime
    synced_at: datetime | None = None
    working_by: str | None = None  # Slack user id of a click in progress
    working_action: Action | None = None
    decided_by: str | None = None  # Slack user id who decided through the bot
    decided_action: Action | None = None
    decided_at: datetime | None = None
    decided_comment: str | None = None
    last_error: str | None = None
    # Set for a person's own copy once it is no longer their turn (reassigned, their group done).
    not_theirs: bool = False
    # A person's own copy: why it reached them ("You are in SRE leads").
    reason: str | None = None
    # A person's own copy while they cannot act yet (not linked): one button that starts linking.
    link_first: bool = False
    # The channel's copy: approvers who could not be found in Slack, named so someone tells them.
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict[str, Any]]


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=cut(text, SECTION_TEXT))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_mrkdwn(text))


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[_mrkdwn(t) for t in texts if t][:10])


def item_value(item: ApprovalItem, limit: int = BUTTON_VALUE) -> str:
    return fitted_ref(item.connector, item.external_id, limit)


def option_value(value: str) -> str:
    """A select option's value: the vendor's own when it fits in 150, else "#" and its digest,
    which `chosen_value` maps back to the vendor's value (never a truncated, wrong one)."""
    return value if len(value) <= OPTION_VALUE and not value.startswith("#") else "#" + ref_digest(value)


def chosen_value(picked: str, allowed: Sequence[str]) -> str | None:
    """The vendor value behind a submitted option value (None when it names none of `allowed`)."""
    for value in allowed:
        if option_value(value) == picked:
            return value
    return None


def metadata_json(data: Mapping[str, str], *, origin: Mapping[str, str] | None = None) -> str:
    """A modal's private_metadata within Slack's 3,000 characters: `origin` values (channel, ts)
    are dropped unless they look like Slack's short ids, and an external id too long to fit is
    replaced by its digest ("h"), which the submission looks up instead of decoding."""
    packed = dict(data)
    packed.update({k: v for k, v in (origin or {}).items() if isinstance(v, str) and 0 < len(v) <= 64})
    text = json.dumps(packed, ensure_ascii=False, separators=(",", ":"))
    if len(text) > PRIVATE_METADATA and "i" in packed:
        packed["h"] = ref_digest(packed.pop("i"))
        text = json.dumps(packed, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= PRIVATE_METADATA else "{}"


def action_button(item: ApprovalItem, spec: ActionSpec) -> ButtonElement:
    label = spec.label or ACTION_LABELS[spec.action]
    style = "primary" if spec.action is Action.APPROVE else "danger" if spec.action is Action.REJECT else None
    confirm = None
    if spec.confirm or spec.action in (Action.REJECT, Action.CANCEL):
        verb = escaped(label.lower(), 40)
        question = (
            escape(spec.confirm) if spec.confirm else f"Do you want to {verb} “{escaped(item.title, SHORT)}”?"
        )
        confirm = ConfirmObject(
            title=plain(f"{label}?", CONFIRM_TITLE),
            text=cut(question, CONFIRM_TEXT) or "Are you sure?",
            confirm=plain(label, CONFIRM_BUTTON),
            deny="Back",
            style="danger" if style == "danger" else None,
        )
    return ButtonElement(
        text=plain(label, BUTTON_TEXT),
        action_id=card_action_id(spec.action),
        value=item_value(item),
        style=style,
        confirm=confirm,
    )


def open_button(item: ApprovalItem, vendor_label: str) -> ButtonElement | None:
    if not item.url or len(item.url) > BUTTON_URL or not item.url.lower().startswith(("https://", "http://")):
        return None  # a cut URL would open the wrong page; the card keeps its other buttons
    return ButtonElement(
        text=plain(f"Open in {vendor_label}", BUTTON_TEXT),
        action_id=ActionId.OPEN.value,
        url=clean(item.url),
        value=item_value(item),
    )


def _person(label: str | None) -> str:
    return escaped(label, SHORT) if label else "someone"


def _group_line(item: ApprovalItem) -> list[str]:
    lines = []
    for group in item.groups:
        marker = {GroupState.DUE: ":large_orange_circle:", GroupState.WAITING: ":white_circle:"}.get(
            group.state, ":large_green_circle:"
        )
        approved = len(group.approved_by)
        names = ", ".join(escaped(p.label, SHORT) for p in group.approved_by)
        progress = f"{approved} of {group.required} approved" + (f" ({names})" if names else "")
        if group.rejected_by:
            progress += " · rejected by " + ", ".join(escaped(p.label, SHORT) for p in group.rejected_by)
        state = {GroupState.DUE: "their turn", GroupState.WAITING: "waiting", GroupState.RESOLVED: "done"}[
            group.state
        ]
        lines.append(f"{marker} *{escaped(group.name, SHORT)}*: {progress} · {state}")
    return lines


def status_line(state: CardState) -> str:
    item = state.item
    if item.status is Status.PENDING:
        if state.working_by:
            verb = ACTION_VERBS.get(state.working_action or Action.APPROVE, "working")
            return f":hourglass_flowing_sand: Working… <@{state.working_by}> is {verb} this."
        return ""
    head = STATUS_LINES[item.status]
    if state.decided_by and state.decided_action and _matches(state.decided_action, item.status):
        when = f" on {slack_date(state.decided_at)}" if state.decided_at else ""
        line = f"{head} by <@{state.decided_by}>{when}"
        if state.decided_comment:
            line += f"\n>{escaped(state.decided_comment, 500)}"
        return line
    who = f" by {_person(item.decided_by.label)}" if item.decided_by else ""
    when = f" on {slack_date(item.decided_at)}" if item.decided_at else ""
    where = (
        f" in {escaped(state.vendor_label, SHORT)}"
        if item.status in (Status.APPROVED, Status.REJECTED)
        else ""
    )
    line = f"{head}{who}{where}{when}"
    if item.decision_note:
        line += f"\n>{escaped(item.decision_note, 500)}"
    return line


def _matches(action: Action, status: Status) -> bool:
    return (action, status) in {
        (Action.APPROVE, Status.APPROVED),
        (Action.REJECT, Status.REJECTED),
        (Action.CANCEL, Status.CANCELLED),
    }


def card(state: CardState) -> Message:
    """Every state of an item's card from one function of the state, top to bottom: what it is,
    what it waits for, who decided, the buttons, where it came from."""
    item = state.item
    blocks: list[Block] = [HeaderBlock(text=plain(item.title, HEADER_TEXT)), *_summary_blocks(item)]
    group_lines = _group_line(item)
    if group_lines:
        blocks.append(_section("\n".join(group_lines)))
    blocks += _deadline_blocks(state)
    blocks += [_section(f":warning: {escape(notice)}") for notice in item.notices[:5]]
    blocks += _why_here_blocks(state)
    line = status_line(state)
    if line:
        blocks.append(_section(line))
    blocks += _pending_notes(state)
    blocks += _button_blocks(state)
    blocks.append(_source_context(state))
    return Message(_card_fallback(item), to_dicts(blocks, MAX_BLOCKS))


def _summary_blocks(item: ApprovalItem) -> list[Block]:
    """Kind, requester, date and summary, with the vendor's fields beside them.

    A section holds at most ten fields, so up to twenty go in two sections."""
    intro = [f"*{escaped(item.kind, SHORT)}*"]
    if item.requester:
        intro.append(f"requested by {escaped(item.requester.label, SHORT)}")
    if item.created_at:
        intro.append(slack_date(item.created_at))
    text = " · ".join(intro)
    if item.summary:
        text += "\n" + escaped(item.summary, 2000)
    fields = [
        MarkdownTextObject(text=cut(f"*{escaped(f.label, SHORT)}*\n{escaped(f.value, 500)}", FIELD_TEXT))
        for f in item.fields[:20]
    ]
    blocks: list[Block] = [SectionBlock(text=_mrkdwn(text), fields=fields[:10] or None)]
    if len(fields) > 10:
        blocks.append(SectionBlock(fields=fields[10:20]))
    return blocks


def _deadline_blocks(state: CardState) -> list[Block]:
    """A pending item's time left, or EXPIRED once it passed (the vendor may not have said yet)."""
    item = state.item
    if not item.deadline or item.status is not Status.PENDING:
        return []
    left = item.deadline - state.now
    if left.total_seconds() <= 0:
        return [_context("*EXPIRED*")]
    return [_context(f":alarm_clock: Expires in {humanize(left)} ({slack_date(item.deadline)})")]


def _why_here_blocks(state: CardState) -> list[Block]:
    """Why a pending card is in this channel: the routing reason and the approvers Slack lacks."""
    if state.item.status is not Status.PENDING:
        return []
    blocks: list[Block] = []
    if state.reason:
        blocks.append(_context(f":bust_in_silhouette: {escape(state.reason)}"))
    if state.unreachable:
        names = ", ".join(escape(n) for n in state.unreachable[:20])
        more = f" and {len(state.unreachable) - 20} more" if len(state.unreachable) > 20 else ""
        blocks.append(_context(f":mag: Not found in Slack, so carded here: {names}{more}"))
    return blocks


def _pending_notes(state: CardState) -> list[Block]:
    """What a reader of a pending card should know before clicking: it is no longer theirs, or the
    last attempt failed (not shown while another attempt is under way)."""
    if state.item.status is not Status.PENDING:
        return []
    blocks: list[Block] = []
    if state.not_theirs:
        blocks.append(
            _section(":information_source: This no longer waits on you (reassigned, or your part is done).")
        )
    if state.last_error and not state.working_by:
        blocks.append(
            _context(f":warning: Last attempt did not go through: {escaped(state.last_error, 400)}")
        )
    return blocks


def _button_blocks(state: CardState) -> list[Block]:
    """The decision buttons while they can be used (or Connect when the clicker must link first),
    and always the link to the vendor's page."""
    item = state.item
    blocks: list[Block] = []
    buttons: list[ButtonElement] = []
    if item.status is Status.PENDING and not state.working_by and not state.not_theirs:
        if state.link_first and item.actions:
            blocks.append(
                _context(f"Link your {escape(state.vendor_label)} account once to decide from here, as you.")
            )
            buttons = [connect_button(state.connector_name, state.vendor_label)]
        else:
            buttons = [action_button(item, spec) for spec in item.actions]
    link = open_button(item, state.vendor_label)
    if link is not None:
        buttons.append(link)
    if buttons:
        blocks.append(ActionsBlock(block_id=short_id("card", item.external_id), elements=buttons[:25]))
    return blocks


def _source_context(state: CardState) -> ContextBlock:
    """The footer: which connector the card comes from and when it was last synced."""
    synced = f" · synced {slack_date(state.synced_at, '{time}')}" if state.synced_at else ""
    return _context(
        f"{escaped(state.vendor_label, SHORT)} · `{escaped(state.connector_name, SHORT)}`{synced}"
    )


def _card_fallback(item: ApprovalItem) -> str:
    """The notification text. It is mrkdwn too: the title is escaped here as in the blocks."""
    icon = {Status.PENDING: ":large_yellow_circle:"}.get(item.status, "")
    fallback = f"{icon} {escaped(item.kind, SHORT)}: {escape(item.title)}".strip()
    if item.status.final:
        fallback += f" ({item.status.value})"
    return cut(fallback, FALLBACK_TEXT)


def to_dicts(blocks: Sequence[Block | dict[str, Any]], limit: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """Validate through slack_sdk and keep within the block limit (the tail is what goes).
    Dicts are blocks validated before (see queue_entry)."""
    if len(blocks) > limit:
        blocks = [*blocks[: limit - 1], _context("…more than fits in one message")]
    return [b if isinstance(b, dict) else b.to_dict() for b in blocks]


_ENTRIES: OrderedDict[tuple[str, ...], list[dict[str, Any]]] = OrderedDict()
_ENTRIES_LOCK = threading.Lock()
_ENTRIES_MAX = 5000


def queue_entry(state: CardState, kind: str) -> list[dict[str, Any]]:
    """One item of the App Home queue or of `/approvals list`: its line and its buttons, as
    validated dicts, remembered by everything they show.

    Why remembered: slack_sdk's checks cost milliseconds per item, and a Home of fifty items is
    republished after every change to any of them; between two publishes most items are the same.
    """
    item = state.item
    key = (
        kind,
        item.connector,
        item.external_id,
        item.fingerprint(),
        "working" if state.working_by else "",
        state.vendor_label,
        state.connector_name,
    )
    with _ENTRIES_LOCK:
        cached = _ENTRIES.get(key)
        if cached is not None:
            _ENTRIES.move_to_end(key)
            return cached
    head = f"*{mrkdwn_link(item.url, cut(item.title, 1000))}*"
    details = [escaped(item.kind, SHORT), f"`{escaped(state.connector_name, SHORT)}`"]
    if item.deadline:
        details.append(f"expires {slack_date(item.deadline)}")
    blocks: list[Block] = [_section(head + "\n" + " · ".join(details))]
    buttons = [action_button(item, spec) for spec in item.actions] if not state.working_by else []
    link = open_button(item, state.vendor_label)
    if link:
        buttons.append(link)
    if buttons:
        blocks.append(
            ActionsBlock(
                block_id=short_id(kind, item.connector, item.external_id),
                elements=buttons[:25],
            )
        )
    rendered = [b.to_dict() for b in blocks]
    with _ENTRIES_LOCK:
        _ENTRIES[key] = rendered
        while len(_ENTRIES) > _ENTRIES_MAX:
            _ENTRIES.popitem(last=False)
    return rendered


# ---- short private answers --------------------------------------------------------------------


def notice(text: str, *, buttons: Sequence[ButtonElement] = ()) -> Message:
    blocks: list[Block] = [_section(text)]
    if buttons:
        blocks.append(ActionsBlock(elements=list(buttons)))
    return Message(cut(_plain(text), FALLBACK_TEXT), to_dicts(blocks))


def _plain(text: str) -> str:
    """The notification text: mrkdwn like the blocks, so the escapes stay (Slack decodes them)."""
    return text.replace("*", "")


def connect_button(connector_name: str, vendor_label: str) -> ButtonElement:
    return ButtonElement(
        text=plain(f"Connect {vendor_label}", BUTTON_TEXT),
        action_id=ActionId.CONNECT.value,
        value=connector_name,
        style="primary",
    )


def with_comment_button(item: ApprovalItem, action: Action) -> ButtonElement:
    label = ACTION_LABELS[action]
    return ButtonElement(
        text=plain(f"{label} with a comment", BUTTON_TEXT),
        action_id=ActionId.WITH_COMMENT.value,
        value=f"{action.value}#{item_value(item, BUTTON_VALUE - len(action.value) - 1)}",
        style="primary" if action is Action.APPROVE else None,
    )


# ---- modals ------------------------------------------------------------------------------------


def connect_modal(
    *, connector_name: str, vendor_label: str, fields: Sequence[CredentialField], note: str = ""
) -> dict[str, Any]:
    blocks: list[Block] = [
        _section(
            f"Link your own {escape(vendor_label)} account to `{escape(connector_name)}`. Your decisions in Slack "
            f"are then made in {escape(vendor_label)} as you. Secrets are checked with {escape(vendor_label)}, "
            "stored encrypted, and never shown again." + (f"\n{escape(note)}" if note else "")
        )
    ]
    for f in fields:
        blocks.append(
            InputBlock(
                block_id=f"cred|{f.key}",
                label=plain(f.label, INPUT_LABEL),
                element=PlainTextInputElement(
                    action_id="value", placeholder=plain(f.hint, PLACEHOLDER) if f.hint else None
                ),
                hint=None,
                optional=f.optional,
            )
        )
    view = View(
        type="modal",
        callback_id=ViewId.CONNECT.value,
        title=plain(f"Connect {vendor_label}", VIEW_TITLE),
        submit="Connect",
        close="Cancel",
        private_metadata=metadata_json({"c": connector_name}),
        blocks=blocks,
    )
    return view.to_dict()


def _input_block(spec: InputDef) -> InputBlock:
    element: Any
    if spec.kind == "select" and spec.allowed:
        options = [Option(text=plain(v, OPTION_TEXT), value=option_value(v)) for v in spec.allowed[:100]]
        default = option_value(spec.default) if spec.default is not None else None
        initial = next((o for o in options if o.value == default), None)
        element = StaticSelectElement(action_id="value", options=options, initial_option=initial)
    elif spec.kind == "slack_user":
        element = UserSelectElement(action_id="value")
    elif spec.kind == "checkbox":
        option = Option(text=plain(spec.label, OPTION_TEXT), value="yes")
        element = CheckboxesElement(
            action_id="value", options=[option], initial_options=[option] if spec.default == "yes" else None
        )
    else:
        element = PlainTextInputElement(
            action_id="value",
            multiline=spec.kind == "multiline",
            initial_value=cut(spec.default, 3000) if spec.default and spec.kind != "password" else None,
        )
    return InputBlock(
        block_id=f"input|{spec.name}",
        label=plain(spec.label, INPUT_LABEL),
        element=element,
        optional=not spec.required or spec.kind == "checkbox",
        hint=plain(spec.description, INPUT_LABEL) if spec.description else None,
    )


def decide_modal(
    *, item: ApprovalItem, spec: ActionSpec, origin: Mapping[str, str], force_comment: bool = False
) -> dict[str, Any]:
    label = spec.label or ACTION_LABELS[spec.action]
    blocks: list[Block] = [_section(f"*{escaped(item.title, 500)}*\n{escaped(item.kind, SHORT)}")]
    for notice_text in item.notices[:3]:
        blocks.append(_context(f":warning: {escape(notice_text)}"))
    for input_def in spec.inputs:
        blocks.append(_input_block(input_def))
    comment = "required" if force_comment else spec.comment
    if comment != "none":
        blocks.append(
            InputBlock(
                block_id="input|__comment__",
                label="Comment" if spec.action is not Action.REJECT else "Reason",
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000),
                optional=comment != "required",
            )
        )
    metadata = {"c": item.connector, "i": item.external_id, "a": spec.action.value}
    view = View(
        type="modal",
        callback_id=ViewId.DECIDE.value,
        title=plain(label, VIEW_TITLE),
        submit=plain(label, VIEW_TITLE),
        close="Back",
        private_metadata=metadata_json(metadata, origin=origin),
        blocks=blocks[:MAX_MODAL_BLOCKS],
    )
    return view.to_dict()


def list_message(entries: Sequence[CardState], *, title: str, empty: str) -> Message:
    """`/approvals list`: what waits on me, each with its buttons, within 50 blocks."""
    if not entries:
        return notice(empty)
    blocks: list[Block | dict[str, Any]] = [_section(f"*{escape(title)}*")]
    shown = 0
    for state in entries:
        if len(blocks) + 4 > MAX_BLOCKS - 1:
            break
        blocks.append(DividerBlock())
        blocks.extend(queue_entry(state, "list"))
        shown += 1
    if shown < len(entries):
        blocks.append(_context(f"…and {len(entries) - shown} more. Open App Home for the whole list."))
    return Message(f"{title}", to_dicts(blocks))


def help_message(connectors: Sequence[tuple[str, str, bool]], extra: Sequence[str] = ()) -> Message:
    """`connectors`: (name, vendor label, linked?) for the asking user."""
    lines = [
        "*approvals-bot* brings your approvals to Slack and acts as you in each system.",
        "• `/approvals` or `/approvals list`: what waits on you",
        "• `/approvals connect NAME`: link your account (you decide as yourself)",
        "• `/approvals disconnect NAME`: forget your link and credentials",
        "• `/approvals status`: each connector's health and last sync",
        "• `/approvals subscribe NAME #channel`: follow how flows end in a channel",
        "• `/approvals start NAME [TARGET]`: start an approval where the vendor allows it",
        *extra,
        "• `/approvals help`: this message",
    ]
    if connectors:
        lines.append("\n*Connectors*")
        for name, label, linked in connectors:
            mark = ":white_check_mark: linked" if linked else "not linked"
            lines.append(f"• `{escape(name)}` ({escape(label)}): {mark}")
    return notice("\n".join(lines))


def request_modal(
    *,
    connector_name: str,
    vendor_label: str,
    options: Sequence[Requestable],
    target: str | None,
    channel: str | None,
) -> dict[str, Any]:
    """Pick what to start (when there is a choice) and give what it needs."""
    blocks: list[Block] = [
        _section(
            f"Start an approval in {escape(vendor_label)}" + (f" for *{escape(target)}*" if target else "")
        )
    ]
    choices = [Option(text=plain(o.title, OPTION_TEXT), value=option_value(o.id)) for o in options[:100]]
    blocks.append(
        InputBlock(
            block_id="input|__requestable__",
            label="What to start",
            element=StaticSelectElement(action_id="value", options=choices, initial_option=choices[0]),
        )
    )
    seen: set[str] = set()
    for option in options:
        for input_def in option.inputs:
            if input_def.name not in seen:
                seen.add(input_def.name)
                blocks.append(_input_block(input_def))
    metadata = {"c": connector_name, "t": (target or "")[:1000]}
    view = View(
        type="modal",
        callback_id=ViewId.REQUEST.value,
        title=plain("Start approval", VIEW_TITLE),
        submit="Start",
        close="Cancel",
        private_metadata=metadata_json(metadata, origin={"ch": channel or ""}),
        blocks=blocks[:MAX_MODAL_BLOCKS],
    )
    return view.to_dict()


def checking_view(vendor_label: str, text: str | None = None, *, title: str = "Connect") -> dict[str, Any]:
    view = View(
        type="modal",
        title=plain(title, VIEW_TITLE),
        close="Close",
        blocks=[
            _section(
                text or f":hourglass_flowing_sand: Checking your credentials with {escape(vendor_label)}…"
            )
        ],
    )
    return view.to_dict()


def home_view(
    states: Sequence[CardState],
    *,
    accounts: Sequence[tuple[str, str, str | None, str]],
    status: Sequence[str],
) -> dict[str, Any]:
    """App Home: the queue with buttons, then linked accounts, then connector health (≤100 blocks)."""
    # What follows the queue: two dividers and headers, a section per account, the status and Refresh.
    budget = MAX_MODAL_BLOCKS - 6 - 2 * len(accounts) - 2
    out: list[Block | dict[str, Any]] = [HeaderBlock(text="Waiting on you"), *_home_queue(states, budget)]
    out += [DividerBlock(), HeaderBlock(text="Your accounts")]
    out += [_account_section(*account) for account in accounts]
    out.append(DividerBlock())
    out.append(HeaderBlock(text="Connectors"))
    out.append(_section("\n".join(status) or "No connectors are configured."))
    out.append(ActionsBlock(elements=[ButtonElement(text="Refresh", action_id=ActionId.HOME_REFRESH.value)]))
    # The same as View(type="home", blocks=...).to_dict(), without checking the queue's blocks again.
    return {"type": "home", "blocks": to_dicts(out, MAX_MODAL_BLOCKS)}


def _home_queue(states: Sequence[CardState], budget: int) -> list[Block | dict[str, Any]]:
    """The queue's entries while they fit in the budget (the header counts), then how many did not,
    and "Approve several…" when at least two can be approved without a modal."""
    if not states:
        return [_section("Nothing waits on you right now. :tada:")]
    out: list[Block | dict[str, Any]] = []
    shown = 0
    for state in states:
        if 1 + len(out) + 3 > budget:
            break
        out.extend(queue_entry(state, "home"))
        shown += 1
    if shown < len(states):
        out.append(_context(f"…and {len(states) - shown} more; `/approvals` lists them."))
    approvable = sum(
        1 for s in states if (spec := s.item.action(Action.APPROVE)) is not None and not spec.needs_modal
    )
    if approvable >= 2:
        out.append(
            ActionsBlock(
                elements=[ButtonElement(text="Approve several…", action_id=ActionId.BULK_OPEN.value)]
            )
        )
    return out


def _account_section(name: str, label: str, linked_as: str | None, mode: str) -> SectionBlock:
    """One connector on the Home: linked as whom with Disconnect, or how it links with Connect."""
    if linked_as:
        text = f"*{escaped(label, SHORT)}* (`{escaped(name, SHORT)}`): linked as {escaped(linked_as, SHORT)}"
        button = ButtonElement(text="Disconnect", action_id=ActionId.DISCONNECT.value, value=name)
    else:
        how = "by your Slack email" if mode == "email" else "with your own credentials"
        text = f"*{escaped(label, SHORT)}* (`{escaped(name, SHORT)}`): not linked (links {how})"
        button = connect_button(name, label)
    return SectionBlock(text=_mrkdwn(text), accessory=button)
