"""The bot's payload readers are total: any JSON at all gives an answer, never an exception.

The HTTP gate (bot/slack_payload.py) already refuses bodies of the wrong shape, but Socket Mode
payloads do not pass through it, so the readers must stand on their own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bulk import selected_values
from bot.listeners.deps import metadata, origin_of, user_id, view_id, view_values
from bot.slack_payload import Unreadable, parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(
    [
        "user",
        "view",
        "state",
        "values",
        "private_metadata",
        "container",
        "channel",
        "response_url",
        "id",
        "type",
        "selected_options",
        "selected_option",
        "value",
        "bulk|0",
        "input|x",
        "user_id",
    ]
)
shaped = st.recursive(
    json_values,
    lambda inner: st.dictionaries(keys, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=40,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(body=st.dictionaries(keys, shaped, max_size=6))
def test_readers_answer_any_body(body: dict[str, Any]) -> None:
    assert user_id(body) is None or isinstance(user_id(body), str)
    origin = origin_of(body)
    assert origin.channel is None or isinstance(origin.channel, str)
    assert all(isinstance(v, str) for v in metadata(body).values())
    assert all(isinstance(v, str) for v in view_values(body).values())
    assert all(isinstance(v, str) for v in selected_values(body))
    assert view_id(body) is None or isinstance(view_id(body), str)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(value=shaped, form=st.booleans())
def test_the_gate_answers_any_body_with_a_dict_or_unreadable(value: Any, form: bool) -> None:
    text = json.dumps(value)
    body = ("payload=" + text) if form else text
    why = ""
    try:
        parsed: Any = parse(body, "application/x-www-form-urlencoded" if form else "application/json")
    except Unreadable as exc:
        parsed, why = None, exc.why
    assert isinstance(parsed, dict) or (why and len(why) < 120)


def test_metadata_that_is_not_ours_reads_as_nothing() -> None:
    for raw in ["%%%", "[1]", "5", '{"c": 5}', "[" * 5000, "x" * 4000, '{"c": "deploys", "i": ["1"]}']:
        assert "i" not in metadata({"view": {"private_metadata": raw}})
        assert all(isinstance(v, str) for v in metadata({"view": {"private_metadata": raw}}).values())
