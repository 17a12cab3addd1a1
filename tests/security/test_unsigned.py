"""Requests nobody signed, or signed for something else, never reach a parser: 401 (or 413 when too
large) with at most one short log line each. A signed body that cannot be read gets a 400, also with
one line and no traceback.

Sent over HTTP into the running app, as an outsider without the signing secret would.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from bot.sandbox.slack_api import SlackSandbox
from bot.server import MAX_BODY
from tests.harness import Bot, start_bot
from tests.running import stopping

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# The kinds of body that made the app answer 500 with a traceback before the signature was checked.
ODD_BODIES: list[tuple[str, bytes, str]] = [
    ("json array", b"[1, 2, 3]", JSON),
    ("json number", b"5", JSON),
    ("json string", b'"block_actions"', JSON),
    ("json null", b"null", JSON),
    ("payload holds an array", ("payload=" + quote("[1]")).encode(), FORM),
    ("payload holds a string", ("payload=" + quote('"x"')).encode(), FORM),
    ("payload is not json", ("payload=" + quote("{not json")).encode(), FORM),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON),
    ("deep nesting in payload", ("payload=" + "%5B" * 50_000).encode(), FORM),
    ("type is a list", json.dumps({"type": []}).encode(), JSON),
    ("type is an object", json.dumps({"type": {"a": 1}}).encode(), JSON),
    ("enterprise is a number", json.dumps({"type": "block_actions", "enterprise": 5}).encode(), JSON),
    (
        "authorizations is a string",
        json.dumps({"type": "event_callback", "authorizations": "x"}).encode(),
        JSON,
    ),
    (
        "actions of numbers",
        ("payload=" + quote(json.dumps({"type": "block_actions", "actions": [1]}))).encode(),
        FORM,
    ),
    ("view is null", json.dumps({"type": None, "view": None}).encode(), JSON),
    ("not utf-8", b"\xff\xfe\xfd", FORM),
    ("empty", b"", FORM),
]


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox) -> AsyncIterator[Bot]:
    running = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[])
    async with stopping(running):
        yield running


def _sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature over the exact bytes (the sandbox signs text; these bodies need not be)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.INFO]


def _assert_quiet(caplog: pytest.LogCaptureFixture, what: str) -> None:
    lines = _lines(caplog)
    assert len(lines) <= 1, f"{what}: {len(lines)} log lines: {[r.getMessage()[:200] for r in lines]}"
    for record in lines:
        assert record.exc_info is None, f"{what}: a traceback was logged"
        message = record.getMessage()
        assert "Traceback" not in message and "\n" not in message and len(message) < 200, message


@pytest.mark.parametrize(("kind", "body", "content_type"), ODD_BODIES, ids=[k for k, _, _ in ODD_BODIES])
async def test_an_unsigned_odd_body_is_refused_before_it_is_read(
    bot: Bot, caplog: pytest.LogCaptureFixture, kind: str, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    reply = await bot.slack.send_raw(bot.url, body, {"Content-Type": content_type})
    assert reply.status == 401, (kind, reply.status, reply.text[:200])
    _assert_quiet(caplog, kind)


@pytest.mark.parametrize(("kind", "body", "content_type"), ODD_BODIES, ids=[k for k, _, _ in ODD_BODIES])
async def test_a_signed_odd_body_gets_a_4xx_and_one_short_line(
    bot: Bot, caplog: pytest.LogCaptureFixture, kind: str, body: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    headers = {"Content-Type": content_type, **_sign(bot.slack.signing_secret, body)}
    reply = await bot.slack.send_raw(bot.url, body, headers)
    if kind == "empty":
        assert reply.status < 500, reply.text[:200]  # nothing to dispatch: Bolt answers 404
    else:
        assert reply.status == 400, (kind, reply.status, reply.text[:200])
    _assert_quiet(caplog, kind)


def _command() -> bytes:
    return urlencode(
        {"command": "/approvals", "text": "help", "user_id": "U0ALICE", "channel_id": "C0GENERAL"}
    ).encode()


async def test_stale_tampered_and_forged_signatures_get_401(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = bot.slack.signing_secret
    body = _command()
    cases = {
        "stale": _sign(secret, body, int(time.time()) - 6 * 60),
        "from the future": _sign(secret, body, int(time.time()) + 6 * 60),
        "tampered": _sign(secret, body.replace(b"help", b"list")),
        "another secret": _sign("not-the-secret", body),
        "timestamp not a number": {**_sign(secret, body), "X-Slack-Request-Timestamp": "soon"},
        "huge timestamp": {**_sign(secret, body), "X-Slack-Request-Timestamp": "9" * 5000},
        "signature not ascii": {**_sign(secret, body), "X-Slack-Signature": "v0=é" * 10},
        "signature only": {"X-Slack-Signature": _sign(secret, body)["X-Slack-Signature"]},
        "timestamp only": {"X-Slack-Request-Timestamp": str(int(time.time()))},
    }
    for what, headers in cases.items():
        caplog.clear()
        reply = await bot.slack.send_raw(bot.url, body, {"Content-Type": FORM, **headers})
        assert reply.status == 401, (what, reply.status, reply.text[:200])
        _assert_quiet(caplog, what)
    assert bot.slack.ephemerals_for("U0ALICE") == []  # none of them ran the command
    caplog.clear()
    good = await bot.slack.send_raw(bot.url, body, {"Content-Type": FORM, **_sign(secret, body)})
    assert good.status == 200


async def test_an_oversized_body_gets_413_signed_or_not(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"payload=" + b"x" * (MAX_BODY + 10)
    for what, headers in {
        "unsigned": {"Content-Type": FORM},
        "signed": {"Content-Type": FORM, **_sign(bot.slack.signing_secret, body)},
    }.items():
        caplog.clear()
        async with (
            aiohttp.ClientSession() as session,
            session.post(bot.url, data=io.BytesIO(body), headers=headers) as reply,
        ):
            assert reply.status == 413, (what, reply.status)
        _assert_quiet(caplog, what)
