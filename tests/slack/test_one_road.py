"""Every Slack Web API call goes through bot/slack/gateway.py; the store never calls into bot/;
no module outside store/ (sandboxes aside) speaks SQL; response_urls go only to Slack."""

from __future__ import annotations

import re
from pathlib import Path

from bot.slack.gateway import Kind, SlackGateway, sort_error

ROOT = Path(__file__).resolve().parents[2]
METHODS = re.compile(
    r"\.(chat_postMessage|chat_update|chat_postEphemeral|chat_delete|chat_scheduleMessage|views_open|"
    r"views_update|views_push|views_publish|users_lookupByEmail|users_info|conversations_open|"
    r"conversations_list|conversations_members|conversations_join|api_call|auth_test)\("
)
SQL = re.compile(r"^\s*(from|import) (sqlalchemy|sqlmodel)\b", re.MULTILINE)


def _sources(*folders: str) -> list[Path]:
    return [
        p
        for f in folders
        for p in sorted((ROOT / f).rglob("*.py"))
        if "sandbox" not in p.relative_to(ROOT).as_posix()
    ]


def test_only_the_gateway_calls_slacks_web_api() -> None:
    callers = {
        p.relative_to(ROOT).as_posix()
        for p in _sources("bot", "connectors", "store")
        if METHODS.search(p.read_text())
    }
    assert callers == {"bot/slack/gateway.py"}
    clients = {
        p.relative_to(ROOT).as_posix()
        for p in _sources("bot", "connectors", "store")
        if "AsyncWebClient(" in p.read_text()
    }
    assert clients == {"bot/slack/gateway.py"}


def test_the_store_never_imports_the_bot_and_the_bot_writes_no_sql() -> None:
    assert [
        p.name for p in _sources("store") if re.search(r"^\s*(from|import) bot\b", p.read_text(), re.M)
    ] == []
    assert [
        p.relative_to(ROOT).as_posix() for p in _sources("bot", "connectors") if SQL.search(p.read_text())
    ] == []


def test_slack_errors_are_sorted_into_what_a_caller_can_do() -> None:
    assert sort_error("ratelimited", 429) is Kind.RETRY
    assert sort_error("internal_error", 500) is Kind.RETRY
    assert sort_error("not_in_channel") is Kind.CHANNEL_GONE
    assert sort_error("is_archived") is Kind.CHANNEL_GONE
    assert sort_error("token_revoked") is Kind.TOKEN_REVOKED
    assert sort_error("message_not_found") is Kind.DROP


async def test_response_urls_go_only_to_slack_or_the_configured_api_host() -> None:
    gateway = SlackGateway(token="xoxb-test", api_url="http://127.0.0.1:8765/api/")
    try:
        assert gateway.response_url_allowed("https://hooks.slack.com/actions/T1/1/abc")
        assert gateway.response_url_allowed("http://127.0.0.1:8765/hooks/1")
        assert not gateway.response_url_allowed("http://hooks.slack.com/actions/T1/1/abc"), "plain http"
        assert not gateway.response_url_allowed("https://evil.example/hooks.slack.com")
        assert not gateway.response_url_allowed("http://127.0.0.1:9999/hooks/1"), "another port"
        assert not await gateway.respond(response_url="https://evil.example/x", body={"text": "hi"})
    finally:
        await gateway.aclose()
