"""Several replicas on one PostgreSQL: one leader runs the background work; when it goes, another takes over."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.db import Database
from store.leader import Leadership
from tests.conftest import PG_URL, make_database


async def test_sqlite_is_always_leader(tmp_path: Path) -> None:
    db = await make_database("sqlite", tmp_path)
    try:
        assert await Leadership(db).check()
    finally:
        await db.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL.startswith("postgresql"), reason="DATABASE_URL does not point at PostgreSQL")
async def test_one_leader_and_a_takeover(tmp_path: Path) -> None:
    first_db = await make_database("postgres", tmp_path)
    second_db = Database(PG_URL)
    first, second = Leadership(first_db, key=4242), Leadership(second_db, key=4242)
    try:
        assert await first.check()
        assert not await second.check(), "only one replica leads"
        assert await first.check(), "the leader stays leader"
        await first.release()
        assert await second.check(), "another replica takes over"
        assert not await first.check()
    finally:
        await first.release()
        await second.release()
        await first_db.dispose()
        await second_db.dispose()
