"""The append-only audit of decisions attempted from Slack."""

from __future__ import annotations

from sqlmodel import col, select

from store.db import Database
from store.models import DecisionRow
from store.outbox import now_utc


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
