"""Crashes with real `approvals-bot run` processes on PostgreSQL: what survives a kill -9.

What each test promises an operator (README, "Several replicas"):
- a replica killed after the vendor applied a click but before the bot recorded it: after a
  restart the card says who decided within one poll plus a few seconds (the killed process's
  heartbeat lapsed, so nobody waits for the click's deadline), the vendor decided exactly once, the audit has the attempt and its outcome, and the clicker is told
  in a DM;
- a replica killed between Slack's answer to a new card's post and its record: after a restart no
  card is lost and none is posted twice (the card's metadata is found in the channel's history);
- a post that failed before it happened is made once on the next attempt.

The figures measured are written to RELIABILITY_REPORT when set, for the README.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bot.outbox.deliver import Deliverer
from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.greenhouse.sandbox import demo as greenhouse_demo
from store import audit
from store.db import Database
from tests.conftest import PG_URL
from tests.processes import greenhouse_block
from tests.reliability.replicas import (
    CHANNEL,
    Cluster,
    Replica,
    card_in_channel,
    link,
    new_task,
    record,
    started,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not PG_URL.startswith("postgresql"),
        reason="crash recovery runs real replicas on PostgreSQL: set DATABASE_URL=postgresql+asyncpg://…",
    ),
]

# bot/reconcile.click_deadline for FlexDeploy's 15 s request timeout (35 s), plus its grace (5 s).
CLICK_DEADLINE = 40.0


def _in_channel(slack: SlackSandbox, marker: str) -> list[Any]:
    return [m for m in slack.messages_in(CHANNEL) if marker in m.render()]


async def test_kill_after_the_vendor_applied_a_click_settles_it_after_restart(cluster: Cluster) -> None:
    slack, fd = cluster.slack, cluster.fd
    replica = await started(cluster)
    await wait_until(lambda: card_in_channel(slack, "CAB approval"), timeout=30, what="the CAB card")
    await link(cluster, replica, "alice")
    gate = card_in_channel(slack, "CAB approval")

    # The vendor applies the approve at once and holds its answer: the bot is killed meanwhile.
    fd.slow_seconds = 120
    fd.fail_next("timeout", method="PUT")
    clicked = time.monotonic()
    reply = await slack.click(replica.url, user="alice", channel=CHANNEL, ts=gate.ts, label="Approve")
    assert reply.status == 200
    await wait_until(lambda: fd.decisions, timeout=20, what="the vendor applying the approve")
    replica.kill()
    await replica.process.wait()
    assert "alice" not in slack.messages[(CHANNEL, gate.ts)].render(), "nobody recorded it before the kill"

    restarted = await started(cluster)
    restarted_at = time.monotonic()
    alice = slack.person("alice").slack_id

    def card_names_alice() -> bool:
        text = slack.messages[(CHANNEL, gate.ts)].render()
        return "Approved" in text and (alice in text or "alice" in text.lower())

    # Bound: the killed process's heartbeat lapses (one lease after its last renewal, mostly gone
    # while the new process starts), the next poll (1 s) and delivery; well under the deadline.
    bound = 2 * cluster.lease + 1 + 10
    await wait_until(card_names_alice, timeout=bound, what="the card naming alice")
    settled = time.monotonic()
    assert settled - clicked < CLICK_DEADLINE, "settled before the click's deadline came"
    dm = slack.dm_channel(alice)
    await wait_until(
        lambda: any("went through" in m.render() for m in slack.messages_in(dm)),
        timeout=20,
        what="alice told in a DM",
    )
    await asyncio.sleep(2)  # anything that would call the vendor again has had its chance

    assert [d[1:] for d in fd.decisions] == [("approve", "alice")], "exactly one vendor decision"
    puts = [line for line in fd.served if line.startswith("PUT ")]
    assert len(puts) == 1, f"the decision was never sent again: {puts}"
    db = Database(PG_URL)
    try:
        rows = [
            r for r in await audit.decisions(db) if r.slack_user_id == alice or r.slack_user_id == "alice"
        ]
    finally:
        await db.dispose()
    outcomes = [(r.action, r.outcome, r.reason) for r in rows]
    assert ("approve", "attempt", None) in outcomes, outcomes
    assert ("approve", "ok", "reconciled") in outcomes, outcomes
    assert await restarted.metric('approvals_reconciliations_total{connector="deploys",outcome="ok"}') == 1
    record("reconcile_after_restart_seconds", round(settled - restarted_at, 1))
    record("reconcile_after_click_seconds", round(settled - clicked, 1))


async def _kill_mid_burst(cluster: Cluster, burst: list[str]) -> tuple[Replica, dict[str, int]]:
    """Kill -9 the only replica right after Slack stored the fifth card of a burst (before the bot
    read Slack's answer), restart, and count each card in the channel once all are there."""
    slack, fd = cluster.slack, cluster.fd
    replica = await started(cluster)
    for marker in ("CAB approval", "Payments API", "Inventory Service"):
        await wait_until(lambda m=marker: card_in_channel(slack, m), timeout=30, what=f"the card {marker}")
    await wait_until(replica.settled, timeout=30, what="the outbox delivered")
    killed = asyncio.Event()

    def kill_on_the_fifth(channel: str, ts: str, text: str, blocks: Any, kind: str) -> None:
        if kind == "post" and "burst-" in f"{text}{blocks}" and not killed.is_set():
            posted = sum(1 for m in slack.messages_in(CHANNEL) if "burst-" in m.render())
            if posted >= 5:
                replica.kill()
                killed.set()

    slack.on_post = kill_on_the_fifth
    for marker in burst:
        new_task(fd, marker)
    await asyncio.wait_for(killed.wait(), 60)
    await replica.process.wait()
    slack.on_post = None

    restarted = await started(cluster)
    for marker in burst:
        await wait_until(lambda m=marker: _in_channel(slack, m), timeout=60, what=f"the card {marker}")
    await wait_until(restarted.settled, timeout=30, what="the outbox delivered")
    await asyncio.sleep(2)
    return restarted, {marker: len(_in_channel(slack, marker)) for marker in burst}


async def test_kill_between_a_post_and_its_record_neither_loses_nor_duplicates(cluster: Cluster) -> None:
    burst = [f"burst-{n:02d}" for n in range(12)]
    restarted, counts = await _kill_mid_burst(cluster, burst)
    lost = [m for m, n in counts.items() if n == 0]
    twice = {m: n for m, n in counts.items() if n > 1}
    assert not lost, f"cards lost: {lost}"
    assert not twice, f"cards posted twice: {twice}"
    adopted = await restarted.metric(
        'approvals_reconciliations_total{connector="deploys",outcome="card_adopted"}'
    )
    # The kill cut off the card Slack had just stored and, a lane keeping up to WINDOW card calls in
    # flight, maybe the next one too: each of them was found in the history and adopted.
    assert adopted is not None and 1 <= adopted <= Deliverer.WINDOW, (
        f"the cards posted just before the kill were found in the history and adopted ({adopted})"
    )
    record("crash_mid_sync_cards", len(burst))
    record("crash_mid_sync_lost", len(lost))
    record("crash_mid_sync_duplicates", sum(n - 1 for n in counts.values() if n > 1))


async def test_without_a_history_scope_a_card_cut_off_mid_post_is_posted_again_and_said_once(
    cluster: Cluster,
) -> None:
    """The graceful side of the trade: no history scope, no lookup; nothing is lost, the cards
    interrupted mid-post (one, or as many as a lane had in flight) appear twice, and the log says
    why, once."""
    cluster.slack.scopes -= {"channels:history", "groups:history"}
    burst = [f"burst-{n:02d}" for n in range(8)]
    restarted, counts = await _kill_mid_burst(cluster, burst)
    assert all(n >= 1 for n in counts.values()), f"cards lost: {counts}"
    doubled = sum(n - 1 for n in counts.values())
    assert 1 <= doubled <= Deliverer.WINDOW, f"only the interrupted cards are doubled: {counts}"
    assert restarted.log_text().count("cannot read") == 1, "the missing scope is logged once"


async def test_kill_between_a_dm_card_post_and_its_record_adopts_it(cluster: Cluster) -> None:
    """The same for a card sent as a DM (Greenhouse's, to whoever's turn it is): found in the DM's
    history (im:history, under the DM's id from conversations.open), adopted, not posted twice."""
    greenhouse = await greenhouse_demo()
    try:
        cluster.extra_config = greenhouse_block(greenhouse, poll_interval="1s")
        cluster.extra_env = {"HARVEST_SECRET": str(greenhouse.connector["client_secret"])}
        slack = cluster.slack
        bob_dm = slack.dm_channel("U0BOB")
        killed = asyncio.Event()
        replica = await cluster.start()

        def kill_on_bobs_card(channel: str, ts: str, text: str, blocks: Any, kind: str) -> None:
            if kind == "post" and channel == bob_dm and OFFER in f"{text}{blocks}" and not killed.is_set():
                replica.kill()
                killed.set()

        slack.on_post = kill_on_bobs_card
        await asyncio.wait_for(killed.wait(), 60)
        await replica.process.wait()
        slack.on_post = None
        assert len(_offers_to_bob(slack)) == 1, "Slack stored the card before the kill"

        restarted = await started(cluster)
        await wait_until(restarted.settled, timeout=60, what="the outbox delivered")
        await asyncio.sleep(2)
        assert len(_offers_to_bob(slack)) == 1, "the card in Bob's DM was not posted twice"
        adopted = await restarted.metric(
            'approvals_reconciliations_total{connector="hiring",outcome="card_adopted"}'
        )
        # Every card the kill cut off mid-post (the pass had several in flight) was adopted.
        assert adopted is not None and adopted >= 1, "found in the DM's history and adopted"
        assert any(c.args.get("channel") == bob_dm for c in slack.calls_to("conversations.history"))
        tags = Counter(
            (m.channel, json.dumps(m.metadata.get("event_payload"), sort_keys=True))
            for m in slack.messages.values()
            if m.metadata and m.metadata.get("event_type") == "approval_card"
        )
        twice = {tag: n for tag, n in tags.items() if n > 1}
        assert not twice, f"cards posted twice: {twice}"
        record("crash_mid_dm_post_adopted", adopted)
        record("crash_mid_dm_post_duplicates", sum(n - 1 for n in tags.values()))
    finally:
        await cluster.stop_all()
        await greenhouse.stop()


OFFER = "Offer to Jordan Rivera"


def _offers_to_bob(slack: SlackSandbox) -> list[Any]:
    return [
        m for m in slack.messages_in(slack.dm_channel("U0BOB")) if OFFER in m.render() and not m.thread_ts
    ]


async def test_a_post_that_failed_before_it_happened_is_made_once(cluster: Cluster) -> None:
    slack, fd = cluster.slack, cluster.fd
    replica = await started(cluster)
    for marker in ("CAB approval", "Payments API", "Inventory Service"):
        await wait_until(lambda m=marker: card_in_channel(slack, m), timeout=30, what=f"the card {marker}")
    await wait_until(replica.settled, timeout=30, what="the outbox delivered")
    slack.fail("chat.postMessage", "internal_error", times=1)  # answered, not stored: no post happened
    new_task(fd, "after-failure")
    await wait_until(lambda: _in_channel(slack, "after-failure"), timeout=30, what="the card posted")
    await wait_until(replica.settled, timeout=30, what="the outbox delivered")
    assert len(_in_channel(slack, "after-failure")) == 1
    assert slack.calls_to("conversations.history"), "the retry looked in the history before posting"


def _in_trouble(slack: SlackSandbox, fd: FlexDeploySandbox) -> None:
    """The vendor answers slowly and 30 % of its answers fail; Slack rate-limits and fails some
    calls with error codes, and its edge fails 15 % of card calls with real HTTP 500/502/503 (HTML,
    broken JSON, plain text) and resets, half of the 5xx after the call took effect (a post made,
    its answer lost)."""
    fd.slow_seconds = 2
    fd.kit.fail_rate(0.3, seed=17)
    slack.rate_limit("chat.postMessage", times=3)
    slack.rate_limit("chat.update", times=2)
    slack.fail("chat.postMessage", "internal_error", times=2)
    slack.fail("chat.update", "fatal_error", times=2)
    slack.fault_rate(
        0.15, methods=["chat.postMessage", "chat.update", "conversations.history"], applied=0.5, seed=5
    )


async def _click_taken_or_answered(
    slack: SlackSandbox, replica: Replica, marker: str, taken: Callable[[str, str], bool]
) -> bool:
    """Alice clicks Approve on the card; True once the vendor took it or she was told something
    (an ephemeral or a DM), within the click's deadline."""
    alice = slack.person("alice").slack_id

    def told() -> int:
        return len(slack.ephemerals_for(alice)) + len(slack.messages_in(slack.dm_channel(alice)))

    card = _in_channel(slack, marker)[0]
    before = told()
    reply = await slack.click(replica.url, user="alice", channel=CHANNEL, ts=card.ts, label="Approve")
    assert reply.status == 200
    try:
        await wait_until(
            lambda: taken(marker, "approve") or told() > before,
            timeout=CLICK_DEADLINE + 30,
            what=f"the click on {marker} answered",
        )
    except AssertionError:
        return False
    return True


def _breaks_and_recoveries(log: str) -> list[str]:
    """The connector's "is failing" and "recovered" lines, in order, as "break" and "recovery"."""
    return [
        "break" if "is failing" in line else "recovery"
        for line in log.splitlines()
        if "connector deploys is failing" in line or "connector deploys recovered" in line
    ]


async def test_under_faults_cards_stay_true_and_every_click_takes_or_is_answered(cluster: Cluster) -> None:
    """30 % of the vendor's answers fail (5xx, 429, slow answers, resets, slow bodies, HTML for
    JSON) and Slack rate-limits and fails some calls (error codes, and 15 % of card calls with
    real HTTP 5xx or resets, half of them after the post took effect), through a burst of new cards and a click on
    each; then a plain outage of the vendor."""
    slack, fd = cluster.slack, cluster.fd
    replica = await started(cluster)
    for marker in ("CAB approval", "Payments API", "Inventory Service"):
        await wait_until(lambda m=marker: card_in_channel(slack, m), timeout=30, what=f"the card {marker}")
    await link(cluster, replica, "alice")
    markers = [f"fault-{n:02d}" for n in range(6)]
    tasks = {marker: str(new_task(fd, marker)) for marker in markers}
    untrue: list[str] = []

    def taken(marker: str, verb: str) -> bool:
        return (tasks[marker], verb, "alice") in fd.decisions

    def watch(channel: str, ts: str, text: str, blocks: Any, kind: str) -> None:
        # Every version of every card, as Slack stored it: a decision shown must be the vendor's.
        if channel != CHANNEL or kind not in ("post", "update"):
            return
        shown = f"{text} {json.dumps(blocks)}"
        for marker in markers:
            if marker in shown and "Approved" in shown and not taken(marker, "approve"):
                untrue.append(f"{marker}: {text}")

    slack.on_post = watch
    _in_trouble(slack, fd)
    for marker in markers:
        await wait_until(lambda m=marker: _in_channel(slack, m), timeout=120, what=f"the card {marker}")

    unanswered = [m for m in markers if not await _click_taken_or_answered(slack, replica, m, taken)]
    assert not unanswered, f"clicks neither taken nor answered: {unanswered}"

    # A plain outage: every vendor read fails for a few polls, then the vendor is back.
    fd.kit.clear()
    fd.kit.fail_rate(1.0, ["503"], method="GET")
    await wait_until(
        lambda: "connector deploys is failing" in replica.log_text(), timeout=60, what="the break"
    )
    await asyncio.sleep(3)
    fd.kit.clear()
    slack.on_post = watch

    def recovered() -> bool:
        log = replica.log_text()
        return log.rfind("connector deploys recovered") > log.rfind("connector deploys is failing")

    await wait_until(recovered, timeout=60, what="the recovery logged")
    for marker in markers:  # every card ends true once the vendor answers again
        await wait_until(
            lambda m=marker: taken(m, "approve") == ("Approved" in _in_channel(slack, m)[0].render()),
            timeout=60,
            what=f"the card {marker} true",
        )
    slack.on_post = None
    assert not untrue, f"cards showed decisions the vendor did not take: {untrue}"
    twice = {m: len(_in_channel(slack, m)) for m in markers if len(_in_channel(slack, m)) != 1}
    assert not twice, f"cards not in the channel exactly once: {twice}"
    edge = [c for c in slack.calls if c.error in ("http_500", "http_502", "http_503", "reset")]
    assert edge, "Slack's edge failed some calls"

    # Once per break, once per recovery: the two alternate, never the same line twice in a row.
    lines = _breaks_and_recoveries(replica.log_text())
    assert lines and lines[0] == "break", lines
    assert all(a != b for a, b in itertools.pairwise(lines)), lines
    assert lines[-1] == "recovery", lines
    assert "Traceback" not in replica.log_text(), "no exception escaped the sync or the click path"
    record("faults_clicks", len(markers))
    record("faults_clicks_taken", sum(taken(m, "approve") for m in markers))
    record("faults_untrue_cards", len(untrue))
    record("faults_slack_edge_failures", len(edge))
