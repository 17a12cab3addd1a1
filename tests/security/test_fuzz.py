"""Signed nonsense into the running app: every kind of request Slack sends here (block_actions,
view_submission, view_closed, block_suggestion, slash commands, app_home_opened and other events,
url_verification), with odd types, huge strings, deep nesting and unknown ids.

Over 2,000 cases, each signed with the app's secret, over HTTP into the real aiohttp + Bolt app,
which talks to the Slack and FlexDeploy sandboxes on 127.0.0.1 with a real database. What must
hold: no answer of 500 or more, no traceback in the log, no write at the vendor, and no change to
items, identities, decisions or subscriptions.

Hypothesis drives a synchronous function; the bot runs in an event loop of its own in a thread,
and each case is sent there and waited for.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.ids import ActionId, ViewId
from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.conftest import make_database
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot

CASES = int(os.environ.get("FUZZ_CASES", "2200"))
WATCHED_TABLES = ("items", "identities", "decisions", "subscriptions")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

pytestmark = pytest.mark.slow


# ---- the running app, in a thread of its own ------------------------------------------------------------


@dataclass
class Running:
    loop: asyncio.AbstractEventLoop
    bot: Bot
    slack: SlackSandbox
    fd: FlexDeploySandbox
    refs: list[str]
    session: aiohttp.ClientSession

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)


@dataclass
class Log(logging.Handler):
    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, level=logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __hash__(self) -> int:
        return id(self)


async def _rows(bot: Bot) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with bot.runtime.store.db.engine.connect() as conn:
        for table in WATCHED_TABLES:
            # A refused attempt is audited (an appended "refused" row): that change is wanted.
            where = " WHERE outcome != 'refused'" if table == "decisions" else ""
            result = await conn.execute(sa.text(f"SELECT * FROM {table}{where} ORDER BY 1"))
            out[table] = [tuple(r) for r in result.all()]
    return out


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-app", daemon=True)
    thread.start()

    async def start() -> Running:
        slack = SlackSandbox()
        await slack.start()
        fd = FlexDeploySandbox()
        fd.seed_demo()
        await fd.start()
        db = await make_database("sqlite", tmp_path)
        url = db.url
        await db.dispose()
        bot = await start_flexdeploy_bot(
            database_url=url, secret_key=Fernet.generate_key().decode(), slack=slack, fd=fd
        )
        await link_flexdeploy(bot, fd, "alice")
        await bot.poll()
        refs = sorted(
            {
                e["value"]
                for m in slack.messages.values()
                for b in m.blocks
                if b.get("type") == "actions"
                for e in b.get("elements", [])
                if isinstance(e.get("value"), str) and e["value"].startswith("1|")
            }
        )
        return Running(
            loop, bot, slack, fd, refs, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        )

    state: Running = asyncio.run_coroutine_threadsafe(start(), loop).result(60)

    async def stop() -> None:
        await state.session.close()
        await state.bot.stop()
        await state.fd.stop()
        await state.slack.stop()

    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ---- what is sent ----------------------------------------------------------------------------------------

ODD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.just([]),
    st.just({}),
)
TOKENS = st.sampled_from(
    [
        "<!channel>",
        "&amp;",
        "\x00",
        "\ud800",
        "👩‍💻",
        "|",
        "1|",
        "2|deploys|",
        "#",
        "%%%",
        "{",
        "]",
        "\n",
        " ",
    ]
)
text = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(TOKENS, st.text(max_size=6)), max_size=12).map("".join),
    st.builds(
        lambda piece, n: piece * n, st.one_of(TOKENS, st.text(min_size=1, max_size=3)), st.integers(1, 30_000)
    ),
)


def deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


nested = st.builds(deep, st.integers(1, 400))
odd = st.one_of(
    ODD_SCALARS, text, nested, st.lists(text, max_size=3), st.dictionaries(text, text, max_size=3)
)
users = st.one_of(st.from_regex(r"U0[A-Z0-9]{4,8}", fullmatch=True), st.just("U0NOBODY"), text)
action_ids = st.one_of(
    st.sampled_from(
        [a.value for a in ActionId] + [f"card.{x}" for x in ("approve", "reject", "cancel", "comment")]
    ),
    text,
)
callback_ids = st.one_of(st.sampled_from([v.value for v in ViewId]), text)
block_ids = st.one_of(
    st.sampled_from(["input|__comment__", "input|__requestable__", "bulk|0", "cred|username"]), text
)


@st.composite
def values(draw: st.DrawFn, refs: list[str]) -> Any:
    """A button value: unknown ids, real ids garbled, digests of nothing, odd types."""
    real = st.sampled_from(refs) if refs else st.just("1|deploys|1")
    return draw(
        st.one_of(
            odd,
            st.builds(lambda r, t: r + t, real, text),
            st.builds(lambda t: f"1|deploys|{t}", text),
            st.builds(lambda t: f"2|deploys|{t}", text),
            st.builds(lambda r: f"approve#{r}x", real),
            st.builds(lambda t: f"1|{t}|1", text),
        )
    )


def element_state() -> st.SearchStrategy[Any]:
    kind = st.sampled_from(
        ["plain_text_input", "static_select", "checkboxes", "users_select", "number_input"]
    )
    return st.one_of(
        odd,
        st.fixed_dictionaries(
            {"type": kind},
            optional={
                "value": odd,
                "selected_option": st.one_of(odd, st.fixed_dictionaries({"value": odd})),
                "selected_options": st.one_of(
                    odd, st.lists(st.fixed_dictionaries({"value": odd}), max_size=3)
                ),
                "selected_user": odd,
            },
        ),
    )


def view(refs: list[str]) -> st.SearchStrategy[Any]:
    metadata = st.one_of(
        odd,
        st.builds(
            json.dumps,
            st.dictionaries(st.sampled_from(["c", "i", "a", "h", "t", "ch", "ts"]), odd, max_size=6),
        ),
        st.builds(
            lambda i, a: json.dumps({"c": "deploys", "i": i, "a": a}),
            text,
            st.sampled_from(["approve", "reject", "x"]),
        ),
    )
    state = st.one_of(
        odd,
        st.fixed_dictionaries(
            {
                "values": st.one_of(
                    odd,
                    st.dictionaries(
                        block_ids,
                        st.one_of(odd, st.dictionaries(text, element_state(), max_size=2)),
                        max_size=4,
                    ),
                )
            }
        ),
    )
    return st.one_of(
        odd,
        st.fixed_dictionaries(
            {"callback_id": callback_ids},
            optional={"id": odd, "private_metadata": metadata, "state": state, "type": odd, "hash": odd},
        ),
    )


@st.composite
def interactive(draw: st.DrawFn, running: Running) -> tuple[str, str]:
    kind = draw(
        st.one_of(
            st.sampled_from(
                ["block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut"]
            ),
            odd,
        )
    )
    payload: dict[str, Any] = {"type": kind}
    optional = {
        "user": st.one_of(st.fixed_dictionaries({"id": users}), odd),
        "team": st.one_of(st.fixed_dictionaries({"id": st.just("T0SANDBOX")}), odd),
        "trigger_id": st.one_of(st.just("1.2.3"), odd),
        "container": st.one_of(
            st.fixed_dictionaries({"type": st.just("message"), "channel_id": odd, "message_ts": odd}), odd
        ),
        "channel": st.one_of(st.fixed_dictionaries({"id": odd}), odd),
        "response_url": st.one_of(st.none(), st.just(running.slack.url + "/hooks/none")),
        "actions": st.one_of(
            odd,
            st.lists(
                st.fixed_dictionaries(
                    {"action_id": action_ids},
                    optional={"value": values(running.refs), "block_id": block_ids, "type": odd},
                ),
                max_size=3,
            ),
        ),
        "view": view(running.refs),
        "action_id": action_ids,
        "value": odd,
        "enterprise": odd,
        "authorizations": odd,
        "message": st.one_of(odd, st.fixed_dictionaries({"blocks": odd, "ts": odd})),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            payload[key] = draw(strategy)
    # Most cases are shaped like Slack's, with the oddity inside, so they reach the listeners.
    if draw(st.integers(0, 3)):
        payload["type"] = draw(st.sampled_from(["block_actions", "view_submission", "view_closed"]))
        payload["user"] = {"id": draw(users)}
        for key in ("enterprise", "authorizations", "team", "channel", "container", "action_id", "value"):
            payload.pop(key, None)
        payload["container"] = {"type": "message", "channel_id": "C0DEPLOYS", "message_ts": "1.1"}
        payload["trigger_id"] = "1.2.3"
        if payload["type"] == "block_actions" and not isinstance(payload.get("actions"), list):
            payload["actions"] = [{"action_id": draw(action_ids), "value": draw(values(running.refs))}]
        if payload["type"] != "block_actions" and not isinstance(payload.get("view"), dict):
            payload["view"] = draw(view(running.refs).filter(lambda v: isinstance(v, dict)))
    body = json.dumps(payload)
    if draw(st.integers(0, 9)) == 0:
        return body, JSON  # the same payload as a JSON body instead of payload=
    return urlencode({"payload": body}), FORM


@st.composite
def command(draw: st.DrawFn) -> tuple[str, str]:
    words = st.one_of(
        st.sampled_from(
            ["list", "connect", "disconnect", "status", "start", "help", "digest", "subscribe", "unsubscribe"]
        ),
        st.sampled_from(["deploys", "nope", "<#C0NOPE|x>", "<!channel>"]),
        text,
    )
    fields: dict[str, Any] = {
        "command": draw(st.one_of(st.just("/approvals"), text)),
        "text": " ".join(draw(st.lists(words, max_size=4))),
        "user_id": draw(users),
        "channel_id": draw(st.one_of(st.just("C0GENERAL"), text)),
        "team_id": "T0SANDBOX",
        "trigger_id": draw(st.one_of(st.just("1.2.3"), text)),
    }
    if draw(st.booleans()):
        del fields[draw(st.sampled_from(sorted(fields)))]
    return urlencode({k: v for k, v in fields.items() if isinstance(v, str)}, errors="surrogatepass"), FORM


@st.composite
def event(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(
        st.one_of(st.sampled_from(["app_home_opened", "message", "app_uninstalled", "tokens_revoked"]), odd)
    )
    inner: dict[str, Any] = {"type": kind}
    for key, strategy in {
        "user": users,
        "tab": st.one_of(st.sampled_from(["home", "messages"]), odd),
        "channel": odd,
        "view": odd,
    }.items():
        if draw(st.booleans()):
            inner[key] = draw(strategy)
    envelope: dict[str, Any] = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("event_callback"), "event": st.one_of(st.just(inner), odd)},
                optional={
                    "event_id": st.one_of(st.from_regex(r"Ev[0-9A-Z]{8}", fullmatch=True), odd),
                    "team_id": odd,
                    "authorizations": odd,
                },
            ),
            st.fixed_dictionaries({"type": st.just("url_verification")}, optional={"challenge": odd}),
            st.fixed_dictionaries({"type": odd}),
        )
    )
    return json.dumps(envelope), JSON


def cases(running: Running) -> st.SearchStrategy[tuple[str, str]]:
    raw = st.one_of(
        st.builds(lambda v: (json.dumps(v), JSON), odd),
        st.builds(lambda v: ("payload=" + json.dumps(v), FORM), odd),
        st.just(("[" * 100_000 + "]" * 100_000, JSON)),
        st.builds(lambda t: (t, FORM), text),
    )
    return st.one_of(interactive(running), interactive(running), command(), event(), raw)


# ---- the test --------------------------------------------------------------------------------------------


def test_2000_signed_odd_requests_never_hurt(running: Running) -> None:
    log = Log()
    root = logging.getLogger()
    level = root.level
    root.addHandler(log)
    root.setLevel(logging.INFO)
    before = running.run(_rows(running.bot))
    statuses: dict[int, int] = {}
    failures: list[str] = []

    secret = running.slack.signing_secret.encode()

    async def send(body: str, content_type: str) -> int:
        raw = body.encode("utf-8", "surrogatepass")  # lone surrogates make bytes that are not UTF-8
        stamp = str(int(time.time()))
        digest = hmac.new(secret, b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}",
        }
        # A stream, not bytes: aiohttp warns that a large body sent as bytes holds up the loop.
        async with running.session.post(running.bot.url, data=io.BytesIO(raw), headers=headers) as reply:
            await reply.read()
            return reply.status

    @settings(
        max_examples=CASES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(running))
    def one(case: tuple[str, str]) -> None:
        # Failures are collected, not raised: Hypothesis would print cases of up to a megabyte.
        try:
            status = running.run(send(*case))
        except Exception as exc:
            failures.append(f"sending failed ({type(exc).__name__}): {case[0][:300]!r}")
            return
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500 or status == 0:
            failures.append(f"{status} for {case[0][:300]!r}")

    try:
        one()
        running.run(running.bot.runtime.ack_first.drain(15), timeout=30)
        running.run(asyncio.sleep(0.5))
        running.run(running.bot.settle(15), timeout=30)
    finally:
        root.removeHandler(log)
        root.setLevel(level)
    after = running.run(_rows(running.bot))

    sent = sum(statuses.values())
    tracebacks = [r for r in log.records if r.exc_info is not None or "Traceback" in r.getMessage()]
    writes = [r for r in running.fd.served if not r.startswith("GET")]
    refusals = collections.Counter(
        r.getMessage().partition(": ")[2].split(" (")[0] for r in log.records if r.name == "bot.server"
    )
    print("\nrefused:", refusals.most_common(8))
    print(
        f"\nfuzz: {sent} cases, answers {dict(sorted(statuses.items()))}, {len(tracebacks)} tracebacks, "
        f"{len(writes)} vendor writes"
    )
    assert sent >= min(CASES, 2000)
    assert not failures, failures[:5]
    assert not tracebacks, [f"{r.name}: {r.getMessage()[:300]}" for r in tracebacks[:5]]
    assert writes == [] and running.fd.decisions == []
    assert after == before
