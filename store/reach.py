"""Who the bot can reach in Slack: email lookups (shared by replicas, with their age) and the
opt-outs of people who disconnected an email-mapped connector.

Why in the database: every replica would otherwise ask Slack the same users.lookupByEmail (Tier 3),
and a restart would forget what it learned. A stored answer carries when it was checked, so a "not
in Slack" is asked again after an hour, not kept forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database
from store.models import CardRow, ItemRow, UTCDateTime
from store.outbox import insert


class SlackLookupRow(SQLModel, table=True):
    """users.lookupByEmail's last answer for one address (`slack_user_id` None: not in Slack)."""

    __tablename__ = "slack_lookups"

    email: str = Field(primary_key=True, max_length=320)
    slack_user_id: str | None = Field(default=None, max_length=32, index=True)
    checked_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class OptOutRow(SQLModel, table=True):
    """A person who disconnected an email-mapped connector: not mapped again until they connect."""

    __tablename__ = "reach_optouts"

    slack_user_id: str = Field(primary_key=True, max_length=32)
    connector: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class Lookup(NamedTuple):
    slack_user_id: str | None
    checked_at: datetime


async def lookups_in(session: AsyncSession, *, emails: Iterable[str]) -> dict[str, Lookup]:
    """The stored answers for these (lowercase) addresses, inside the caller's transaction."""
    wanted = sorted({e for e in emails if e})
    found: dict[str, Lookup] = {}
    for start in range(0, len(wanted), 500):
        rows = await session.exec(
            select(SlackLookupRow).where(col(SlackLookupRow.email).in_(wanted[start : start + 500]))
        )
        for row in rows.all():
            found[row.email] = Lookup(row.slack_user_id, row.checked_at)
    return found


async def lookups(db: Database, *, emails: Iterable[str]) -> dict[str, Lookup]:
    async with db.session() as s:
        return await lookups_in(s, emails=emails)


async def record(db: Database, *, answers: Mapping[str, str | None], now: datetime) -> None:
    """Store Slack's answers stamped `now`: an upsert, so replicas recording the same address at once
    both succeed (the later answer wins)."""
    if not answers:
        return
    table = SlackLookupRow.__table__  # type: ignore[attr-defined]
    rows = [{"email": e, "slack_user_id": u, "checked_at": now} for e, u in answers.items()]
    async with db.transaction() as s:
        for start in range(0, len(rows), 500):
            stmt = insert(s, table).values(rows[start : start + 500])
            stmt = stmt.on_conflict_do_update(
                index_elements=["email"],
                set_={"slack_user_id": stmt.excluded.slack_user_id, "checked_at": stmt.excluded.checked_at},
            )
            await s.exec(stmt)


async def opt_out(db: Database, *, slack_user_id: str, connector: str, now: datetime) -> None:
    table = OptOutRow.__table__  # type: ignore[attr-defined]
    async with db.transaction() as s:
        stmt = insert(s, table).values(slack_user_id=slack_user_id, connector=connector, at=now)
        await s.exec(stmt.on_conflict_do_nothing(index_elements=["slack_user_id", "connector"]))


async def due(
    db: Database, *, found_before: datetime, missing_before: datetime, limit: int
) -> list[tuple[str, str | None]]:
    """Addresses whose answer is older than its time to live, oldest first: (email, slack user)."""
    async with db.session() as s:
        rows = await s.exec(
            select(SlackLookupRow.email, SlackLookupRow.slack_user_id)
            .where(
                sa.or_(
                    sa.and_(
                        col(SlackLookupRow.slack_user_id).is_not(None),
                        col(SlackLookupRow.checked_at) < found_before,
                    ),
                    sa.and_(
                        col(SlackLookupRow.slack_user_id).is_(None),
                        col(SlackLookupRow.checked_at) < missing_before,
                    ),
                )
            )
            .order_by(col(SlackLookupRow.checked_at))
            .limit(limit)
        )
        return [(e, u) for e, u in rows.all()]


async def emails_of(db: Database, *, slack_user_ids: Sequence[str]) -> dict[str, set[str]]:
    """The addresses known to belong to each of these Slack users."""
    found: dict[str, set[str]] = {u: set() for u in slack_user_ids}
    if not found:
        return found
    async with db.session() as s:
        rows = await s.exec(
            select(SlackLookupRow.email, SlackLookupRow.slack_user_id).where(
                col(SlackLookupRow.slack_user_id).in_(list(found))
            )
        )
        for email, user in rows.all():
            if user is not None:
                found[user].add(email)
    return found


async def opt_in(db: Database, *, slack_user_id: str, connector: str) -> None:
    async with db.transaction() as s:
        await s.exec(
            sa.delete(OptOutRow).where(
                col(OptOutRow.slack_user_id) == slack_user_id, col(OptOutRow.connector) == connector
            )
        )


async def opted_out(db: Database, *, slack_user_id: str) -> set[str]:
    """The connectors this person disconnected and did not connect again."""
    async with db.session() as s:
        rows = await s.exec(select(OptOutRow.connector).where(OptOutRow.slack_user_id == slack_user_id))
        return set(rows.all())


async def dm_cards(db: Database, *, slack_user_id: str, connector: str) -> list[tuple[int, str]]:
    """(item id, target) of this person's own copies of the connector's pending items."""
    async with db.session() as s:
        rows = await s.exec(
            select(CardRow.item_id, CardRow.target)
            .join(ItemRow, col(ItemRow.id) == col(CardRow.item_id))
            .where(
                col(ItemRow.connector) == connector,
                col(ItemRow.status) == "pending",
                sa.or_(
                    col(CardRow.slack_user) == slack_user_id, col(CardRow.target) == f"user:{slack_user_id}"
                ),
            )
        )
        return [(i, t) for i, t in rows.all()]
