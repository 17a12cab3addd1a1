"""The audit trail: who decided or tried what, when, through which card, and what came of it.

Why its own module with only `append` and reads: the trail is append-only for the bot. Nothing
here (or anywhere in store/) updates or deletes a decision row, so a person who can drive the bot
cannot rewrite what it recorded. Pruning old rows is an operator's job in the database itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlmodel import col, select

from store.db import Database
from store.models import DecisionRow, ItemRow
from store.outbox import now_utc

# Reasons the bot itself refuses a click before any vendor call (DecisionRow.reason).
UNKNOWN_CONNECTOR = "unknown_connector"
UNKNOWN_ITEM = "unknown_item"
ALREADY_HANDLED = "already_handled"
NOT_OFFERED = "not_offered"
NOT_LINKED = "not_linked"
NOT_PERMITTED = "not_permitted"
IN_PROGRESS = "in_progress"
COMMENT_MISSING = "comment_missing"


@dataclass(frozen=True)
class AuditRecord:
    """One line of the export (also the column order of the CSV)."""

    at: str
    slack_user: str
    vendor_user: str
    connector: str
    external_id: str
    title: str
    action: str
    outcome: str
    reason: str
    vendor_answer: str
    via: str
    comment: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


FIELDS: tuple[str, ...] = tuple(AuditRecord.__dataclass_fields__)


async def append(db: Database, *, rows: Sequence[DecisionRow]) -> None:
    """Add rows to the trail (its only write)."""
    if not rows:
        return
    async with db.transaction() as s:
        s.add_all(rows)


def refusal(
    *,
    connector: str,
    external_id: str,
    slack_user_id: str,
    action: str,
    reason: str,
    via: str | None,
    item_id: int | None = None,
    vendor_user_id: str | None = None,
) -> DecisionRow:
    """The row for a click the bot refused itself: nothing reached the vendor."""
    return DecisionRow(
        item_id=item_id,
        connector=connector[:64],
        external_id=external_id[:255],
        slack_user_id=slack_user_id[:32],
        vendor_user_id=vendor_user_id,
        action=action[:16],
        outcome="refused",
        reason=reason[:64],
        via=via[:64] if via else None,
        at=now_utc(),
    )


async def records(
    db: Database, *, since: datetime | None = None, connector: str | None = None, batch: int = 1000
) -> AsyncIterator[AuditRecord]:
    """The trail oldest first, read in batches so a long history is not held in memory at once."""
    last = 0
    while True:
        stmt = (
            select(DecisionRow, ItemRow.data)
            .join(ItemRow, col(ItemRow.id) == col(DecisionRow.item_id), isouter=True)
            .where(col(DecisionRow.id) > last)
        )
        if since is not None:
            stmt = stmt.where(col(DecisionRow.at) >= since)
        if connector is not None:
            stmt = stmt.where(col(DecisionRow.connector) == connector)
        async with db.session() as s:
            rows = (await s.exec(stmt.order_by(col(DecisionRow.id)).limit(batch))).all()
        if not rows:
            return
        for row, data in rows:
            yield _record(row, data)
        last = int(rows[-1][0].id or 0)


def _record(row: DecisionRow, data: str | None) -> AuditRecord:
    title = ""
    if data:
        try:
            title = str(json.loads(data).get("title") or "")
        except (ValueError, AttributeError):
            title = ""
    return AuditRecord(
        at=row.at.isoformat(),
        slack_user=row.slack_user_id,
        vendor_user=row.vendor_user_id or "",
        connector=row.connector,
        external_id=row.external_id,
        title=title,
        action=row.action,
        outcome=row.outcome,
        reason=row.reason or "",
        vendor_answer=row.vendor_answer or "",
        via=row.via or "",
        comment=row.comment or "",
    )


async def decisions(
    db: Database, *, item_id: int | None = None, after_id: int | None = None, ok_only: bool = False
) -> list[DecisionRow]:
    async with db.session() as s:
        stmt = select(DecisionRow)
        if item_id is not None:
            stmt = stmt.where(DecisionRow.item_id == item_id)
        if after_id is not None:
            stmt = stmt.where(col(DecisionRow.id) > after_id)
        if ok_only:
            stmt = stmt.where(DecisionRow.outcome == "ok")
        return list((await s.exec(stmt.order_by(col(DecisionRow.id)))).all())


def decision_row(
    *,
    item_id: int | None,
    connector: str,
    external_id: str,
    slack_user_id: str,
    vendor_user_id: str | None,
    action: str,
    comment: str | None,
    outcome: str,
    vendor_answer: str | None,
) -> DecisionRow:
    """One audit line: who tried what on which item, and what the vendor answered."""
    return DecisionRow(
        item_id=item_id,
        connector=connector,
        external_id=external_id,
        slack_user_id=slack_user_id,
        vendor_user_id=vendor_user_id,
        action=action,
        comment=comment,
        outcome=outcome,
        vendor_answer=(vendor_answer or "")[:1000] or None,
        at=now_utc(),
    )
