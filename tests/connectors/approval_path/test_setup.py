"""Approval Path for Jira: its config keys, and the demo sandbox people click through."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError

from connectors.approval_path import SPEC, ApprovalPathSettings
from connectors.approval_path.connector import ApprovalPathConnector
from connectors.approval_path.sandbox import ACCOUNTS, ApprovalPathSandbox
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY
from connectors.registry import spec_for
from tests.contract.kits.approval_path import actor

KEYS = {
    "api_key": "ap-secret-key",
    "jira_url": "https://example.atlassian.net/",
    "jira_email": "bot@example.com",
    "jira_token": "jira-secret-token",
    "jql": "project = OPS",
}


def test_settings_have_vendor_defaults_and_keep_secrets_out_of_reprs() -> None:
    settings = ApprovalPathSettings.model_validate(KEYS | {"recheck_after": "90s"})
    assert settings.base_url == "https://app.approval-path.com/webapi"
    assert settings.jira_url == "https://example.atlassian.net"
    assert settings.max_issues_per_poll == 50
    assert settings.recheck_after == timedelta(seconds=90)
    assert "secret" not in repr(settings) and "secret" not in str(settings)
    assert spec_for("approval_path") is SPEC


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"jql": ""}, "jql"),
        ({"recheck_after": "soon"}, "bad duration"),
        ({"jira_url": "example.atlassian.net"}, "not an http(s) URL"),
        ({"max_issues_per_poll": 0}, "max_issues_per_poll"),
        ({"username": "bot"}, "username"),
    ],
)
def test_bad_settings_say_which_key_is_wrong(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ApprovalPathSettings.model_validate(KEYS | change)
    assert complaint in str(caught.value)


async def test_a_connector_built_from_the_registry_adds_the_jql_order() -> None:
    connector = SPEC.build("paths", ApprovalPathSettings.model_validate(KEYS))
    try:
        assert isinstance(connector, ApprovalPathConnector)
        assert connector.capabilities.link_mode == "email"
        assert not connector.capabilities.approve and connector.capabilities.cancel
        assert connector.vendor_label == "Approval Path (Jira)"
    finally:
        await connector.aclose()


async def test_the_demo_has_a_step_due_for_alice_and_a_group_step_for_the_channel() -> None:
    assert SPEC.demo is not None
    setup = await SPEC.demo()
    connector = SPEC.build("paths", ApprovalPathSettings.model_validate(setup.connector))
    try:
        assert set(setup.people) == {ALICE.email, BOB.email, CAROL.email, DAVE.email}
        assert MALLORY.email not in setup.people
        items = {i.title: i for i in await connector.fetch_pending()}
        assert set(items) == {"Change approval on OPS-1", "Travel approval on HR-1"}
        change, travel = items["Change approval on OPS-1"], items["Travel approval on HR-1"]
        assert [p.email for p in change.recipients] == [ALICE.email] and not change.channel_card
        # The finance group: Carol and Dave by email, Erin without (her profile hides it).
        assert {p.email for p in travel.recipients} == {CAROL.email, DAVE.email, None}
        assert travel.channel_card and any("hidden in Jira" in n for n in travel.notices)
        for email in setup.people:
            identity = await connector.identify(email)
            assert identity is not None and identity.user_id == ACCOUNTS[email]

        # Alice approves on the issue page the card links to; the next poll moves the card on.
        sandbox = setup.extra["sandbox"]
        assert isinstance(sandbox, ApprovalPathSandbox)
        assert change.url
        async with httpx.AsyncClient() as browser:
            page = await browser.get(change.url)
            assert "Approve as Alice Approver" in page.text
            await browser.post(
                change.url,
                data={"approval": change.ref["approval_id"], "who": ACCOUNTS[ALICE.email], "accept": "1"},
            )
        moved = {i.title: i for i in await connector.fetch_pending()}["Change approval on OPS-1"]
        assert {p.email for p in moved.recipients} == {BOB.email, CAROL.email}, "release managers next"
        assert not moved.channel_card
        assert len(await connector.requestable(actor(ALICE), "OPS-2")) == 3
    finally:
        await connector.aclose()
        await setup.stop()
