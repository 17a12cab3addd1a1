"""The store as the bot sees it: one object holding the database and the credential box.

Why a thin facade over store/items.py, identities.py, cards.py, outbox.py, health.py, audit.py:
call sites stay short (`store.item(...)`) while each module keeps to what it stores. New code may
call the modules directly; they take the database (and, for identities, the box) as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ApprovalItem, LinkedUser
from store import audit, cards, health, identities, outbox
from store import items as stored_items
from store.audit import decision_row
from store.crypto import CredentialBox
from store.db import Database
from store.identities import Identity
from store.items import StoredItem
from store.models import CardRow, ConnectorStateRow, DecisionRow, ItemRow, OutboxRow
from store.outbox import Entry, now_utc


class Store:
    def __init__(self, db: Database, box: CredentialBox) -> None:
        self.db = db
        self.box = box

    async def item(self, *, connector: str, external_id: str) -> StoredItem | None:
        return await stored_items.item(self.db, connector=connector, external_id=external_id)

    async def item_by_id(self, *, item_id: int) -> StoredItem | None:
        return await stored_items.item_by_id(self.db, item_id=item_id)

    async def item_rows(self, session: AsyncSession, *, item_ids: Sequence[int]) -> list[ItemRow]:
        return await stored_items.item_rows(session, item_ids=item_ids)

    async def versions(self, *, connector: str) -> dict[str, tuple[str, str, int]]:
        return await stored_items.versions(self.db, connector=connector)

    async def pending_items(self, *, connectors: Iterable[str] | None = None) -> list[StoredItem]:
        return await stored_items.pending_items(self.db, connectors=connectors)

    async def stale_claims(self, *, older_than: timedelta) -> list[StoredItem]:
        return await stored_items.stale_claims(self.db, older_than=older_than)

    async def save_item(
        self,
        session: AsyncSession,
        *,
        item: ApprovalItem,
        now: datetime,
        existing_id: int | None = None,
        closed: bool = False,
        if_older_than: datetime | None = None,
    ) -> int | None:
        return await stored_items.save_item(
            session, item=item, now=now, existing_id=existing_id, closed=closed, if_older_than=if_older_than
        )

    async def insert_items(
        self, session: AsyncSession, *, items: Sequence[ApprovalItem], now: datetime
    ) -> dict[tuple[str, str], int]:
        return await stored_items.insert_items(session, items=items, now=now)

    async def claim(
        self, *, item_id: int, slack_user: str, action: str, entries: Sequence[Entry] = ()
    ) -> bool:
        return None is not await stored_items.claim(
            self.db, item_id=item_id, slack_user=slack_user, action=action, entries=entries
        )

    async def finish_claim(
        self,
        *,
        item_id: int,
        item: ApprovalItem | None = None,
        decided_by: str | None = None,
        action: str | None = None,
        comment: str | None = None,
        error: str | None = None,
        audit: Sequence[DecisionRow] = (),
        entries: Sequence[Entry] = (),
    ) -> None:
        await stored_items.finish_claim(
            self.db,
            item_id=item_id,
            item=item,
            decided_by=decided_by,
            action=action,
            comment=comment,
            error=error,
            audit=audit,
            entries=entries,
        )

    async def items_by_ids(self, *, item_ids: Sequence[int]) -> dict[int, StoredItem]:
        return await stored_items.items_by_ids(self.db, item_ids=item_ids)

    async def link(
        self,
        *,
        slack_user_id: str,
        connector: str,
        vendor_user_id: str,
        display_name: str,
        email: str | None,
        credentials: Mapping[str, str] | None,
    ) -> None:
        return await identities.link(
            self.db,
            box=self.box,
            slack_user_id=slack_user_id,
            connector=connector,
            vendor_user_id=vendor_user_id,
            display_name=display_name,
            email=email,
            credentials=credentials,
        )

    async def unlink(self, *, slack_user_id: str, connector: str) -> bool:
        return await identities.unlink(self.db, slack_user_id=slack_user_id, connector=connector)

    async def mark_broken(self, *, slack_user_id: str, connector: str) -> None:
        return await identities.mark_broken(self.db, slack_user_id=slack_user_id, connector=connector)

    async def identity(self, *, slack_user_id: str, connector: str) -> Identity | None:
        return await identities.identity(
            self.db, box=self.box, slack_user_id=slack_user_id, connector=connector
        )

    async def identities(
        self, *, connector: str | None = None, slack_user_id: str | None = None
    ) -> list[Identity]:
        return await identities.identities(
            self.db, box=self.box, connector=connector, slack_user_id=slack_user_id
        )

    async def linked_users(self, *, connector: str) -> list[LinkedUser]:
        return await identities.linked_users(self.db, box=self.box, connector=connector)

    async def connector_states(self) -> dict[str, ConnectorStateRow]:
        return await health.connector_states(self.db)

    async def record_sync(
        self, session: AsyncSession, *, name: str, ok: bool, error: str | None, pending: int | None
    ) -> None:
        return await health.record_sync(session, name=name, ok=ok, error=error, pending=pending)

    async def first_time_event(self, *, event_id: str) -> bool:
        return await health.first_time_event(self.db, event_id=event_id)

    async def forget_events(self, *, older_than: timedelta) -> None:
        return await health.forget_events(self.db, older_than=older_than)

    async def cards(self, *, item_id: int) -> list[CardRow]:
        return await cards.cards(self.db, item_id=item_id)

    async def cards_of(self, *, item_ids: Sequence[int]) -> dict[int, list[CardRow]]:
        return await cards.cards_of(self.db, item_ids=item_ids)

    async def due_outbox(self, *, limit: int = 100, now: datetime | None = None) -> list[OutboxRow]:
        return await outbox.due(self.db, limit=limit, now=now)

    async def outbox_size(self) -> int:
        return await outbox.size(self.db)

    async def decisions(self, *, item_id: int | None = None) -> list[DecisionRow]:
        return await audit.decisions(self.db, item_id=item_id)


__all__ = ["Identity", "Store", "StoredItem", "decision_row", "now_utc"]
