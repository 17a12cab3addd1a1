"""Which listener a button reaches is decided by its action id alone."""

from __future__ import annotations

from bot.ids import CARD_ACTION, ActionId, action_from_id, card_action_id
from connectors.base import Action


def test_every_action_button_reaches_the_card_listener_and_reads_back() -> None:
    for action in Action:
        action_id = card_action_id(action)
        assert CARD_ACTION.match(action_id), action_id
        assert action_from_id(action_id) is action


def test_no_other_button_is_taken_for_a_decision() -> None:
    # "card.open" and "card.with_comment" share the prefix and have listeners of their own.
    assert [a for a in ActionId if CARD_ACTION.match(a.value)] == []
    assert not CARD_ACTION.match("card.approve_all")
