"""`approvals-bot audit`: who decided or tried what, when, through which card, and what the vendor
answered; refused attempts with the reason. The trail is append-only for the bot."""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from tests.harness import Bot, link_flexdeploy, start_flexdeploy_bot
from tests.running import stopping

STORE = Path(__file__).resolve().parents[2] / "store"


@pytest.fixture
async def bot(db_url: str, secret_key: str, slack: SlackSandbox, fd: FlexDeploySandbox) -> AsyncIterator[Bot]:
    running = await start_flexdeploy_bot(database_url=db_url, secret_key=secret_key, slack=slack, fd=fd)
    async with stopping(running):
        yield running


async def _export(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["audit", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_the_export_names_who_what_when_which_card_and_the_answer(
    bot: Bot,
    fd: FlexDeploySandbox,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await bot.poll()
    gate = bot.card("C0DEPLOYS", "Retail Web")
    await bot.click("alice", gate, "Approve")  # not linked yet: refused, nothing sent
    await bot.wait_private("alice", "link your own FlexDeploy account")
    await link_flexdeploy(bot, fd, "alice")
    await bot.click("alice", gate, "Approve")
    await bot.wait_card(gate, "Approved")
    await bot.settle()

    code, out, _ = await _export(monkeypatch, capsys, db_url, "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    card = f"{gate.channel}/{gate.ts}"
    assert [(r["slack_user"], r["action"], r["outcome"], r["reason"], r["via"]) for r in lines] == [
        ("U0ALICE", "approve", "refused", "not_linked", card),
        ("U0ALICE", "approve", "attempt", "", card),  # written before the vendor was called
        ("U0ALICE", "approve", "ok", "", card),
    ]
    ok = lines[2]
    assert ok["vendor_user"] == "alice" and ok["connector"] == "deploys"
    assert ok["title"], "the export names the item, not only its id"
    assert ok["vendor_answer"].startswith("status ")
    assert ok["at"].startswith("20")

    code, out, _ = await _export(monkeypatch, capsys, db_url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(lines)
    assert rows[2]["outcome"] == "ok" and rows[2]["via"] == card

    code, out, _ = await _export(monkeypatch, capsys, db_url, "--connector", "elsewhere", "--format", "jsonl")
    assert code == 0 and out == ""
    code, out, _ = await _export(monkeypatch, capsys, db_url, "--since", "2999-01-01", "--format", "jsonl")
    assert code == 0 and out == ""
    code, out, _ = await _export(monkeypatch, capsys, db_url, "--since", "2000-01-01", "--format", "jsonl")
    assert len(out.splitlines()) == len(lines)
    code, _, err = await _export(monkeypatch, capsys, db_url, "--since", "last tuesday")
    assert code == 2 and "--since last tuesday" in err


def test_no_code_in_store_updates_or_deletes_the_audit() -> None:
    """Append-only for the bot: no update() or delete() of the decisions table anywhere in store/."""
    offenders = []
    for path in STORE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "update",
                "delete",
            ):
                target = ast.unparse(node.args[0]) if node.args else ""
                if "DecisionRow" in target or "decisions" in target:
                    offenders.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []
