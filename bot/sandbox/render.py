"""Block Kit as readable plain text for a terminal.

Why: `approvals-bot demo` prints each card as it arrives, and the Slack sandbox's /sandbox/messages
page shows what a Slack user would see, buttons included, with no Slack client at hand. The output
is for people, not for parsing: it keeps the words and the buttons and drops the styling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# The emoji codes the bot's cards use; anything else stays as its :code:.
EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "warning": "⚠️",
    "alarm_clock": "⏰",
    "no_entry_sign": "🚫",
    "large_yellow_circle": "🟡",
    "large_orange_circle": "🟠",
    "large_green_circle": "🟢",
    "white_circle": "⚪",
    "red_circle": "🔴",
    "lock": "🔒",
    "link": "🔗",
    "bell": "🔔",
    "wave": "👋",
    "inbox_tray": "📥",
    "rotating_light": "🚨",
}

# Slack mrkdwn control sequences: <url>, <url|text>, <@U123>, <#C123|name>, <!here>, <!date^…|fallback>.
_ANGLE = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":([a-z][a-z0-9_+\-]*):")
DIVIDER = "─" * 40


def mrkdwn_to_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn as plain text: links become "text (url)", mentions "@name", dates their fallback.

    `names` maps Slack user ids to the names shown for mentions (ids are shown when unknown).
    """
    known = names or {}

    def angle(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            user = target[1:]
            return "@" + (label or known.get(user, user))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!date^"):
            return label if label is not None else target
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!"):
            return "@" + target[1:]
        if not label or label == target or target == f"mailto:{label}":
            return label or target
        return f"{label} ({target})"

    out = _ANGLE.sub(angle, text)
    out = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    # Slack escapes only these three; &amp; last so "&amp;lt;" stays "&lt;".
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def text_of(obj: Any, names: Mapping[str, str] | None = None) -> str:
    """A Block Kit text object (plain_text or mrkdwn) or a bare string, as plain text."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return mrkdwn_to_text(obj, names)
    if isinstance(obj, Mapping):
        text = str(obj.get("text", ""))
        if obj.get("type") == "plain_text":  # shown literally: no links, mentions or escapes
            return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
        return mrkdwn_to_text(text, names)
    return str(obj)


def _options(element: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def element_to_text(element: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """One interactive element as the bracketed thing a user would click or fill in."""
    kind = str(element.get("type", ""))
    if kind == "button":
        label = f"[{text_of(element.get('text'), names)}]"
        url = element.get("url")
        return f"{label} ({url})" if url else label
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind in ("plain_text", "mrkdwn"):
        return text_of(element, names)
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        initial = element.get("initial_value")
        shown = str(initial) if initial else text_of(element.get("placeholder"), names) or " " * 12
        return f"[{shown}]" if not element.get("multiline") else f"[{shown} …]"
    if kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"):
        choices = " | ".join(text_of(o.get("text"), names) for o in _options(element))
        selected = element.get("initial_option") or None
        chosen = element.get("initial_options") or ([selected] if selected else [])
        marked = ", ".join(text_of(o.get("text"), names) for o in chosen)
        box = "☑" if kind == "checkboxes" else "▾"
        inner = choices or text_of(element.get("placeholder"), names)
        return f"[{box} {inner}]" + (f" (chosen: {marked})" if marked else "")
    if kind in ("users_select", "multi_users_select"):
        initial = element.get("initial_user") or ", ".join(element.get("initial_users") or [])
        return f"[pick a person ▾{' ' + known_name(str(initial), names) if initial else ''}]"
    if kind in ("conversations_select", "channels_select", "multi_conversations_select"):
        return "[pick a channel ▾]"
    if kind == "datepicker":
        return f"[date {element.get('initial_date') or '▾'}]"
    if kind == "timepicker":
        return f"[time {element.get('initial_time') or '▾'}]"
    if kind in ("external_select", "multi_external_select"):
        return f"[{text_of(element.get('placeholder'), names) or 'search'} ▾]"
    return f"[{kind}]"


def known_name(user: str, names: Mapping[str, str] | None) -> str:
    return (names or {}).get(user, user)


def _rich_text(node: Any) -> str:
    if isinstance(node, Mapping):
        kind = node.get("type")
        if kind == "text":
            return str(node.get("text", ""))
        if kind == "link":
            url, label = str(node.get("url", "")), node.get("text")
            return f"{label} ({url})" if label else url
        if kind == "user":
            return "@" + str(node.get("user_id", ""))
        if kind == "channel":
            return "#" + str(node.get("channel_id", ""))
        if kind == "emoji":
            name = str(node.get("name", ""))
            return EMOJI.get(name, f":{name}:")
        inner = "".join(_rich_text(e) for e in node.get("elements") or [])
        if kind == "rich_text_list":
            return "\n".join(f"• {_rich_text(e)}" for e in node.get("elements") or [])
        if kind == "rich_text_quote":
            return "> " + inner
        if kind in ("rich_text_section", "rich_text_preformatted"):
            return inner + "\n"
        return inner
    return ""


def _field(obj: Any, names: Mapping[str, str] | None) -> str:
    """A section field "*Label*\\nvalue" reads best as "Label: value" in one line."""
    lines = text_of(obj, names).split("\n")
    head = lines[0].strip()
    if len(lines) > 1 and len(head) > 2 and head.startswith("*") and head.endswith("*"):
        return f"{head[1:-1]}: {' '.join(line.strip() for line in lines[1:])}"
    return " ".join(line.strip() for line in lines)


def block_to_text(block: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    kind = str(block.get("type", ""))
    if kind == "header":
        title = text_of(block.get("text"), names)
        return f"{title}\n{'=' * min(max(len(title), 3), 60)}"
    if kind == "section":
        parts = []
        if block.get("text"):
            parts.append(text_of(block.get("text"), names))
        parts.extend(f"  {_field(f, names)}" for f in block.get("fields") or [])
        accessory = block.get("accessory")
        if accessory:
            parts.append(f"  {element_to_text(accessory, names)}")
        return "\n".join(parts)
    if kind == "context":
        return " · ".join(element_to_text(e, names) for e in block.get("elements") or [])
    if kind == "actions":
        return " ".join(element_to_text(e, names) for e in block.get("elements") or [])
    if kind == "divider":
        return DIVIDER
    if kind == "input":
        label = text_of(block.get("label"), names)
        optional = " (optional)" if block.get("optional") else ""
        line = f"{label}{optional}: {element_to_text(block.get('element') or {}, names)}"
        hint = text_of(block.get("hint"), names)
        return f"{line}\n  {hint}" if hint else line
    if kind == "image":
        title = text_of(block.get("title"), names)
        return f"[image: {title or block.get('alt_text', '')}]"
    if kind == "rich_text":
        return mrkdwn_to_text(_rich_text(block).rstrip("\n"), names)
    if kind == "markdown":
        return str(block.get("text", ""))
    return f"[{kind}]"


def blocks_to_text(blocks: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> str:
    """Render a list of Block Kit blocks as readable text, one block after another."""
    return "\n".join(block_to_text(b, names) for b in blocks)


def message_to_text(
    text: str, blocks: Sequence[Mapping[str, Any]] | None, names: Mapping[str, str] | None = None
) -> str:
    """What Slack shows for a message: its blocks, or its text when it has none."""
    return blocks_to_text(blocks, names) if blocks else mrkdwn_to_text(text, names)


def view_to_text(view: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """A modal or Home tab: title, blocks, and the submit/close buttons a modal shows."""
    lines = []
    title = text_of(view.get("title"), names)
    if title:
        lines.append(f"┌ {title}")
    lines.append(blocks_to_text(view.get("blocks") or [], names))
    if view.get("type") == "modal":
        buttons = [text_of(view.get("close"), names) or "Cancel"]
        if view.get("submit"):
            buttons.append(text_of(view.get("submit"), names))
        lines.append(" ".join(f"[{b}]" for b in buttons))
    return "\n".join(lines)
