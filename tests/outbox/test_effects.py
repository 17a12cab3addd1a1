"""Which Slack work a change causes, decided without a database or Slack."""

from __future__ import annotations

from dataclasses import replace

from bot.outbox import effects
from bot.outbox.effects import Audience, Change
from bot.outbox.jobs import CardJob, FlowJob, HomeJob, Priority, ThreadReplyJob, job_of
from connectors.base import ApprovalItem, Person, Status

ALICE, BOB = Person("alice", "Alice", "alice@example.com"), Person("bob", "Bob", "bob@example.com")
ITEM = ApprovalItem(
    connector="deploys", external_id="7", kind="Release gate", title="Deploy", recipients=(ALICE,)
)
AUDIENCE = Audience(
    channel="C0DEPLOYS",
    slack_by_vendor={"alice": "U0ALICE", "bob": "U0BOB"},
    flow_channels=("C0NOTIFY",),
    linked=(("U0ALICE", "alice"), ("U0BOB", "bob")),
)


def test_a_new_item_gets_its_cards_its_flow_notice_and_the_homes_it_concerns() -> None:
    jobs = effects.after_sync([Change(1, None, ITEM)], AUDIENCE)
    assert CardJob(item=1, to="user:U0ALICE") in jobs
    assert FlowJob(item=1, channel="C0NOTIFY") in jobs
    assert [j for j in jobs if isinstance(j, HomeJob)] == [HomeJob(slack_user="U0ALICE")], "Bob is not asked"


def test_a_reassigned_item_keeps_updating_old_copies_and_cards_the_new_approver() -> None:
    moved = replace(ITEM, recipients=(BOB,))
    audience = replace(AUDIENCE, cards={1: ["user:U0ALICE"]})
    cards = [j for j in effects.after_sync([Change(1, ITEM, moved)], audience) if isinstance(j, CardJob)]
    assert cards == [CardJob(item=1, to="user:U0ALICE"), CardJob(item=1, to="user:U0BOB")]


def test_an_item_decided_elsewhere_only_updates_its_copies_and_tells_the_channel_how_it_ended() -> None:
    done = ITEM.with_status(Status.APPROVED)
    audience = replace(AUDIENCE, cards={1: ["user:U0ALICE"]})
    jobs = effects.after_sync([Change(1, ITEM, done)], audience)
    assert [j for j in jobs if isinstance(j, CardJob)] == [CardJob(item=1, to="user:U0ALICE")]
    channels = {j.channel for j in jobs if isinstance(j, FlowJob)}
    assert channels == {"C0NOTIFY", "C0DEPLOYS"}, (
        "its cards went to DMs: the connector's channel learns the end"
    )


def test_a_decision_through_the_bot_puts_the_clicked_card_first_and_replies_in_the_thread() -> None:
    done = ITEM.with_status(Status.APPROVED)
    audience = replace(AUDIENCE, cards={1: ["user:U0ALICE"]})
    jobs = effects.after_decision(Change(1, ITEM, done), audience, decided=True)
    assert jobs[0] == CardJob(item=1, to="user:U0ALICE", acted=True)
    assert jobs[0].priority is Priority.ACTED
    assert ThreadReplyJob(item=1, channel="C0NOTIFY") in jobs
    failed = effects.after_decision(Change(1, ITEM, ITEM), audience, decided=False)
    assert not any(isinstance(j, ThreadReplyJob) for j in failed), "no reply when the vendor took nothing"


def test_jobs_survive_the_outbox_and_repeats_share_a_key() -> None:
    job = CardJob(item=1, to="user:U0ALICE", acted=True)
    row = job.entry()
    assert job_of(kind=row.kind, payload=row.payload, item_id=row.item_id, target=row.target) == job
    assert CardJob(item=1, to="user:U0ALICE").key == job.key
    assert job_of(kind="card", payload=None, item_id=3, target="channel:C1") == CardJob(
        item=3, to="channel:C1"
    )
    assert job_of(kind="unknown", payload="{}", item_id=None, target=None) is None
