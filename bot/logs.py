"""Log set-up for `run` and `demo`: a level, and text for people or one JSON object a line for a collector.

Why a formatter of our own: a JSON line per record is what log shippers parse without a grok
pattern, and the standard library makes one in a few lines. Both formats pass through the same
redaction, so a token that slips into a message (an exception text quoting a header, say) is
masked whichever format is chosen.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Slack tokens, Authorization headers, and key=value pairs whose key says it is a secret.
_SECRET = re.compile(
    r"(xox[abprse]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+"
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|(?i:(?:api_?key|token|secret|password|client_secret)[\"']?\s*[=:]\s*[\"']?)[^\s,&\"']+)"
)


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        found = match.group(0)
        for sep in ("=", ":"):
            if sep in found and not found.lower().startswith(("bearer", "basic")):
                head, _, _ = found.partition(sep)
                return f"{head}{sep}***"
        if found.lower().startswith(("bearer", "basic")):
            return found.split()[0] + " ***"
        return found[:5] + "***"

    return _SECRET.sub(mask, text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to `sys.stderr` as it is when a record comes, not as it was at set-up.

    Why: whoever swaps stderr (pytest's capture, a supervisor's redirection) may close the stream
    they swapped in; a handler holding that stream would fail on every later record with
    "I/O operation on closed file". The standard library's last-resort handler does the same."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; query strings can carry notes, so keep it quiet.
    quiet = logging.WARNING if level != "debug" else logging.INFO
    for name in ("httpx", "apscheduler", "alembic", "aiohttp.access"):
        logging.getLogger(name).setLevel(max(quiet, root.level))
