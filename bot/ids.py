"""Action and view ids, in one place so listeners, builders and tests agree.

Button values carry a pointer, never the truth: "1|<connector>|<external id>" (versioned), and the
handler reloads the item from the store.
"""

from __future__ import annotations

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
