"""The async engine, sessions, and schema migrations applied at start.

Why migrations run on start: the admin runs one command; a new release must bring its schema
with it. Alembic runs over the same async engine (its "connection sharing" recipe), so SQLite and
PostgreSQL follow one path. Several replicas starting together on PostgreSQL take turns on an
advisory lock held on a connection of its own: the first migrates, the others find the schema
current and start.

Why sessions know about fencing: leader-only jobs mark their context with the lease they hold
(store/leases.py); every transaction begun in that context first checks the lease is still theirs,
so a leader that lost its lease cannot write, whichever store function it calls.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session as SQLModelSession
from sqlmodel.ext.asyncio.session import AsyncSession

from store.leases import current_fence, verify_fence

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x41505053  # "APPS": one migrating replica at a time
APPLICATION_NAME = "approvals-bot"


class _Session(SQLModelSession):
    """The sync session under every AsyncSession of ours (it carries the fencing hook)."""


@sa.event.listens_for(_Session, "after_begin")
def _check_fence(_session: SQLModelSession, _transaction: Any, connection: sa.Connection) -> None:
    fence = current_fence()
    if fence is not None:
        verify_fence(connection, name=fence.name, holder=fence.holder, fence=fence.fence)


# A transaction left open by a frozen or wedged process would hold its row locks (the lease row
# among them, see store/leases.py) for as long as it stays frozen; the server ends it instead.
IDLE_IN_TRANSACTION = "30s"


def make_engine(url: str, *, dedicated: bool = False, settings: dict[str, str] | None = None) -> AsyncEngine:
    """The pooled engine, or (`dedicated`) one whose connections belong to a single user (no pool).

    `settings`: PostgreSQL session settings for its connections (timeouts of the elector)."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql+asyncpg"):
        server = {
            "application_name": APPLICATION_NAME,
            "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION,
            **(settings or {}),
        }
        kwargs["connect_args"] = {"server_settings": server}
    if dedicated:
        kwargs = {**kwargs, "poolclass": NullPool}
        kwargs.pop("pool_pre_ping")
    if url.startswith("sqlite"):
        # A writer waits for the lock instead of failing at once; WAL lets readers go on meanwhile.
        kwargs = {"connect_args": {"timeout": 30}, **({"poolclass": NullPool} if dedicated else {})}
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: sa.Connection) -> tuple[str | None, str | None]:
    before = MigrationContext.configure(connection).get_current_revision()
    cfg = _alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    return before, MigrationContext.configure(connection).get_current_revision()


def _report(before: str | None, after: str | None) -> None:
    if before != after:
        log.info("schema migrated from %s to %s", before or "empty", after)
    else:
        log.info("schema already current (%s)", after)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    if engine.dialect.name == "postgresql":
        await _migrate_locked(engine.url.render_as_string(hide_password=False))
        return
    async with engine.begin() as connection:
        _report(*await connection.run_sync(_upgrade))


async def _migrate_locked(url: str) -> None:
    """One replica at a time: the lock is per session, so it gets a connection no pool will reuse."""
    engine = make_engine(url, dedicated=True)
    try:
        async with engine.connect() as connection:
            await _advisory(connection, "pg_advisory_lock")
            try:
                async with connection.begin():
                    _report(*await connection.run_sync(_upgrade))
            finally:
                await _advisory(connection, "pg_advisory_unlock")
    finally:
        await engine.dispose()


async def _advisory(connection: AsyncConnection, function: str) -> None:
    async with connection.begin():  # committed at once: never left idle in a transaction
        await connection.execute(sa.text(f"SELECT {function}(:key)"), {"key": MIGRATION_LOCK})


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=_Session, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    async def migrate(self) -> None:
        await migrate(self.engine)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
            return True
        except Exception:  # any driver error means "unreachable" for /healthz
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
