"""The pure parts: the sync diff, where cards go, and Block Kit for every state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import blocks
from bot.blocks import CardState
from bot.sync import Stored, card_targets, diff
from connectors.base import (
    Action,
    ActionSpec,
    ApprovalItem,
    ApproverGroup,
    Field,
    GroupState,
    InputDef,
    Person,
    Status,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
APPROVE = ActionSpec(Action.APPROVE)
REJECT = ActionSpec(Action.REJECT, comment="optional")


def item(external_id: str = "1", **kw: object) -> ApprovalItem:
    base: dict[str, object] = {
        "connector": "deploys",
        "external_id": external_id,
        "kind": "Release gate",
        "title": "Retail Web → Production",
        "url": "https://fd.example.com/flexdeploy",
        "actions": (APPROVE, REJECT),
    }
    base.update(kw)
    return ApprovalItem(**base)  # type: ignore[arg-type]


def test_diff_finds_new_changed_gone_and_unchanged() -> None:
    a, b, c = item("a"), item("b"), item("c", title="new title")
    stored = {
        "a": Stored(a.fingerprint(), "pending", 1),
        "c": Stored(item("c").fingerprint(), "pending", 3),
        "d": Stored("whatever", "pending", 4),
    }
    plan = diff(stored, [a, b, c, b])
    assert [i.external_id for i in plan.new] == ["b"]
    assert [(r, i.external_id) for r, i in plan.changed] == [(3, "c")]
    assert plan.gone == [(4, "d")]
    assert plan.unchanged == 1


def test_no_change_means_no_writes() -> None:
    items = [item(str(n)) for n in range(50)]
    stored = {i.external_id: Stored(i.fingerprint(), "pending", n) for n, i in enumerate(items)}
    assert diff(stored, items).writes == 0


def test_cards_go_to_named_approvers_else_to_the_channel() -> None:
    alice = Person("alice", "Alice", "Alice@Example.com")
    ghost = Person("ghost", "Ghost")
    assert card_targets(item(), channel="C1", slack_by_vendor={}) == ["channel:C1"]
    assert card_targets(item(recipients=(alice,)), channel="C1", slack_by_vendor={"alice": "U1"}) == [
        "user:U1"
    ]
    assert card_targets(item(recipients=(alice,)), channel="C1", slack_by_vendor={}) == [
        "email:alice@example.com"
    ]
    assert card_targets(item(recipients=(ghost,)), channel="C1", slack_by_vendor={}) == ["channel:C1"]
    both = card_targets(item(recipients=(alice,), channel_card=True), channel="C1", slack_by_vendor={})
    assert both == ["email:alice@example.com", "channel:C1"]
    assert card_targets(item(), channel=None, slack_by_vendor={}) == []


def _state(i: ApprovalItem, **kw: object) -> CardState:
    base: dict[str, object] = {
        "item": i,
        "vendor_label": "FlexDeploy",
        "connector_name": "deploys",
        "now": NOW,
    }
    base.update(kw)
    return CardState(**base)  # type: ignore[arg-type]


def _buttons(message: blocks.Message) -> list[str]:
    return [
        e["text"]["text"]
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    ]


def _text(message: blocks.Message) -> str:
    return json.dumps(message.blocks)


def test_pending_card_has_exactly_approve_reject_and_open() -> None:
    message = blocks.card(_state(item(fields=(Field("Pipeline", "Retail Web"),))))
    assert _buttons(message) == ["Approve", "Reject", "Open in FlexDeploy"]
    reject = next(
        e
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == "Reject"
    )
    assert reject["style"] == "danger"
    assert "confirm" in reject
    assert "Retail Web" in _text(message)


def test_working_card_has_no_buttons_but_the_link() -> None:
    message = blocks.card(_state(item(), working_by="U0ALICE", working_action=Action.APPROVE))
    assert _buttons(message) == ["Open in FlexDeploy"]
    assert "Working" in _text(message)
    assert "<@U0ALICE> is approving" in _text(message)


def test_decided_cards_say_who_and_keep_no_decision_buttons() -> None:
    approved = blocks.card(
        _state(
            item().with_status(Status.APPROVED),
            decided_by="U0ALICE",
            decided_action=Action.APPROVE,
            decided_at=NOW,
        )
    )
    assert "Approved" in _text(approved)
    assert "<@U0ALICE>" in _text(approved)
    assert _buttons(approved) == ["Open in FlexDeploy"]
    rejected = blocks.card(
        _state(
            item().with_status(Status.REJECTED),
            decided_by="U0BOB",
            decided_action=Action.REJECT,
            decided_comment="not during the freeze",
        )
    )
    assert "Rejected" in _text(rejected)
    assert "not during the freeze" in _text(rejected)
    elsewhere = blocks.card(_state(item().with_status(Status.APPROVED, decision_note="ok by CAB")))
    assert "Approved* in FlexDeploy" in _text(elsewhere)
    for status in (Status.EXPIRED, Status.CANCELLED):
        assert status.value.capitalize() in _text(blocks.card(_state(item().with_status(status))))


def test_failed_attempt_is_shown_with_buttons_back() -> None:
    message = blocks.card(_state(item(), last_error="FlexDeploy did not answer"))
    assert _buttons(message)[:2] == ["Approve", "Reject"]
    assert "did not go through" in _text(message)


def test_groups_and_deadline_are_rendered() -> None:
    group = ApproverGroup("CAB", GroupState.DUE, 2, (), (Person("a", "Ann"),))
    message = blocks.card(_state(item(groups=(group,), deadline=NOW + timedelta(hours=2))))
    text = _text(message)
    assert "1 of 2 approved (Ann)" in text
    assert "Expires in 2 h" in text
    expired = blocks.card(_state(item(deadline=NOW - timedelta(minutes=1))))
    assert "EXPIRED" in _text(expired)


def test_vendor_text_is_escaped() -> None:
    message = blocks.card(_state(item(summary="<!channel> & <http://evil|click>")))
    text = _text(message)
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; &amp;" in text


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(min_size=1, max_size=400),
    summary=st.text(max_size=5000),
    n_fields=st.integers(0, 30),
    value=st.text(max_size=800),
    n_notices=st.integers(0, 8),
)
def test_any_vendor_content_fits_slacks_limits(
    title: str, summary: str, n_fields: int, value: str, n_notices: int
) -> None:
    i = item(
        title=title,
        summary=summary,
        fields=tuple(Field(f"f{n}", value or "-") for n in range(n_fields)),
        notices=tuple("notice " + value for _ in range(n_notices)),
        groups=tuple(ApproverGroup(f"g{n}", GroupState.DUE) for n in range(5)),
    )
    message = blocks.card(_state(i))  # slack_sdk validates every block in to_dict()
    assert len(message.blocks) <= 50
    assert len(message.text) <= 3000


def test_decide_modal_asks_for_inputs_and_comment_within_limits() -> None:
    spec = ActionSpec(
        Action.APPROVE,
        comment="required",
        inputs=(
            InputDef("risk", "Risk", kind="select", allowed=("low", "high"), default="low", required=True),
            InputDef("password", "Your Jira password", kind="password", required=True),
        ),
    )
    view = blocks.decide_modal(item=item(title="x" * 500), spec=spec, origin={"ch": "C1", "ts": "1.2"})
    assert len(view["title"]["text"]) <= 24
    ids = [b.get("block_id") for b in view["blocks"]]
    assert "input|risk" in ids
    assert "input|password" in ids
    assert "input|__comment__" in ids
    comment = next(b for b in view["blocks"] if b.get("block_id") == "input|__comment__")
    assert comment["optional"] is False
    risk = next(b for b in view["blocks"] if b.get("block_id") == "input|risk")
    assert risk["element"]["initial_option"]["value"] == "low"
    meta = json.loads(view["private_metadata"])
    assert meta == {"c": "deploys", "i": "1", "a": "approve", "ch": "C1", "ts": "1.2"}


def test_long_lists_stay_within_50_blocks() -> None:
    states = [_state(item(str(n))) for n in range(40)]
    message = blocks.list_message(states, title="40 waiting", empty="none")
    assert len(message.blocks) <= 50
    assert "more" in _text(message)


def test_fingerprints_stay_the_ones_already_stored() -> None:
    """Stored versions were computed as the sorted-key JSON of the item; a release that digested
    items differently would make every stored item look changed on its first sync."""
    import hashlib
    from dataclasses import replace

    it = item(
        ref={"task_id": "7", "request_type": "Release"},
        fields=(Field("Risk", "Medium"),),
        recipients=(Person(id="alice", name="Alice", email="alice@example.com"),),
        deadline=NOW + timedelta(days=1),
    )
    canonical = json.dumps(json.loads(it.to_json()), sort_keys=True, separators=(",", ":"))
    assert it.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert it.fingerprint() != replace(it, ref={"task_id": "8", "request_type": "Release"}).fingerprint()
