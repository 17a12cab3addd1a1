"""`python -m bench [--quick]`: every figure beside its floor, as a table and as JSON.

The bot runs in processes of its own, the Slack and FlexDeploy sandboxes in another (bench/peer.py),
as they would be deployed. Floors, measured in the same run on the same machine:
- click ack: a bare Bolt AsyncApp acking the same signed payload; and, stricter, a bare aiohttp
  handler that checks the signature and answers 200 (all the bot does before it answers a click);
- click to vendor: the vendor call made directly;
- sync: ceil(N / largest page) vendor requests (FlexDeploy has no paging: 1), 0 Slack calls, 0 rows;
- fan-out: the rate the Slack sandbox allows;
- priority under load: the same click with an empty queue, Slack's tiers enforced alike;
- first sync: the rate Slack's tiers allow, every channel's after its burst;
- memory: the same interpreter with the bot imported and nothing stored;
- reminder pass: reading its due rows alone (target: 0.2 s of CPU at 100,000 items, 1 % due).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from slack_sdk.signature import SignatureVerifier

from bench import peer
from bench.env import click_body

RESULTS = Path(__file__).parent / "results"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
        if ordered
        else float("nan")
    )


async def _fire(
    session: aiohttp.ClientSession, url: str, signed: list[tuple[str, dict[str, str]]], concurrency: int
) -> list[float]:
    """Send the signed bodies `concurrency` at a time (all in flight together); latency of each response."""
    latencies: list[float] = []

    async def one(body: str, headers: dict[str, str]) -> None:
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        latencies.append(time.perf_counter() - started)

    for n in range(0, len(signed), concurrency):
        await asyncio.gather(*(one(*pair) for pair in signed[n : n + concurrency]))
    return latencies


@contextlib.contextmanager
def _steady() -> Iterator[None]:
    """Around a timed step: the client's own full garbage collections (measured: 60-85 ms) must not
    land inside it and be counted against whichever app was being clicked. Collect before, none during."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.asynccontextmanager
async def _connected(url: str, connections: int) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose connections to `url` are open before the clock starts, so the figures measure
    the app answering, not TCP handshakes (the same for the floor and the bot)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def knock() -> None:
            async with session.post(url, data="") as response:  # unsigned: refused, cheaply
                await response.read()

        await asyncio.gather(*(knock() for _ in range(connections)))
        yield session


def _signer(secret: str) -> Callable[[str], dict[str, str]]:
    verifier = SignatureVerifier(secret)

    def sign(body: str) -> dict[str, str]:
        stamp = str(int(time.time()))
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": str(verifier.generate_signature(timestamp=stamp, body=body)),
        }

    return sign


def clicks(folder: Path, *, quick: bool) -> dict[str, Any]:
    """The bot and the bare-Bolt floor each in a process of its own (as deployed), the sandboxes in a
    third, the clicks from this one. Floor and bot take turns in rounds, so a busy moment of the
    machine falls on both alike."""
    levels = [
        (1, 20 if quick else 100),
        (10 if quick else 50, 20 if quick else 200),
        (20 if quick else 200, 40 if quick else 400),
    ]
    total = sum(n for _, n in levels) + 11
    args = [str(folder), ""]
    with peer.running(total) as sandboxes:
        args[1] = json.dumps(sandboxes)
        with (
            peer.process(["-m", "bench.worker", "serve", "0", *args]) as bot,
            peer.process(["-m", "bench.worker", "floor", "0", *args]) as floor,
            peer.process(["-m", "bench.worker", "bare-http", "0", *args]) as bare,
        ):
            return asyncio.run(_clicks(sandboxes, bot, floor["url"], bare["url"], levels))


async def _clicks(
    sandboxes: dict[str, Any],
    bot: dict[str, Any],
    floor_url: str,
    bare_url: str,
    levels: list[tuple[int, int]],
) -> dict[str, Any]:
    ids: list[str] = sandboxes["task_ids"]
    sign = _signer(sandboxes["slack"]["signing_secret"])
    out: dict[str, Any] = {}
    most = max(concurrency for concurrency, _ in levels)
    async with (
        _connected(floor_url, most) as to_floor,
        _connected(bare_url, most) as to_bare,
        _connected(bot["url"], most) as to_bot,
    ):
        apps = {"floor": (to_floor, floor_url), "bare": (to_bare, bare_url), "bot": (to_bot, bot["url"])}
        # Warm every app (Bolt's lazy auth.test).
        warm = [(b, sign(b)) for b in [click_body(ids[-1])] * 3]
        for app in apps.values():
            await _fire(*app, warm, 1)
        cursor = await _ack_levels(out, ids, levels, sign, apps)
    await _until(sandboxes, lambda r: r["decisions"] >= cursor, 120)
    await _click_to_card(out, sandboxes, bot, ids, cursor, sign)
    return out


async def _ack_levels(
    out: dict[str, Any],
    ids: list[str],
    levels: list[tuple[int, int]],
    sign: Callable[[str], dict[str, str]],
    apps: dict[str, tuple[aiohttp.ClientSession, str]],
) -> int:
    cursor = 0
    for concurrency, count in levels:
        batch = ids[cursor : cursor + count]
        cursor += count
        seen: dict[str, list[float]] = {name: [] for name in apps}
        step = max(concurrency, count // 4)
        for start_at in range(0, count, step):
            signed = [(b, sign(b)) for b in (click_body(i) for i in batch[start_at : start_at + step])]
            for name, app in apps.items():
                with _steady():
                    seen[name] += await _fire(*app, signed, concurrency)
        real, floor, bare = seen["bot"], seen["floor"], seen["bare"]
        out[f"ack_c{concurrency}"] = {
            "p50_ms": pct(real, 50) * 1000,
            "p99_ms": pct(real, 99) * 1000,
            "floor_p50_ms": pct(floor, 50) * 1000,
            "floor_p99_ms": pct(floor, 99) * 1000,
            "ratio_p99": pct(real, 99) / pct(floor, 99),
            "target_ratio_p99": 1.2,
            "bare_http_p50_ms": pct(bare, 50) * 1000,
            "bare_http_p99_ms": pct(bare, 99) * 1000,
            "ratio_p99_bare_http": pct(real, 99) / pct(bare, 99),
            "samples": len(real),
        }
    return cursor


async def _click_to_card(
    out: dict[str, Any],
    sandboxes: dict[str, Any],
    bot: dict[str, Any],
    ids: list[str],
    cursor: int,
    sign: Callable[[str], dict[str, str]],
) -> None:
    # Click → vendor → final card, one at a time on a bot done with the bursts (its outbox empty);
    # the floor is the same two vendor calls made directly.
    for _ in range(1200):
        if not _outbox(bot["db"]):
            break
        await asyncio.sleep(0.1)
    cards = _channel_cards(bot["db"])
    to_vendor, to_card, direct = [], [], []
    async with aiohttp.ClientSession() as session:
        for external_id in ids[cursor : cursor + 5]:
            started, line = await _click_to_final(session, sandboxes, bot["url"], sign, external_id, cards)
            to_vendor.append(line["decided_at"] - started)
            to_card.append(line["approved_at"] - started)
    alice = sandboxes["alice"]
    async with httpx.AsyncClient(
        base_url=sandboxes["flexdeploy"]["base_url"], auth=(alice["username"], alice["secret"])
    ) as client:
        for external_id in ids[cursor + 5 : cursor + 10]:
            with _steady():
                started = time.time()
                await client.get(f"/rest/v1/tasks/approval/{external_id}")
                await client.put(f"/rest/v1/tasks/approval/approve/{external_id}")
                direct.append(time.time() - started)
    for key, values in (("click_to_vendor", to_vendor), ("click_to_card", to_card)):
        out[key] = {
            "p50_ms": statistics.median(values) * 1000,
            "floor_ms": statistics.median(direct) * 1000,
            "ratio": statistics.median(values) / statistics.median(direct),
        }


# Slack's tiers times this in the priority benchmark: Tier 3 (chat.update) at 10 a second, so a
# backlog of 2,000 updates is minutes of work, as 2,000 at Slack's 50 a minute would be.
PRIORITY_FACTOR = 12.0


def priority(*, quick: bool) -> dict[str, Any]:
    """Priority under load: Alice clicks Approve on a card while a backlog of card updates waits on
    Tier 3's pace (chat.update), and on one with an empty queue; from the click to that card's
    final update in Slack. The backlog: `items` decided in FlexDeploy's UI, each card's update
    queued by the next sync ("decided elsewhere")."""
    items, clicks = (100, 3) if quick else (2_000, 5)
    with (
        tempfile.TemporaryDirectory() as tmp,
        peer.running(items + 2 * clicks + 1) as sandboxes,
    ):
        sandboxes |= {"factor": PRIORITY_FACTOR}
        with peer.conversing(["-m", "bench.worker", "serve", "0", tmp, json.dumps(sandboxes)]) as (
            bot,
            say,
        ):
            return asyncio.run(_priority(sandboxes, bot, say, items, clicks))


async def _priority(
    sandboxes: dict[str, Any],
    bot: dict[str, Any],
    say: Callable[[str], dict[str, Any]],
    items: int,
    clicks: int,
) -> dict[str, Any]:
    ids: list[str] = sandboxes["task_ids"]
    sign = _signer(sandboxes["slack"]["signing_secret"])
    await _until(sandboxes, bool, 5, op="enforce_tiers", factor=PRIORITY_FACTOR, burst_seconds=3.0)
    cards = _channel_cards(bot["db"])
    async with aiohttp.ClientSession() as session:

        async def click(external_id: str) -> float:
            await _idle_a_moment()
            started, line = await _click_to_final(session, sandboxes, bot["url"], sign, external_id, cards)
            return float(line["approved_at"]) - started

        await _drained(bot["db"])
        await click(ids[items + 2 * clicks])  # warm (Bolt's lazy auth.test), not counted
        empty = [await click(i) for i in ids[items : items + clicks]]
        await _drained(bot["db"])
        await _until(sandboxes, bool, 5, op="decide", count=items)
        await asyncio.to_thread(say, "sync")
        queued = _outbox(bot["db"])
        await asyncio.sleep(1.0)  # the backlog under way, at Tier 3's pace
        loaded = [await click(i) for i in ids[items + clicks : items + 2 * clicks]]
        left = _outbox(bot["db"])
    report = await _until(sandboxes, bool, 5)
    return {
        "backlog": queued,
        "backlog_left": left,
        "tier3_per_s": 50 * PRIORITY_FACTOR / 60,
        "loaded_ms": statistics.median(loaded) * 1000,
        "empty_ms": statistics.median(empty) * 1000,
        "ratio": statistics.median(loaded) / statistics.median(empty),
        "target_ratio": 1.5,
        "loaded_all_ms": [x * 1000 for x in loaded],
        "empty_all_ms": [x * 1000 for x in empty],
        "rate_limited_429": report["rate_limited"],
    }


def _channel_cards(path: str) -> dict[str, str]:
    """The ts of each item's card in its channel, by the item's external id."""
    with sqlite3.connect(path) as db:
        return dict(
            db.execute(
                "SELECT i.external_id, c.ts FROM card_messages c JOIN items i ON c.item_id = i.id "
                "WHERE c.target LIKE 'channel:%'"
            ).fetchall()
        )


async def _click_to_final(
    session: aiohttp.ClientSession,
    sandboxes: dict[str, Any],
    url: str,
    sign: Callable[[str], dict[str, str]],
    external_id: str,
    cards: dict[str, str],
) -> tuple[float, dict[str, Any]]:
    """Alice clicks Approve on the item's card; when the click left, and the vendor's and Slack's
    timeline of it once the card shows the decision."""
    body = click_body(external_id)
    with _steady():
        started = time.time()
        await _fire(session, url, [(body, sign(body))], 1)
        line = await _until(
            sandboxes,
            lambda r: r["approved_at"] is not None,
            20,
            op="timeline",
            task=external_id,
            ts=cards[external_id],
        )
    return started, line


async def _idle_a_moment() -> None:
    """Between clicks: the last one's Home republish and Tier 3 tokens settle."""
    await asyncio.sleep(0.5)


async def _drained(db: str) -> None:
    for _ in range(600):
        if not _outbox(db):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the bot's outbox did not drain")


def _outbox(path: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


async def _until(
    sandboxes: dict[str, Any], done: Callable[[dict[str, Any]], bool], timeout: float, **ask: Any
) -> dict[str, Any]:
    """Ask the sandboxes until the answer satisfies `done`."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.post(sandboxes["control"], json={"op": "report"} | ask) as response:
                answer: dict[str, Any] = await response.json()
            if done(answer):
                return answer
            if time.perf_counter() > deadline:
                raise TimeoutError(f"benchmark step did not complete: {answer}")
            await asyncio.sleep(0.002)


def _worker(kind: str, n: int, folder: Path, peer: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh interpreter (bench/worker.py), so CPU and RSS figures are its own."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", kind, str(n), str(folder), json.dumps(peer)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench worker {kind} {n} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _sync(n: int, *, prepared: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, peer.running(n) as sandboxes:
        if prepared:
            _worker("prepare", n, Path(tmp), sandboxes)
        return _worker("sync", n, Path(tmp), sandboxes)


def _fanout(n: int, rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, peer.running(n, rate) as sandboxes:
        return _worker("fanout", n, Path(tmp), sandboxes | {"rate": rate})


def _reminders(n: int) -> dict[str, Any]:
    """One reminder pass over n pending items with their cards, 1 % due (bench/reminders.py)."""
    with tempfile.TemporaryDirectory() as tmp, peer.running(n) as sandboxes:
        return _worker("reminders", n, Path(tmp), sandboxes)


def _reminder_rows(p: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            f"reminder pass, {p['items']:,} items, {p['due']:,} due",
            f"{p['cpu_s']:.3f} CPU s, {p['queries']} queries, {p['queued']:,} queued",
            f"{p['floor_cpu_s']:.3f} CPU s (the due rows read)",
            f"{p['ratio']:.1f}x",
            f"≤{p['target_cpu_s']} CPU s",
        ),
        (
            "  per due reminder",
            f"{p['cpu_per_due_ms']:.3f} CPU ms, {p['queries_per_due']:.3f} queries",
            "-",
            "-",
            f"(load {p['load_avg_1m']:.1f})",
        ),
    ]


def _first_sync(n: int, teams: int, factor: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, peer.running(n, teams=teams) as sandboxes:
        return _worker("first-sync", n, Path(tmp), sandboxes | {"factor": factor})


def run(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        results["clicks"] = clicks(Path(tmp), quick=quick)
    sizes = [100, 300] if quick else [1_000, 10_000, 100_000]
    results["sync"] = [_sync(n, prepared=n > 2_000) for n in sizes]
    per_item = [r["cpu_s"] / r["items"] for r in results["sync"]]
    results["sync_growth"] = {"cpu_per_item_s": per_item, "largest_over_smallest": per_item[-1] / per_item[0]}
    results["fanout"] = _fanout(100, 50.0) if quick else _fanout(2_000, 200.0)
    results["reminders"] = _reminders(1_000 if quick else 100_000)
    results["priority"] = priority(quick=quick)
    # Slack's tiers times 5 (quick) or 2: chat.postMessage at 2 a second per channel, so the issue's
    # 10,000 cards over 50 channels take about 100 s, at a pace two shared cores keep up with.
    results["first_sync"] = _first_sync(200, 10, 5.0) if quick else _first_sync(10_000, 50, 2.0)
    baseline = _worker("baseline", 0, Path("."), {})["rss_mb"]
    largest = results["sync"][-1]
    results["memory"] = {
        "items": largest["items"],
        "peak_rss_mb": largest["peak_rss_mb"],
        "floor_rss_mb": baseline,
        "ratio": largest["peak_rss_mb"] / baseline,
        "target_mb": 300,
    }
    results["seconds"] = time.perf_counter() - started
    return results


def table(r: dict[str, Any]) -> str:
    rows = [("figure", "value", "floor", "ratio", "target")]
    for key, v in r["clicks"].items():
        if key.startswith("ack_"):
            rows.append(
                (
                    f"click ack p99, {key[5:]} concurrent",
                    f"{v['p99_ms']:.1f} ms (p50 {v['p50_ms']:.1f})",
                    f"{v['floor_p99_ms']:.1f} ms (p50 {v['floor_p50_ms']:.1f})",
                    f"{v['ratio_p99']:.2f}x",
                    "≤1.2x",
                )
            )
            rows.append(
                (
                    "  the same, against bare HTTP",
                    "",
                    f"{v['bare_http_p99_ms']:.1f} ms (p50 {v['bare_http_p50_ms']:.1f})",
                    f"{v['ratio_p99_bare_http']:.2f}x",
                    "-",
                )
            )
    for key in ("click_to_vendor", "click_to_card"):
        v = r["clicks"][key]
        rows.append(
            (
                key.replace("_", " ") + " p50",
                f"{v['p50_ms']:.1f} ms",
                f"{v['floor_ms']:.1f} ms (direct call)",
                f"{v['ratio']:.2f}x",
                "-",
            )
        )
    for s in r["sync"]:
        rows.append(
            (
                f"no-change sync, {s['items']:,} items",
                f"{s['cpu_s']:.2f} CPU s, {s['vendor_requests']} req, "
                f"{s['slack_calls']} Slack, {s['rows_written']} rows",
                "1 req, 0 Slack, 0 rows",
                f"{s['vendor_requests']}x req",
                "0 Slack, 0 rows",
            )
        )
        if "slack_calls_per_change" in s:
            rows.append(
                (
                    f"1 % changed, {s['items']:,} items",
                    f"{s['slack_calls_per_change']:.2f} Slack calls/change",
                    "1 per card copy",
                    f"{s['slack_calls_per_change']:.2f}x",
                    "1",
                )
            )
    g = r["sync_growth"]
    rows.append(
        (
            "sync CPU per item, largest/smallest",
            f"{g['largest_over_smallest']:.2f}",
            "1.0 (linear)",
            "-",
            "~1",
        )
    )
    f = r["fanout"]
    rows.append(
        (
            f"fan-out {f['items']:,} cards",
            f"{f['achieved_per_s']:.1f}/s, {f['rate_limited_429']} 429s, "
            f"{f['lost']} lost, {f['duplicated']} dup",
            f"{f['allowed_per_s']:.0f}/s allowed",
            f"{f['share']:.0%}",
            "≥95 %, 0 lost/dup",
        )
    )
    rows.append(
        (
            "fan-out, from the sync's start",
            f"{f['end_to_end_per_s']:.1f}/s (first card after {f['first_card_s']:.2f} s)",
            f"{f['allowed_per_s']:.0f}/s allowed",
            f"{f['end_to_end_per_s'] / f['allowed_per_s']:.0%}",
            "-",
        )
    )
    rows += _reminder_rows(r["reminders"])
    p = r["priority"]
    rows.append(
        (
            f"click behind {p['backlog']:,} queued updates",
            f"{p['loaded_ms']:.0f} ms to its card, {p['rate_limited_429']} 429s",
            f"{p['empty_ms']:.0f} ms (empty queue)",
            f"{p['ratio']:.2f}x",
            "≤1.5x",
        )
    )
    first = r["first_sync"]
    rows.append(
        (
            f"first sync, {first['items']:,} cards / {first['channels']} channels",
            f"{first['achieved_per_s']:.1f}/s, {first['rate_limited_429']} 429s, "
            f"{first['lost']} lost, {first['duplicated']} dup",
            f"{first['allowed_per_s']:.0f}/s allowed",
            f"{first['share']:.0%}",
            "≥95 %, 0 429s",
        )
    )
    m = r["memory"]
    rows.append(
        (
            f"peak RSS, {m['items']:,} items",
            f"{m['peak_rss_mb']:.0f} MB",
            f"{m['floor_rss_mb']:.0f} MB (imports only)",
            f"{m['ratio']:.1f}x",
            "≤300 MB",
        )
    )
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n\n({r['seconds']:.0f} s; {'quick sizes' if r['quick'] else 'full sizes'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (what the test suite runs)")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args(argv)
    results = run(args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
