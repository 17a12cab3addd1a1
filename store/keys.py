"""Key rotation for stored vendor credentials (`approvals-bot rotate-key`).

Why a separate pass: APPROVALS_SECRET_KEY lists keys, the first encrypts and all decrypt, so a new
key can go first at once. An old key can be dropped only once nothing stored still needs it: this
re-encrypts every credential under the first key. A credential no key opens is useless to keep
pretending about: its link is marked for reconnect (the person is told on their next click).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import col, select

from store.crypto import CredentialBox, SecretKeyError
from store.db import Database
from store.models import IdentityRow
from store.outbox import now_utc


@dataclass(frozen=True)
class Unreadable:
    """A stored credential none of the configured keys opens."""

    slack_user_id: str
    connector: str


@dataclass
class RotationReport:
    rotated: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)


async def rotate_credentials(*, db: Database, box: CredentialBox, batch: int = 200) -> RotationReport:
    """Re-encrypt every stored credential under the box's first key, a batch per transaction.

    Each row is written only if its ciphertext is still the one read (a person relinking meanwhile
    wins), so the pass is safe to run while the bot runs, and safe to run again."""
    report = RotationReport()
    last = 0
    while True:
        async with db.session() as s:
            rows = (
                await s.exec(
                    select(
                        IdentityRow.id,
                        IdentityRow.slack_user_id,
                        IdentityRow.connector,
                        IdentityRow.credentials_enc,
                    )
                    .where(col(IdentityRow.id) > last, col(IdentityRow.credentials_enc).is_not(None))
                    .order_by(col(IdentityRow.id))
                    .limit(batch)
                )
            ).all()
        if not rows:
            return report
        async with db.transaction() as s:
            for row_id, slack_user_id, connector, sealed in rows:
                assert sealed is not None and row_id is not None
                same = sa.and_(col(IdentityRow.id) == row_id, col(IdentityRow.credentials_enc) == sealed)
                try:
                    fresh = box.rotate(sealed)
                except SecretKeyError:
                    report.unreadable.append(Unreadable(slack_user_id, connector))
                    await s.exec(sa.update(IdentityRow).where(same).values(broken_at=now_utc()))
                    continue
                await s.exec(sa.update(IdentityRow).where(same).values(credentials_enc=fresh))
                report.rotated += 1
        last = int(rows[-1][0] or 0)
