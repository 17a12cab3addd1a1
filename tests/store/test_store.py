"""The store on a real database: claims, encryption at rest, rotation, outbox coalescing."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bot.outbox.jobs import CardJob
from connectors.base import ApprovalItem, Status
from store import outbox
from store.crypto import CredentialBox, SecretKeyError
from store.repo import Store, now_utc


def _item(external_id: str = "1", title: str = "Deploy web 1.2") -> ApprovalItem:
    return ApprovalItem(connector="deploys", external_id=external_id, kind="Release gate", title=title)


async def _save(store: Store, item: ApprovalItem) -> int:
    async with store.db.transaction() as s:
        item_id = await store.save_item(s, item=item, now=now_utc())
    assert item_id is not None
    return item_id


async def test_migrations_are_idempotent_and_items_round_trip(store: Store) -> None:
    await store.db.migrate()  # a second start on the same database changes nothing
    item_id = await _save(store, _item())
    again = await _save(store, _item(title="Deploy web 1.3"))
    assert again == item_id, "the same vendor item is one row"
    stored = await store.item(connector="deploys", external_id="1")
    assert stored is not None
    assert stored.item.title == "Deploy web 1.3"
    assert stored.row.first_seen_at.tzinfo is not None


async def test_only_one_of_two_concurrent_claims_wins(store: Store) -> None:
    item_id = await _save(store, _item())
    results = await asyncio.gather(
        store.claim(item_id=item_id, slack_user="U0ALICE", action="approve"),
        store.claim(item_id=item_id, slack_user="U0BOB", action="approve"),
    )
    assert sorted(results) == [False, True]
    await store.finish_claim(item_id=item_id, error="vendor down")
    assert await store.claim(item_id=item_id, slack_user="U0BOB", action="approve")


async def test_a_decided_item_cannot_be_claimed(store: Store) -> None:
    item_id = await _save(store, _item().with_status(Status.APPROVED))
    assert not await store.claim(item_id=item_id, slack_user="U0ALICE", action="approve")


async def test_credentials_are_encrypted_at_rest_and_keys_rotate(store: Store, secret_key: str) -> None:
    await store.link(
        slack_user_id="U0ALICE",
        connector="deploys",
        vendor_user_id="alice",
        display_name="Alice",
        email="alice@example.com",
        credentials={"username": "alice", "secret": "hunter2-very-secret"},
    )
    async with store.db.session() as s:
        raw = (await s.exec(sa.text("SELECT credentials_enc FROM identities"))).all()  # type: ignore[call-overload]
    assert raw
    assert "hunter2" not in raw[0][0]
    identity = await store.identity(slack_user_id="U0ALICE", connector="deploys")
    assert identity is not None
    assert identity.credentials["secret"] == "hunter2-very-secret"

    new_key = Fernet.generate_key().decode()
    rotated = Store(store.db, CredentialBox(f"{new_key},{secret_key}"))
    still = await rotated.identity(slack_user_id="U0ALICE", connector="deploys")
    assert still is not None
    assert still.credentials["secret"] == "hunter2-very-secret"

    lost = Store(store.db, CredentialBox(new_key))
    broken = await lost.identity(slack_user_id="U0ALICE", connector="deploys")
    assert broken is not None
    assert broken.broken, "credentials no key can open are reported broken, not crashed on"


def test_a_malformed_secret_key_is_refused_clearly() -> None:
    with pytest.raises(SecretKeyError, match="Fernet keys"):
        CredentialBox("not-a-key")


async def test_outbox_coalesces_and_keeps_work_requested_during_delivery(store: Store) -> None:
    item_id = await _save(store, _item())
    job = CardJob(item=item_id, to="channel:C1").entry()
    async with store.db.transaction() as s:
        await outbox.enqueue(s, entries=[job], now=now_utc())
        await outbox.enqueue(s, entries=[job], now=now_utc())
    rows = await store.due_outbox()
    assert len(rows) == 1
    # The state changes again while the first delivery is under way:
    async with store.db.transaction() as s:
        await outbox.enqueue(s, entries=[job], now=now_utc())
    await outbox.settle(store.db, done=[rows[0]])
    assert len(await store.due_outbox()) == 1, "the newer request must still be delivered"
    await outbox.settle(store.db, done=[(await store.due_outbox())[0]])
    assert await store.due_outbox() == []


async def test_outbox_gives_the_clicked_card_first_and_keeps_its_urgency(store: Store) -> None:
    item_id = await _save(store, _item())
    async with store.db.transaction() as s:
        backlog = [CardJob(item=item_id, to=f"channel:C{n}").entry() for n in range(5)]
        await outbox.enqueue(s, entries=backlog, now=now_utc())
        await outbox.enqueue(
            s, entries=[CardJob(item=item_id, to="channel:C3", acted=True).entry()], now=now_utc()
        )
        await outbox.enqueue(s, entries=[CardJob(item=item_id, to="channel:C3").entry()], now=now_utc())
    due = await store.due_outbox()
    assert due[0].target == "channel:C3", "the clicked card goes before the backlog"
    assert len(due) == 5, "repeats coalesce"


async def test_events_are_processed_once(store: Store) -> None:
    assert await store.first_time_event(event_id="Ev1")
    assert not await store.first_time_event(event_id="Ev1")
