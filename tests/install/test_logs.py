"""`--log-level` and `--log-format json` as an operator meets them: lines on stderr, no secrets."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import setup_logging


def test_json_lines_carry_level_logger_and_message_with_tokens_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("info", "json")
    logging.getLogger("approvals-bot").info("slack answered for xoxb-1234-5678-abcdef with Bearer s3cr3t")
    logging.getLogger("approvals-bot").debug("not shown at info")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "info" and entry["logger"] == "approvals-bot"
    assert "xoxb-1234" not in entry["message"] and "s3cr3t" not in entry["message"]
    assert entry["message"].startswith("slack answered for xoxb-***")


def test_text_format_masks_secrets_and_debug_level_shows_debug(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("debug", "text")
    log = logging.getLogger("approvals-bot")
    log.debug("vendor call api_key=abc123 password: hunter2")
    try:
        raise RuntimeError("token=xapp-1-A0-secret")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "DEBUG approvals-bot: vendor call api_key=*** password:***" in err
    assert "abc123" not in err and "hunter2" not in err and "xapp-1-A0-secret" not in err
    assert "RuntimeError" in err
