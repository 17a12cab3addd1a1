"""Leadership as a lease: one leader, takeover when it lapses, stale leaders' writes refused.

These drive two electors (as two replicas would) against one real database; the real-process
proofs live in tests/reliability/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.base import ApprovalItem
from store import items as stored_items
from store.crypto import CredentialBox
from store.db import Database
from store.leader import Elector
from store.leases import LostLeadership, fenced
from store.repo import Store, now_utc
from tests.conftest import DB_PARAMS, PG_URL, make_database

pytestmark = pytest.mark.parametrize("kind", DB_PARAMS)

LEASE = 1.0


class FrozenClock:
    """A monotonic clock that stands still: the replica believes no time passed (it was frozen)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = await make_database(kind, tmp_path)
    try:
        yield database
    finally:
        await database.dispose()


async def _record(db: Database, secret_key: str, name: str) -> None:
    store = Store(db, CredentialBox(secret_key))
    async with db.transaction() as session:
        await store.record_sync(session, name=name, ok=True, error=None, pending=1)


async def _recorded(db: Database, secret_key: str) -> set[str]:
    return set(await Store(db, CredentialBox(secret_key)).connector_states())


async def test_one_leader_then_a_takeover_with_a_higher_fence(kind: str, db: Database) -> None:
    first, second = Elector(db.url, lease=LEASE), Elector(db.url, lease=LEASE)
    try:
        assert await first.step()
        assert not await second.step(), "only one replica leads"
        assert await first.step(), "the leader renews"
        assert second.status().holder == first.holder, "the follower knows who leads"
        old = first.fence
        assert old is not None
        await first.stop()  # a clean stop gives the lease up: no waiting for it to expire
        assert await second.step(), "another replica takes over"
        assert second.fence is not None and second.fence.fence > old.fence
    finally:
        await first.stop()
        await second.stop()


async def test_a_dead_leader_is_replaced_once_its_lease_expires(kind: str, db: Database) -> None:
    dead, other = Elector(db.url, lease=LEASE), Elector(db.url, lease=LEASE)
    try:
        assert await dead.step()
        assert not await other.step()
        await asyncio.sleep(LEASE * 1.2)  # the leader never renews again (it died)
        assert await other.step(), "the lease expired, so the other replica leads"
    finally:
        await dead.stop()
        await other.stop()


async def test_a_frozen_leader_steps_down_on_waking(kind: str, db: Database) -> None:
    clock = FrozenClock()
    leader = Elector(db.url, lease=LEASE, clock=clock)
    try:
        assert await leader.step()
        assert leader.is_leader
        clock.now += LEASE * 2  # it slept through its lease (SIGSTOP, a long pause)
        assert not leader.is_leader, "before any leader work, it finds it can no longer be sure"
        with pytest.raises(LostLeadership), leader.fenced():
            pass
    finally:
        await leader.stop()


async def test_a_stale_leader_cannot_write(kind: str, db: Database, secret_key: str) -> None:
    """Even a leader that believes it still leads (its clock stood still) has its writes refused."""
    clock = FrozenClock()
    stale, fresh = Elector(db.url, lease=LEASE, clock=clock), Elector(db.url, lease=LEASE)
    try:
        assert await stale.step()
        old = stale.fence
        assert old is not None
        with stale.fenced():
            await _record(db, secret_key, "while-leading")
        await asyncio.sleep(LEASE * 1.2)
        assert await fresh.step()
        assert stale.is_leader, "its own clock says it still leads"
        with pytest.raises(LostLeadership), fenced(old):
            await _record(db, secret_key, "stale")
        assert fresh.fence is not None
        with fresh.fenced():
            await _record(db, secret_key, "new-leader")
        assert await _recorded(db, secret_key) == {"while-leading", "new-leader"}
        assert not await stale.step(), "on its next round trip it learns it lost"
        assert not stale.is_leader
    finally:
        await stale.stop()
        await fresh.stop()


async def test_a_restarted_replica_retakes_its_lapsed_lease_under_a_new_fence(
    kind: str, db: Database, secret_key: str
) -> None:
    first = Elector(db.url, lease=LEASE, holder="replica-a")
    again = Elector(db.url, lease=LEASE, holder="replica-a")
    try:
        assert await first.step()
        old = first.fence
        await asyncio.sleep(LEASE * 1.2)
        assert await again.step()
        assert again.fence is not None and old is not None and again.fence.fence == old.fence + 1
        with pytest.raises(LostLeadership), fenced(old):
            await _record(db, secret_key, "under-the-old-fence")
        assert await _recorded(db, secret_key) == set()
    finally:
        await first.stop()
        await again.stop()


async def test_the_elector_leaves_no_transaction_open(kind: str, db: Database) -> None:
    if kind != "postgres":
        pytest.skip("pg_stat_activity is PostgreSQL's")
    electors = [Elector(PG_URL, lease=LEASE) for _ in range(3)]
    try:
        for _ in range(3):
            for elector in electors:
                await elector.step()
        async with db.engine.connect() as connection:
            rows = (
                await connection.execute(
                    sa.text(
                        "SELECT state, count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "GROUP BY state"
                    )
                )
            ).all()
        states = {str(state): int(count) for state, count in rows}
        assert states.get("idle in transaction", 0) == 0, states
        assert states.get("idle", 0) >= 3, "each elector keeps its own connection"
        assert sum(1 for e in electors if e.is_leader) == 1
    finally:
        for elector in electors:
            await elector.stop()


async def test_a_takeover_waits_for_the_write_under_way_and_renewals_do_not(
    kind: str, db: Database, secret_key: str
) -> None:
    if kind != "postgres":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises every writer anyway")
    leader, other = Elector(db.url, lease=LEASE, clock=FrozenClock()), Elector(db.url, lease=LEASE)
    store = Store(db, CredentialBox(secret_key))
    try:
        assert await leader.step()
        with leader.fenced():
            async with db.transaction() as session:
                await store.record_sync(session, name="under-way", ok=True, error=None, pending=1)
                await session.flush()
                assert await leader.step(), "the leader renews while its own write is under way"
                await asyncio.sleep(LEASE * 1.2)  # then its lease runs out, the write still open
                assert not await other.step(), "no takeover while the old leader's write is under way"
        assert await other.step(), "once it committed, the other replica takes over"
        assert await _recorded(db, secret_key) == {"under-way"}
        with pytest.raises(LostLeadership), leader.fenced():
            await _record(db, secret_key, "too-late")
        assert await _recorded(db, secret_key) == {"under-way"}
    finally:
        await leader.stop()
        await other.stop()


async def _claimed_by(db: Database, secret_key: str, external_id: str, process: str | None) -> int:
    """A pending item claimed by a click of `process`, its deadline far off."""
    store = Store(db, CredentialBox(secret_key))
    item = ApprovalItem(connector="deploys", external_id=external_id, kind="Release gate", title=external_id)
    async with db.transaction() as session:
        item_id = await store.save_item(session, item=item, now=now_utc())
    assert item_id is not None
    intent = stored_items.Intent(slack_user="U0ALICE", action="approve", process=process)
    assert await stored_items.claim(
        db, item_id=item_id, slack_user="U0ALICE", action="approve", intent=intent
    )
    return item_id


async def test_a_click_is_reconciled_at_once_when_its_process_heartbeat_lapses(
    kind: str, db: Database, secret_key: str
) -> None:
    """Before its deadline: never while its process beats; at once after that process's heartbeat
    lapsed. A claim that names no process waits for its deadline."""
    alive, dead = Elector(db.url, lease=LEASE), Elector(db.url, lease=LEASE)
    try:
        await alive.step()
        await dead.step()
        assert alive.instance == alive.holder and dead.instance == dead.holder
        working = await _claimed_by(db, secret_key, "working", alive.instance)
        orphan = await _claimed_by(db, secret_key, "orphan", dead.instance)
        unnamed = await _claimed_by(db, secret_key, "unnamed", None)
        assert await stored_items.overdue_claims(db) == [], "both processes beat: nothing to settle"
        for _ in range(3):  # `dead` never beats again (killed); `alive` keeps renewing
            await asyncio.sleep(LEASE * 0.45)
            await alive.step()
        overdue = {s.id for s in await stored_items.overdue_claims(db)}
        assert overdue == {orphan}, (overdue, working, unnamed)
        assert dead.instance is None, "the dead process's own view lapsed before its row did"
    finally:
        await alive.stop()
        await dead.stop()
