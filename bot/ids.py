"""Action and view ids, in one place so listeners, builders and tests agree.

Button values carry a pointer, never the truth: "1|<connector>|<external id>" (versioned), and the
handler reloads the item from the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from connectors.base import Action


class ActionId(StrEnum):
    CARD_PREFIX = "card."
    OPEN = "card.open"
    CONNECT = "link.connect"
    DISCONNECT = "link.disconnect"
    WITH_COMMENT = "card.with_comment"
    REQUEST = "request.open"
    HOME_REFRESH = "home.refresh"
    BULK_OPEN = "home.bulk"


def card_action_id(action: Action) -> str:
    return f"card.{action.value}"


def action_from_id(action_id: str) -> Action | None:
    if not action_id.startswith("card."):
        return None
    try:
        return Action(action_id.removeprefix("card."))
    except ValueError:
        return None


class ViewId(StrEnum):
    CONNECT = "view.connect"
    DECIDE = "view.decide"
    REQUEST = "view.request"
    BULK = "view.bulk"


@dataclass(frozen=True)
class ItemRef:
    connector: str
    external_id: str

    def encode(self) -> str:
        return f"1|{self.connector}|{self.external_id}"

    @staticmethod
    def decode(value: str | None) -> ItemRef | None:
        if not value:
            return None
        version, _, rest = value.partition("|")
        connector, _, external_id = rest.partition("|")
        if version != "1" or not connector or not external_id:
            return None
        return ItemRef(connector, external_id)


def ref_digest(external_id: str) -> str:
    """A short stand-in for an external id too long for the place it must go (option values hold
    150 characters): looked up among the connector's items, never decoded into a wrong id."""
    return hashlib.sha256(external_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fitted_ref(connector: str, external_id: str, limit: int) -> str:
    """ "1|connector|external id" when it fits in `limit`, else "2|connector|<digest>"."""
    whole = ItemRef(connector, external_id).encode()
    return whole if len(whole) <= limit else f"2|{connector}|{ref_digest(external_id)}"


def digest_of(value: str | None) -> tuple[str, str] | None:
    """(connector, digest) of a "2|…" value, or None."""
    if not value or not value.startswith("2|"):
        return None
    connector, _, digest = value[2:].partition("|")
    return (connector, digest) if connector and len(digest) == 32 else None
