"""Shared fixtures: a real database (SQLite always, PostgreSQL when DATABASE_URL points at one)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bot.sandbox.slack_api import SlackSandbox
from connectors.approval_path.sandbox import ApprovalPathSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.greenhouse.sandbox import demo as greenhouse_demo
from connectors.registry import SandboxSetup
from store.crypto import CredentialBox
from store.db import Database
from store.repo import Store
from tests.contract.kits.greenhouse import GreenhouseKit
from tests.harness import Bot, connector_config, start_bot
from tests.running import started, stopping

PG_URL = os.environ.get("DATABASE_URL", "")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The root logger as it was before the test: a test that runs the CLI in-process sets up
    logging as `run` does, and the next test must not inherit its handler or level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def _pg_reason() -> str | None:
    if not PG_URL.startswith("postgresql"):
        return "DATABASE_URL does not point at PostgreSQL (set it to postgresql+asyncpg://… to run this leg)"
    return None


DB_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[pytest.mark.postgres, pytest.mark.skipif(_pg_reason() is not None, reason=_pg_reason() or "")],
    ),
]


async def _reset_postgres(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def make_database(kind: str, tmp_path: Path) -> Database:
    if kind == "postgres":
        await _reset_postgres(PG_URL)
        db = Database(PG_URL)
    else:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'approvals.db'}")
    await db.migrate()
    return db


@pytest.fixture(params=DB_PARAMS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    database = await make_database(request.param, tmp_path)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
async def store(db: Database, secret_key: str) -> Store:
    return Store(db, CredentialBox(secret_key))


@pytest.fixture
async def slack() -> AsyncIterator[SlackSandbox]:
    """The Slack sandbox (Web API + a Slack client that signs requests), on 127.0.0.1."""
    async with started(SlackSandbox()) as sandbox:
        yield sandbox


@pytest.fixture
async def fd() -> AsyncIterator[FlexDeploySandbox]:
    """The FlexDeploy sandbox with its demo tasks, on 127.0.0.1 (a "timeout" fault answers after 1 s)."""
    sandbox = FlexDeploySandbox()
    sandbox.seed_demo()
    async with started(sandbox):
        yield sandbox


@pytest.fixture
async def greenhouse() -> AsyncIterator[SandboxSetup]:
    """The Greenhouse sandbox seeded as for the demo (an offer due for Alice and Bob), on 127.0.0.1."""
    async with stopping(await greenhouse_demo()) as setup:
        yield setup


@pytest.fixture
async def greenhouse_bot(
    db_url: str, secret_key: str, slack: SlackSandbox, greenhouse: SandboxSetup
) -> AsyncIterator[Bot]:
    """The bot with one Greenhouse connector `hiring` (cards in approvers' DMs, a copy in C0APPROVALS)."""
    config = connector_config("hiring", "greenhouse", dict(greenhouse.connector), channel="C0APPROVALS")
    bot = await start_bot(database_url=db_url, secret_key=secret_key, slack=slack, connectors=[config])
    async with stopping(bot):
        yield bot


@pytest.fixture
async def greenhouse_kit() -> AsyncIterator[GreenhouseKit]:
    """A Harvest v3 sandbox with the demo people, for tests that seed their own jobs and flows."""
    async with started(GreenhouseKit()) as kit:
        yield kit


@pytest.fixture
async def approval_path_sandbox() -> AsyncIterator[ApprovalPathSandbox]:
    """An Approval Path (and Jira) sandbox with nothing seeded; "timeout" faults answer after 0.3 s."""
    async with started(ApprovalPathSandbox(slow_seconds=0.3)) as sandbox:
        yield sandbox


@pytest.fixture
def db_url(db: Database) -> str:
    return db.url
