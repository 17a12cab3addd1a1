"""One sync loop per connector (Home Assistant's DataUpdateCoordinator is the model).

Fetch, diff against the store (pure, bot/sync.py), write snapshots and the Slack work they cause
(pure, bot/outbox/effects.py) in one transaction, then let the outbox deliver. Items that left the pending list are re-read once
to learn how they ended. A connector that starts failing is logged once, and once when it recovers,
not every minute in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from bot import metrics
from bot.outbox import effects
from bot.outbox.queue import Outbox, addresses
from bot.reach import Reach
from bot.reconcile import Reconciler
from bot.sync import SyncPlan, diff
from bot.wording import explain_failure
from connectors.base import ApprovalItem, Connector, Status
from connectors.errors import ConnectorError, NotFound, VendorUnavailable
from store.outbox import Session
from store.repo import Store, StoredItem, now_utc

log = logging.getLogger(__name__)

# How long a sync spends asking Slack who its new approvers are (Tier 3 paces users.lookupByEmail at
# about 50 a minute): what is left goes out as "email:" targets that delivery resolves at Slack's pace.
LOOKUP_BUDGET = 10.0
LOOKUP_PATIENCE = 2.0


@dataclass
class SyncResult:
    ok: bool
    plan: SyncPlan | None = None
    error: str | None = None
    pending: int = 0


class Coordinator:
    def __init__(
        self, *, connector: Connector, store: Store, outbox: Outbox, reach: Reach | None = None
    ) -> None:
        self.connector = connector
        self.store = store
        self.outbox = outbox
        # Finds the approvers each item names in Slack by email, before the effects are computed.
        self.reach = reach
        self.lookup_budget = LOOKUP_BUDGET
        self.failing = False
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.connector.name

    async def idle(self) -> None:
        """Wait for a cycle in progress to finish (used at shutdown, so no write is cut in half)."""
        async with self._lock:
            return

    async def run_once(self) -> SyncResult:
        """One cycle; never raises for vendor trouble (it is recorded and logged instead)."""
        if self._lock.locked():
            return SyncResult(ok=True, error="a sync of this connector is already running")
        async with self._lock:
            started = time.perf_counter()
            try:
                result = await self._cycle()
            finally:
                metrics.SYNC_SECONDS.labels(connector=self.name).observe(time.perf_counter() - started)
            metrics.SYNC_RUNS.labels(connector=self.name, outcome="ok" if result.ok else "error").inc()
            return result

    async def _cycle(self) -> SyncResult:
        await self._release_stale_claims()
        linked = await self.store.linked_users(connector=self.name)
        fetch_started = now_utc()
        try:
            fetched = await self.connector.fetch_pending(linked)
        except ConnectorError as exc:
            return await self._failed(exc)
        except Exception as exc:  # a bug or an answer no client classified: still a failed sync
            if not self.failing:  # the trace once, like the warning _failed gives
                log.exception("connector %s: listing raised %s", self.name, type(exc).__name__)
            return await self._failed(VendorUnavailable(f"unexpected {type(exc).__name__} while listing"))
        stored = await self.store.versions(connector=self.name)
        plan = diff(stored, [i for i in fetched if i.connector == self.name])
        del fetched, stored  # at 100k items, both are large; only the plan's few are needed now
        finals = await self._ended(plan)
        found_again = await self._look_up(plan)
        pending = (
            plan.unchanged + len(plan.new) + sum(1 for _, i in plan.changed if i.status is Status.PENDING)
        )
        await self._write(plan, finals, found_again, pending=pending, fetch_started=fetch_started)
        metrics.PENDING.labels(connector=self.name).set(pending)
        if self.failing:
            log.warning("connector %s recovered", self.name)
            self.failing = False
        return SyncResult(ok=True, plan=plan, pending=pending)

    async def _ended(self, plan: SyncPlan) -> list[tuple[int, ApprovalItem]]:
        """Items that left the pending list, each re-read once to learn how it ended (those the
        vendor cannot answer for now are left for the next cycle)."""
        finals: list[tuple[int, ApprovalItem]] = []
        for row_id, external_id in plan.gone:
            final = await self._reread(row_id, external_id)
            if final is not None:
                finals.append((row_id, final))
        return finals

    async def _write(
        self,
        plan: SyncPlan,
        finals: list[tuple[int, ApprovalItem]],
        found_again: list[StoredItem],
        *,
        pending: int,
        fetch_started: datetime,
    ) -> None:
        """The snapshots and the Slack work they cause, in one transaction: a crash leaves both or
        neither, so no card is queued for an item not saved, nor an item saved without its card."""
        now = now_utc()
        async with self.store.db.transaction() as session:
            changes = await self._insert_new(session, plan, now)
            seen = {c.item_id for c in changes}
            # Items naming someone whom Slack now answers differently for (a new hire joined): their
            # cards are made true again, a DM added where there was only the channel.
            changes.extend(
                effects.Change(s.id, s.item, s.item)
                for s in found_again
                if s.id not in seen and s.item.connector == self.name
            )
            await self._others_found_again(session, [s for s in found_again if s.item.connector != self.name])
            changes.extend(await self._save_updates(session, [*plan.changed, *finals], now, fetch_started))
            audience = await self.outbox.audience(
                session,
                connector=self.name,
                item_ids=[c.item_id for c in changes],
                emails=addresses(c.after for c in changes),
            )
            await self.outbox.enqueue(effects.after_sync(changes, audience), session=session)
            await self.store.record_sync(session, name=self.name, ok=True, error=None, pending=pending)

    async def _insert_new(self, session: Session, plan: SyncPlan, now: datetime) -> list[effects.Change]:
        changes: list[effects.Change] = []
        stored_ids = await self.store.insert_items(session, items=plan.new, now=now)
        for item in plan.new:
            new_id = stored_ids.get((item.connector, item.external_id))
            if new_id is not None:  # else stored meanwhile by another writer: the next cycle compares it
                changes.append(effects.Change(new_id, None, item))
        return changes

    async def _save_updates(
        self,
        session: Session,
        updates: list[tuple[int, ApprovalItem]],
        now: datetime,
        fetch_started: datetime,
    ) -> list[effects.Change]:
        """Changed and ended items, each saved unless a newer write (a click) got there first."""
        changes: list[effects.Change] = []
        before = {r.id: r for r in await self.store.item_rows(session, item_ids=[i for i, _ in updates])}
        for row_id, item in updates:
            saved = await self.store.save_item(
                session,
                item=item,
                now=now,
                existing_id=row_id,
                closed=item.status.final,
                if_older_than=fetch_started,
            )
            if saved is not None and (old := before.get(row_id)) is not None:
                changes.append(effects.Change(row_id, ApprovalItem.from_json(old.data), item))
        return changes

    async def _look_up(self, plan: SyncPlan) -> list[StoredItem]:
        """Ask Slack about the addresses of new and changed items not known yet (each once, kept a
        day), and again about those past their time to live; an unchanged sync asks nothing. Returns
        the open items naming an address whose answer changed."""
        if self.reach is None:
            return []
        await self.reach.resolve(
            addresses([*plan.new, *(i for _, i in plan.changed if not i.status.final)]),
            patience=LOOKUP_PATIENCE,
            budget=self.lookup_budget,
        )
        changed = await self.reach.refresh_due(patience=LOOKUP_PATIENCE)
        if not changed:
            return []
        return [s for s in await self.store.pending_items() if changed & addresses([s.item])]

    async def _others_found_again(self, session: Session, found: list[StoredItem]) -> None:
        """The refresh is shared by every connector: other connectors' items it concerns get their
        cards made true here, with their own audience."""
        by_connector: dict[str, list[StoredItem]] = {}
        for stored in found:
            by_connector.setdefault(stored.item.connector, []).append(stored)
        for name, stored_items in by_connector.items():
            audience = await self.outbox.audience(
                session,
                connector=name,
                item_ids=[s.id for s in stored_items],
                emails=addresses(s.item for s in stored_items),
            )
            jobs = [
                job
                for s in stored_items
                for job in effects.card_jobs(effects.Change(s.id, s.item, s.item), audience)
            ]
            await self.outbox.enqueue(jobs, session=session)

    async def _reread(self, row_id: int, external_id: str) -> ApprovalItem | None:
        stored = await self.store.item_by_id(item_id=row_id)
        if stored is None:
            return None
        try:
            final = await self.connector.refresh(stored.item)
            # Decided outside Slack: neither recorded by a click nor claimed by one in flight (a
            # click observes its own decision; reconciliation settles an interrupted one).
            if final.status.final and stored.row.decided_at is None and stored.row.claim_by is None:
                metrics.observe_decision(
                    connector=self.name, first_card=stored.row.first_seen_at, decided=now_utc()
                )
            return final
        except NotFound:
            return stored.item.with_status(
                Status.CANCELLED, decision_note=f"No longer found in {self.connector.vendor_label}"
            )
        except ConnectorError as exc:
            log.info(
                "connector %s: could not re-read %s (%s); will try next cycle", self.name, external_id, exc
            )
            return None

    async def _failed(self, exc: ConnectorError) -> SyncResult:
        message = explain_failure(exc, self.connector.vendor_label)
        if not self.failing:
            log.warning("connector %s is failing: %s", self.name, message)
            self.failing = True
        async with self.store.db.transaction() as session:
            await self.store.record_sync(session, name=self.name, ok=False, error=message, pending=None)
        return SyncResult(ok=False, error=message)

    async def _release_stale_claims(self) -> None:
        """A click whose process died mid-call (or never heard back) leaves a claim past its
        deadline; the vendor's answer tells the truth (bot/reconcile.py)."""
        await Reconciler(connector=self.connector, store=self.store, outbox=self.outbox).run()
