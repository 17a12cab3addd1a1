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

from bot import metrics
from bot.outbox import effects
from bot.outbox.queue import Outbox
from bot.reconcile import Reconciler
from bot.sync import SyncPlan, diff
from bot.wording import explain_failure
from connectors.base import ApprovalItem, Connector, Status
from connectors.errors import ConnectorError, NotFound, VendorUnavailable
from store.repo import Store, now_utc

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    ok: bool
    plan: SyncPlan | None = None
    error: str | None = None
    pending: int = 0


class Coordinator:
    def __init__(self, *, connector: Connector, store: Store, outbox: Outbox) -> None:
        self.connector = connector
        self.store = store
        self.outbox = outbox
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
        finals: list[tuple[int, ApprovalItem]] = []
        for row_id, external_id in plan.gone:
            final = await self._reread(row_id, external_id)
            if final is not None:
                finals.append((row_id, final))
        now = now_utc()
        pending = (
            plan.unchanged + len(plan.new) + sum(1 for _, i in plan.changed if i.status is Status.PENDING)
        )
        async with self.store.db.transaction() as session:
            changes: list[effects.Change] = []
            stored_ids = await self.store.insert_items(session, items=plan.new, now=now)
            for item in plan.new:
                new_id = stored_ids.get((item.connector, item.external_id))
                if new_id is not None:  # else stored meanwhile by another writer: the next cycle compares it
                    changes.append(effects.Change(new_id, None, item))
            updates = [*plan.changed, *finals]
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
            audience = await self.outbox.audience(
                session, connector=self.name, item_ids=[c.item_id for c in changes]
            )
            await self.outbox.enqueue(effects.after_sync(changes, audience), session=session)
            await self.store.record_sync(session, name=self.name, ok=True, error=None, pending=pending)
        metrics.PENDING.labels(connector=self.name).set(pending)
        if self.failing:
            log.warning("connector %s recovered", self.name)
            self.failing = False
        return SyncResult(ok=True, plan=plan, pending=pending)

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
