"""Identities: Slack users linked to a connector's vendor account. Credentials are only ever
stored sealed (store/crypto.py); nothing outside this module opens them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import LinkedUser
from store.crypto import CredentialBox, SecretKeyError
from store.db import Database
from store.models import IdentityRow
from store.outbox import now_utc


@dataclass(frozen=True)
class Identity:
    slack_user_id: str
    connector: str
    vendor_user_id: str
    display_name: str
    email: str | None
    credentials: Mapping[str, str] = field(repr=False)  # decrypted: never in a repr or a log line
    broken: bool = False


async def link(
    db: Database,
    *,
    box: CredentialBox,
    slack_user_id: str,
    connector: str,
    vendor_user_id: str,
    display_name: str,
    email: str | None,
    credentials: Mapping[str, str] | None,
) -> None:
    sealed = box.seal(credentials) if credentials else None
    async with db.transaction() as s:
        await s.exec(
            sa.delete(IdentityRow).where(
                col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector
            )
        )
        s.add(
            IdentityRow(
                slack_user_id=slack_user_id,
                connector=connector,
                vendor_user_id=vendor_user_id,
                display_name=display_name,
                email=email,
                credentials_enc=sealed,
                linked_at=now_utc(),
            )
        )


async def unlink(db: Database, *, slack_user_id: str, connector: str) -> bool:
    async with db.transaction() as s:
        result = await s.exec(
            sa.delete(IdentityRow).where(
                col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector
            )
        )
        return bool(result.rowcount)


async def mark_broken(db: Database, *, slack_user_id: str, connector: str) -> None:
    async with db.transaction() as s:
        await s.exec(
            sa.update(IdentityRow)
            .where(col(IdentityRow.slack_user_id) == slack_user_id, col(IdentityRow.connector) == connector)
            .values(broken_at=now_utc())
        )


async def identity(
    db: Database, *, box: CredentialBox, slack_user_id: str, connector: str
) -> Identity | None:
    async with db.session() as s:
        row = (
            await s.exec(
                select(IdentityRow).where(
                    IdentityRow.slack_user_id == slack_user_id, IdentityRow.connector == connector
                )
            )
        ).first()
    return _identity(box, row) if row else None


async def identities(
    db: Database, *, box: CredentialBox, connector: str | None = None, slack_user_id: str | None = None
) -> list[Identity]:
    async with db.session() as s:
        stmt = select(IdentityRow)
        if connector is not None:
            stmt = stmt.where(IdentityRow.connector == connector)
        if slack_user_id is not None:
            stmt = stmt.where(IdentityRow.slack_user_id == slack_user_id)
        rows = (await s.exec(stmt.order_by(col(IdentityRow.id)))).all()
    return [_identity(box, r) for r in rows]


async def pairs_in(session: AsyncSession, *, connector: str) -> list[tuple[str, str, bool]]:
    """(Slack user, vendor user id, broken) of everyone linked to `connector`, read in the caller's
    session: what a card's audience needs, with no credential decrypted and no second pooled
    connection held while the caller's transaction holds one (a sync of each of 50 connectors at
    once, each waiting for a second connection, emptied the pool)."""
    rows = await session.exec(
        select(IdentityRow.slack_user_id, IdentityRow.vendor_user_id, IdentityRow.broken_at)
        .where(IdentityRow.connector == connector)
        .order_by(col(IdentityRow.id))
    )
    return [(slack, vendor, broken is not None) for slack, vendor, broken in rows.all()]


async def linked_users(db: Database, *, box: CredentialBox, connector: str) -> list[LinkedUser]:
    return [
        LinkedUser(i.slack_user_id, i.vendor_user_id, i.email, i.credentials)
        for i in await identities(db, box=box, connector=connector)
        if not i.broken
    ]


def _identity(box: CredentialBox, row: IdentityRow) -> Identity:
    credentials: Mapping[str, str] = {}
    broken = row.broken_at is not None
    if row.credentials_enc:
        try:
            credentials = box.open(row.credentials_enc)
        except SecretKeyError:
            broken = True
    return Identity(
        row.slack_user_id,
        row.connector,
        row.vendor_user_id,
        row.display_name,
        row.email,
        credentials,
        broken,
    )
