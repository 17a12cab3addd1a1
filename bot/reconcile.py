"""Settling clicks whose own process could not: it died mid-call, or the vendor never answered.

Why re-read instead of re-send: a decision is never retried blindly (DESIGN 2.4). A click's claim
carries its whole intent (store/items.Intent), so once its deadline has passed the leader asks the
vendor what is true now, makes the card say it (naming our clicker when the vendor shows the
decision they asked for), appends the outcome to the audit, and tells the clicker in a DM: their
own answer was lost with the process, or promised ("I will check and tell you").

Run by the leader at the start of every sync cycle of the connector (bot/coordinator.py), so an
interrupted click is settled within one poll of its deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from bot import blocks, metrics
from bot.blocks import ACTION_LABELS
from bot.outbox.jobs import TellJob
from bot.outbox.queue import Outbox
from connectors.base import Action, ApprovalItem, Connector, Status
from connectors.errors import ConnectorError, NotFound
from store import card_posts
from store import items as stored_items
from store.audit import decision_row
from store.repo import Store, StoredItem

log = logging.getLogger(__name__)

EXPECTED = {Action.APPROVE: Status.APPROVED, Action.REJECT: Status.REJECTED, Action.CANCEL: Status.CANCELLED}
# After the deadline, before reconciliation may take the claim: the clicking process's last writes.
GRACE = timedelta(seconds=5)


def click_deadline(connector: Connector) -> timedelta:
    """The whole of one click: the vendor call (one request timeout) and a re-read after any doubt
    (another), plus a little for our own writes. 15 s requests give 35 s, where an interrupted
    click used to wait five minutes for release."""
    return timedelta(seconds=2 * connector.request_timeout + 5)


def act_budget(connector: Connector) -> float:
    """How long the vendor call itself may take before its outcome counts as unknown."""
    return connector.request_timeout + 2


@dataclass(frozen=True)
class Settled:
    """What reconciliation learned about one click (pure: `settle` decides, `Reconciler` writes)."""

    outcome: str  # "ok", "not_taken", "gone"
    decided_by: str | None
    item: ApprovalItem
    words: str


def settle(stored: StoredItem, fresh: ApprovalItem, vendor: str) -> Settled:
    """The truth of one interrupted click, given the vendor's snapshot now."""
    row = stored.row
    action = Action(row.claim_action) if row.claim_action in {a.value for a in Action} else None
    verb = ACTION_LABELS[action].lower() if action else "decision"
    title = blocks.escape(stored.item.title)
    expected = EXPECTED.get(action) if action else None
    if expected is not None and fresh.status is expected:
        return Settled(
            "ok",
            row.claim_by,
            fresh,
            f"Your {verb} of “{title}” went through in {vendor} (I checked after the answer was lost).",
        )
    if fresh.status.final:
        return Settled(
            "not_taken",
            None,
            fresh,
            f"Your {verb} of “{title}” did not go through: {vendor} shows it *{fresh.status.value}* now. "
            "The card shows it.",
        )
    return Settled(
        "not_taken",
        None,
        fresh,
        f"Your {verb} of “{title}” did not go through: {vendor} still shows it pending. "
        "Nothing was changed; you can click again.",
    )


class Reconciler:
    def __init__(self, *, connector: Connector, store: Store, outbox: Outbox) -> None:
        self.connector = connector
        self.store = store
        self.outbox = outbox

    async def run(self) -> int:
        """Settle every overdue claim of this connector; returns how many were settled."""
        done = 0
        await card_posts.forget_recorded(self.store.db)  # intents to post whose card is recorded
        for stored in await stored_items.overdue_claims(self.store.db):
            if stored.item.connector != self.connector.name:
                continue
            done += await self._one(stored)
        return done

    async def _one(self, stored: StoredItem) -> int:
        vendor = self.connector.vendor_label
        try:
            fresh = await self.connector.refresh(stored.item)
        except NotFound:
            fresh = stored.item.with_status(Status.CANCELLED, decision_note=f"No longer in {vendor}")
        except ConnectorError as exc:
            # Still unknown: the claim stays (the card keeps saying "Working…"), next cycle asks again.
            log.info("reconcile %s/%s: vendor not readable (%s)", self.name, stored.item.external_id, exc)
            metrics.RECONCILIATIONS.labels(connector=self.name, outcome="vendor_unreadable").inc()
            return 0
        result = settle(stored, fresh, vendor)
        row = stored.row
        assert row.claim_by is not None and row.claim_at is not None
        audit = decision_row(
            item_id=stored.id,
            connector=self.name,
            external_id=stored.item.external_id,
            slack_user_id=row.claim_by,
            vendor_user_id=row.claim_vendor_user,
            action=row.claim_action or "",
            comment=row.claim_comment,
            outcome=result.outcome,
            vendor_answer=f"reconciled: {vendor} shows {fresh.status.value}",
        )
        audit.reason = "reconciled"
        audit.via = row.claim_via
        entries = await self.outbox.decision_entries(
            item_id=stored.id, before=stored.item, after=result.item, decided=result.decided_by is not None
        )
        told = TellJob(
            slack_user=row.claim_by, text=result.words, about=f"{stored.id}:{row.claim_at.isoformat()}"
        )
        finished = await stored_items.finish_claim(
            self.store.db,
            item_id=stored.id,
            item=result.item,
            decided_by=result.decided_by,
            action=row.claim_action,
            comment=row.claim_comment,
            error=None if result.outcome == "ok" else "the last attempt did not go through",
            audit=[audit],
            entries=[*entries, *self.outbox.entries([told])],
            claimed_at=row.claim_at,
        )
        if not finished:
            return 0  # the clicking process settled it after all
        metrics.RECONCILIATIONS.labels(connector=self.name, outcome=result.outcome).inc()
        log.info(
            "reconciled the interrupted %s of %s on %s/%s: %s",
            row.claim_action,
            row.claim_by,
            self.name,
            stored.item.external_id,
            result.outcome,
        )
        self.outbox.kick(urgent=True)
        return 1

    @property
    def name(self) -> str:
        return self.connector.name
