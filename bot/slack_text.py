"""Vendor text made safe for Slack: escaped, cleaned, and cut to Slack's limits without breaking.

Why one module: vendor text (titles, names, comments, labels) reaches Slack in mrkdwn blocks, in
the top-level `text` fallback, in confirm dialogs (mrkdwn too) and in plain_text labels. Every
mrkdwn place must escape `& < >` (or a title like `<!channel>` pings a whole channel), and every
place has a length limit past which Slack refuses the whole message (`invalid_blocks`). Escaping
lengthens text, so the cut comes after it, and never ends inside `&amp;` or inside one of our own
`<…>` sequences. plain_text is not parsed by Slack at all: it is cleaned and cut, not escaped.
"""

from __future__ import annotations

import hashlib
import re

# Slack's limits (docs.slack.dev Block Kit reference; slack_sdk's models check the same numbers).
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
CONTEXT_TEXT = 3000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
BLOCK_ID = 255
ACTION_ID = 255
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
OPTION_TEXT = 75
OPTION_VALUE = 150
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
INPUT_LABEL = 2000
PLACEHOLDER = 150
INITIAL_VALUE = 3000
# chat.postMessage answers msg_too_long past 4,000; the fallback stays well under it.
FALLBACK_TEXT = 3000

ELLIPSIS = "…"
# C0 controls other than tab and newline, DEL, and lone surrogates (which cannot be encoded as UTF-8).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean(text: str) -> str:
    """Without characters Slack cannot show or JSON-over-UTF-8 cannot carry."""
    return _UNSAFE.sub("", text) if _UNSAFE.search(text) else text


def escape(text: str) -> str:
    """Slack's three control characters as entities, so vendor text cannot become markup."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when shortened.

    Never ends inside an entity (`&am…`) or inside an unfinished `<…>` sequence of our own
    (a half `<!date^…` or `<@U…`), either of which Slack would show as debris or refuse.
    """
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    lt = head.rfind("<")
    if lt != -1 and ">" not in head[lt:]:
        head = head[:lt]
    return head + ELLIPSIS


def escaped(text: str, limit: int) -> str:
    """Vendor text for mrkdwn: escaped, then cut to `limit`."""
    return cut(escape(text), limit)


def plain(text: str, limit: int) -> str:
    """Vendor text for a plain_text object (header, button, title, option, label): cleaned and cut,
    not escaped. Slack parses no markup in plain_text (no mentions, no links, no entities), so
    `<!channel>` there is inert and shows as written, while `&amp;` would show as `&amp;`."""
    text = clean(text)
    if len(text) <= limit:
        return text or ELLIPSIS
    return text[: max(0, limit - 1)] + ELLIPSIS


def link(url: str | None, label: str) -> str:
    """`<url|label>` for an http(s) URL a vendor gave, or the escaped label alone.

    The URL is vendor text too: `|`, `<`, `>` or whitespace in it would end the link early and let
    the rest become markup, so those are percent-encoded and `&` escaped.
    """
    shown = escape(label)
    if not url or not re.match(r"(?i)https?://", url) or len(url) > BUTTON_URL:
        return shown
    safe = re.sub(r"[\s|<>]", lambda m: f"%{ord(m.group(0)):02X}", clean(url)).replace("&", "&amp;")
    return f"<{safe}|{shown}>"


def short_id(*parts: str, limit: int = BLOCK_ID) -> str:
    """`a|b|c` when it fits in `limit` and has nothing odd in it, else the first part and a digest
    of the rest: unique, stable, and never a truncation that could name something else."""
    whole = "|".join(parts)
    if len(whole) <= limit and whole.isprintable():
        return whole
    digest = hashlib.sha256("\x1f".join(parts[1:]).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return cut(f"{parts[0]}|#{digest}", limit)
