"""Who gets a card, and whose queue an item is in: the pure rules, without a database or Slack."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.config import ConfigError, parse_config
from bot.outbox import effects
from bot.outbox.effects import Audience, Change, targets
from bot.outbox.jobs import CardJob, HomeJob
from bot.reach import email_problem
from connectors.base import ApprovalItem, ApproverGroup, Person

ALICE = Person("u-alice", "Alice", "alice@example.com")
NORA = Person("u-nora", "Nora", "nora@elsewhere.example")
PAT = Person("u-pat", "Pat Private")  # the vendor hides Pat's email
GRETA = Person("42", "Greta", "greta@old.example", emails=("Greta@New.example",))
ITEM = ApprovalItem(
    connector="pipelines",
    external_id="1",
    kind="Approval",
    title="Deploy",
    groups=(ApproverGroup("SRE leads", approvers=(ALICE, NORA)),),
    recipients=(ALICE, NORA),
)
FOUND = {"alice@example.com": "U0ALICE", "nora@elsewhere.example": None}


def test_each_approver_found_by_email_gets_a_dm_and_the_channel_keeps_a_copy_by_default() -> None:
    always = Audience(channel="C0DEPLOYS", slack_by_email=FOUND, channel_copy="always")
    assert targets(ITEM, always) == ["user:U0ALICE", "channel:C0DEPLOYS"]
    only_alice = replace(ITEM, recipients=(ALICE,))
    assert targets(only_alice, always) == ["user:U0ALICE", "channel:C0DEPLOYS"]
    unresolved = replace(always, channel_copy="unresolved")
    assert targets(only_alice, unresolved) == ["user:U0ALICE"], "everyone found: no channel copy"
    assert targets(ITEM, unresolved) == ["user:U0ALICE", "channel:C0DEPLOYS"], "Nora is not in Slack"
    assert effects.unresolved(ITEM, unresolved) == [NORA]
    assert targets(replace(only_alice, recipients=(ALICE, PAT)), unresolved)[-1] == "channel:C0DEPLOYS"
    assert targets(replace(only_alice, channel_card=True), unresolved)[-1] == "channel:C0DEPLOYS"


def test_a_linked_identity_wins_and_an_address_not_asked_yet_waits_as_an_email_target() -> None:
    audience = Audience(channel="C0DEPLOYS", slack_by_vendor={"u-alice": "U0LINKED"})
    assert targets(replace(ITEM, recipients=(ALICE,)), audience) == ["user:U0LINKED"]
    assert targets(replace(ITEM, recipients=(NORA,)), audience) == ["email:nora@elsewhere.example"]


def test_a_secondary_address_is_tried_too() -> None:
    audience = Audience(slack_by_email={"greta@old.example": None, "greta@new.example": "U0GRETA"})
    assert GRETA.all_emails == ("greta@old.example", "greta@new.example")
    assert targets(replace(ITEM, recipients=(GRETA,)), audience) == ["user:U0GRETA"]


def test_a_dm_already_posted_under_its_email_target_is_not_posted_twice() -> None:
    audience = Audience(slack_by_email=FOUND, cards={1: ["email:alice@example.com"]})
    jobs = effects.card_jobs(Change(1, ITEM, ITEM), audience)
    assert jobs == [CardJob(item=1, to="email:alice@example.com")]


def test_an_item_naming_nobody_waits_on_everyone_only_when_the_vendor_names_nobody_at_all() -> None:
    bare = replace(ITEM, groups=(), recipients=())
    assert effects.waits_on_everyone(bare, per_user_listing=False), "FlexDeploy: its listing per person says"
    assert not effects.waits_on_everyone(bare, per_user_listing=True), "Herzum: nobody linked may decide"
    unreadable = replace(ITEM, groups=(ApproverGroup("Auditors"),), recipients=())
    assert not effects.waits_on_everyone(unreadable, per_user_listing=False), "groups nobody could read"
    linked = Audience(linked=(("U0ALICE", "u-alice"), ("U0BOB", "u-bob")))
    assert effects.home_jobs([Change(1, None, unreadable)], linked) == []
    assert effects.home_jobs([Change(1, None, bare)], linked) == [HomeJob("U0ALICE"), HomeJob("U0BOB")]


def test_who_may_act_by_email() -> None:
    member = {"team_id": "T1", "is_email_confirmed": True, "profile": {"email": "a@example.com"}}
    assert email_problem(member, "T1") is None
    assert "not confirmed" in (email_problem({**member, "is_email_confirmed": False}, "T1") or "")
    assert "not confirmed" in (
        email_problem({k: v for k, v in member.items() if k != "is_email_confirmed"}, "T1") or ""
    )
    assert "guest" in (email_problem({**member, "is_restricted": True}, "T1") or "")
    assert "guest" in (email_problem({**member, "is_ultra_restricted": True}, "T1") or "")
    assert "Slack Connect" in (email_problem({**member, "team_id": "T2"}, "T1") or "")
    assert "Slack Connect" in (email_problem({**member, "is_stranger": True}, "T1") or "")
    grid = {**member, "team_id": "E1", "enterprise_user": {"teams": ["T1", "T3"]}}
    assert email_problem(grid, "T1") is None, "an Enterprise Grid member of this workspace"
    assert "deactivated" in (email_problem({**member, "deleted": True}, "T1") or "")
    assert "users:read.email" in (email_problem({**member, "profile": {}}, "T1") or "")


def test_channel_copy_is_checked_in_the_config() -> None:
    base = {
        "name": "pipelines",
        "type": "flexdeploy",
        "base_url": "https://fd.example.com/flexdeploy",
        "channel": "C0DEPLOYS",
        "username": "svc",
        "password": "pw",
    }
    (parsed,) = parse_config({"connectors": [base]}, env={}).connectors
    assert parsed.channel_copy == "always"
    (parsed,) = parse_config({"connectors": [{**base, "channel_copy": "unresolved"}]}, env={}).connectors
    assert parsed.channel_copy == "unresolved"
    with pytest.raises(ConfigError) as caught:
        parse_config({"connectors": [{**base, "channel_copy": "sometimes"}]}, env={})
    assert any("channel_copy" in p and "unresolved" in p for p in caught.value.problems)
