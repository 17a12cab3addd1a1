"""One leader among replicas for the background work (polling, outbox delivery, reminders).

Why: Slack requests may hit any replica and are safe there (claims are atomic in the store), but
two replicas delivering the same outbox row would post a card twice. On PostgreSQL the leader
holds a session-level advisory lock on a dedicated connection (locks leak through pooled
connections, so never take it on one); if that connection dies, the lock is released by the
server and another replica takes over at its next check. SQLite means one process: always leader.
"""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from store.db import Database

log = logging.getLogger(__name__)

LOCK_KEY = 0x41505052  # "APPR"


class Leadership:
    def __init__(self, db: Database, *, key: int = LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: AsyncConnection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held or self.db.dialect != "postgresql"

    async def check(self) -> bool:
        """Try to become (or confirm still being) the leader; cheap enough to call before each job."""
        if self.db.dialect != "postgresql":
            return True
        try:
            if self._connection is None:
                self._connection = await self.db.engine.connect()
            if self._held:
                await self._connection.execute(sa.text("SELECT 1"))
            else:
                result = await self._connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
                )
                self._held = bool(result.scalar())
                await self._connection.commit()
                if self._held:
                    log.info("this replica now runs the background work (leader)")
        except Exception as exc:  # the connection died: the server released the lock with it
            if self._held:
                log.warning("lost the leader lock (%s); another replica will take over", type(exc).__name__)
            self._held = False
            await self._drop()
        return self._held

    async def release(self) -> None:
        if self._connection is not None and self._held:
            try:
                await self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                await self._connection.commit()
            except Exception:  # closing the connection releases it anyway
                log.info("advisory unlock failed; closing the connection releases the lock")
        self._held = False
        await self._drop()

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken
                await self._connection.close()
            self._connection = None
