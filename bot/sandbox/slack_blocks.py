"""Block Kit as Slack checks and reads it: the limits that make Slack answer invalid_blocks, the
buttons a message shows, and the `state.values` a view_submission carries.

Pure functions, so the page's error banner and the Web API's refusals use the same rules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.sandbox.slack_model import (
    CALLBACK_ID_MAX,
    EXTERNAL_ID_MAX,
    PRIVATE_METADATA_MAX,
    VIEW_BLOCKS_MAX,
    VIEW_TEXT_MAX,
    SandboxError,
)

if TYPE_CHECKING:
    from bot.sandbox.slack_core import SandboxCore

# ---- Block Kit helpers -----------------------------------------------------------------------------------


def _interactive_elements(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if block.get("type") == "actions":
        found.extend(e for e in block.get("elements") or [] if isinstance(e, dict))
    for key in ("accessory", "element"):
        element = block.get(key)
        if isinstance(element, dict) and element.get("type") not in ("image", None):
            found.append(element)
    return found


def button_labels(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        str((element.get("text") or {}).get("text", ""))
        for block in blocks
        for element in _interactive_elements(block)
        if element.get("type") == "button"
    ]


def find_button(
    blocks: Sequence[Mapping[str, Any]], *, label: str | None, action_id: str | None, where: str
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The block and button a user would press; a clear error when it is not shown."""
    if label is None and action_id is None:
        raise ValueError("give the button's label or its action_id")
    wanted = " ".join(label.split()).casefold() if label is not None else None
    for block in blocks:
        for element in _interactive_elements(block):
            if element.get("type") != "button":
                continue
            shown = " ".join(str((element.get("text") or {}).get("text", "")).split()).casefold()
            if (action_id is not None and element.get("action_id") == action_id) or (
                wanted is not None and shown == wanted
            ):
                return block, element
    labels = button_labels(blocks)
    shown_text = " ".join(f"[{x}]" for x in labels) if labels else "no buttons at all"
    target = f"labelled {label!r}" if label is not None else f"with action_id {action_id!r}"
    raise SandboxError(f"{where} has no button {target}; it shows {shown_text}")


def _text_problem(obj: Any, pointer: str, *, plain_only: bool) -> str | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        return f"must be an object [json-pointer:{pointer}]"
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return f"must be one of {', '.join(kinds)} [json-pointer:{pointer}/type]"
    if not isinstance(obj.get("text"), str):
        return f"must be a string [json-pointer:{pointer}/text]"
    return None


def _shape_problems(block: Mapping[str, Any], pointer: str) -> list[str]:
    """What slack_sdk's models accept but Slack refuses: bare strings where text objects belong."""
    kind = block.get("type")
    problems: list[str | None] = []
    if kind == "section":
        problems.append(_text_problem(block.get("text"), f"{pointer}/text", plain_only=False))
        problems.extend(
            _text_problem(f, f"{pointer}/fields/{i}", plain_only=False)
            for i, f in enumerate(block.get("fields") or [])
        )
    elif kind == "header":
        problems.append(_text_problem(block.get("text"), f"{pointer}/text", plain_only=True))
    elif kind == "input":
        problems.append(_text_problem(block.get("label"), f"{pointer}/label", plain_only=True))
        problems.append(_text_problem(block.get("hint"), f"{pointer}/hint", plain_only=True))
        if not isinstance(block.get("element"), Mapping):
            problems.append(f"missing required field: element [json-pointer:{pointer}]")
    for i, element in enumerate(_interactive_elements(block)):
        if element.get("type") == "button":
            where = f"{pointer}/elements/{i}" if kind == "actions" else f"{pointer}/accessory"
            problems.append(_text_problem(element.get("text"), f"{where}/text", plain_only=True))
    return [p for p in problems if p]


def block_problems(blocks: Any, limit: int, pointer: str = "/blocks") -> list[str]:
    """Why Slack would refuse these blocks (empty when it would not), validated with slack_sdk's models."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    seen_ids: set[str] = set()
    for i, raw in enumerate(blocks):
        problems.extend(_one_block_problems(raw, f"{pointer}/{i}", seen_ids))
    return problems


def _one_block_problems(raw: Any, here: str, seen_ids: set[str]) -> list[str]:
    """One block's problems; `seen_ids` holds the block_ids of the blocks before it (Slack refuses a
    repeated one) and gains this one's."""
    if not isinstance(raw, dict):
        return [f"must be an object [json-pointer:{here}]"]
    rendered = _rendered(raw, here)
    if isinstance(rendered, str):
        return [rendered]
    # What slack_sdk's model dropped is a field Slack does not know either.
    extra = sorted(k for k, v in raw.items() if v is not None and k not in rendered)
    problems = [f"invalid additional property: {k} [json-pointer:{here}]" for k in extra]
    if None in (rendered.get("elements") or []):
        problems.append(f"unsupported element type [json-pointer:{here}/elements]")
    problems.extend(_shape_problems(raw, here))
    block_id = raw.get("block_id")
    if block_id is not None:
        if block_id in seen_ids:
            problems.append(f"duplicate block_id: {block_id} [json-pointer:{here}/block_id]")
        seen_ids.add(str(block_id))
    action_ids = [e.get("action_id") for e in _interactive_elements(raw) if e.get("action_id")]
    if len(action_ids) != len(set(action_ids)):
        problems.append(f"duplicate action_id within block [json-pointer:{here}]")
    return problems


def _rendered(raw: dict[str, Any], here: str) -> dict[str, Any] | str:
    """The block as slack_sdk's model renders it back, or why the model refuses it."""
    try:
        parsed = Block.parse(raw)
        if parsed is None:
            return f"unsupported type: {raw.get('type')!r} [json-pointer:{here}/type]"
        return parsed.to_dict()
    except SlackObjectFormationError as exc:
        return f"{exc} [json-pointer:{here}]"
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return f"invalid block: {exc} [json-pointer:{here}]"


def view_problems(view: Mapping[str, Any], kinds: tuple[str, ...]) -> list[str]:
    """Why views.open/push/update/publish would refuse this view (Slack answers invalid_arguments)."""
    problems: list[str] = []
    kind = view.get("type")
    if kind not in kinds:
        return [f"must be one of {', '.join(kinds)} [json-pointer:/view/type]"]
    for key in ("title", "submit", "close"):
        obj = view.get(key)
        if obj is None:
            if key == "title" and kind == "modal":
                problems.append("missing required field: title [json-pointer:/view]")
            continue
        problem = _text_problem(obj, f"/view/{key}", plain_only=True)
        if problem:
            problems.append(problem)
        elif len(obj["text"]) > VIEW_TEXT_MAX:
            problems.append(
                f"must be less than {VIEW_TEXT_MAX + 1} characters [json-pointer:/view/{key}/text]"
            )
    for key, limit in (
        ("private_metadata", PRIVATE_METADATA_MAX),
        ("callback_id", CALLBACK_ID_MAX),
        ("external_id", EXTERNAL_ID_MAX),
    ):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"must be a string of at most {limit} characters [json-pointer:/view/{key}]")
    blocks = view.get("blocks")
    if blocks is None:
        problems.append("missing required field: blocks [json-pointer:/view]")
    else:
        problems.extend(block_problems(blocks, VIEW_BLOCKS_MAX, "/view/blocks"))
        has_inputs = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if kind == "modal" and has_inputs and not view.get("submit"):
            problems.append("must provide a submit property when using input blocks [json-pointer:/view]")
    return problems


# ---- view_submission state --------------------------------------------------------------------------------


def _option_matching(element: Mapping[str, Any], wanted: Any, where: str) -> dict[str, Any]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        text = str((option.get("text") or {}).get("text", ""))
        if wanted in (option.get("value"), text):
            return copy.deepcopy(dict(option))
    shown = ", ".join(str((o.get("text") or {}).get("text", "")) for o in options)
    raise SandboxError(f"{where} has no option {wanted!r} (it offers: {shown})")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _element_state(
    element: Mapping[str, Any], value: Any, given: bool, where: str, sandbox: SandboxCore
) -> dict[str, Any]:
    """state.values[block_id][action_id] for one element, shaped as Slack shapes it per element type."""
    kind = str(element.get("type"))
    state: dict[str, Any] = {"type": kind}
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        state["value"] = _text_value(element, value, given, where)
    elif kind in ("static_select", "radio_buttons", "external_select"):
        state["selected_option"] = _selected_option(element, value, given, where)
    elif kind in ("checkboxes", "multi_static_select", "multi_external_select"):
        state["selected_options"] = _selected_options(element, value, given, where)
    elif kind == "users_select":
        state["selected_user"] = (
            (sandbox.person(str(value)).slack_id if value else None) if given else element.get("initial_user")
        )
    elif kind == "multi_users_select":
        users = _as_list(value) if given else list(element.get("initial_users") or [])
        state["selected_users"] = [sandbox.person(str(u)).slack_id for u in users]
    elif kind in ("conversations_select", "channels_select"):
        key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
        state[key] = (str(value) if value else None) if given else element.get(f"initial_{key.split('_')[1]}")
    elif kind == "datepicker":
        state["selected_date"] = (str(value) if value else None) if given else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = (str(value) if value else None) if given else element.get("initial_time")
    else:
        state["value"] = value if given else None
    return state


def _text_value(element: Mapping[str, Any], value: Any, given: bool, where: str) -> str | None:
    text = (str(value) if value is not None else None) if given else element.get("initial_value")
    if text is not None:
        lo, hi = element.get("min_length"), element.get("max_length")
        if (isinstance(hi, int) and len(text) > hi) or (isinstance(lo, int) and 0 < len(text) < lo):
            raise SandboxError(f"{where}: Slack's client refuses {len(text)} characters here")
    return text or None


def _selected_option(element: Mapping[str, Any], value: Any, given: bool, where: str) -> Any:
    if not given:
        return copy.deepcopy(element.get("initial_option"))
    if value is None:
        return None
    if element.get("type") == "external_select":
        return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
    return _option_matching(element, value, where)


def _selected_options(element: Mapping[str, Any], value: Any, given: bool, where: str) -> list[Any]:
    if not given:
        return copy.deepcopy(list(element.get("initial_options") or []))
    if value is True:
        return copy.deepcopy(list(element.get("options") or []))
    if value is False:
        return []
    return [_option_matching(element, v, where) for v in _as_list(value)]


def _is_empty(state: Mapping[str, Any]) -> bool:
    return not any(v for k, v in state.items() if k != "type")


def state_values(
    blocks: Sequence[Mapping[str, Any]], values: Mapping[str, Any], sandbox: SandboxCore
) -> dict[str, dict[str, Any]]:
    """view.state.values for a submission: `values` keyed by each input's label text or block_id."""
    remaining = dict(values)
    state: dict[str, dict[str, Any]] = {}
    for block in blocks:
        if block.get("type") != "input":
            continue
        element = block.get("element") or {}
        block_id = str(block.get("block_id"))
        label = str((block.get("label") or {}).get("text", ""))
        key = block_id if block_id in remaining else label if label in remaining else None
        given = key is not None
        value = remaining.pop(key) if key is not None else None
        where = f"input {label!r}"
        element_state = _element_state(element, value, given, where, sandbox)
        if not block.get("optional") and _is_empty(element_state):
            raise SandboxError(f"{where} is required and empty: Slack would not submit this modal")
        state[block_id] = {str(element.get("action_id")): element_state}
    if remaining:
        labels = [str((b.get("label") or {}).get("text", "")) for b in blocks if b.get("type") == "input"]
        raise SandboxError(f"the modal has no input {sorted(remaining)} (its inputs: {labels})")
    return state
