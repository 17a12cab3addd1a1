"""Cards people can read: vendor labels that tell the two Jira apps apart, and no raw vendor
identifiers where a person reads a card's title, kind, fields or group names."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.approval_path.connector import ApprovalPathConnector
from connectors.herzum.connector import HerzumConnector
from connectors.people import ALICE, BOB
from tests.contract.kits.harness import HarnessKit
from tests.running import started


def test_the_two_jira_apps_have_distinct_labels() -> None:
    # The connector class is the one place a label is kept (the registry's copy is gone).
    assert HerzumConnector.vendor_label == "Herzum Approval (Jira)"
    assert ApprovalPathConnector.vendor_label == "Approval Path (Jira)"


@pytest.fixture
async def kit() -> AsyncIterator[HarnessKit]:
    k = HarnessKit()
    k.sandbox.send_validated = False  # an older Harness: only the identifiers to go by
    k.sandbox.add_group("_project_all_approvers", [ALICE, BOB])
    async with started(k):
        yield k


async def test_a_harness_card_shows_names_not_identifiers(kit: HarnessKit) -> None:
    kit.sandbox.add_waiting(pipeline="deploy_prod", groups=["_project_all_approvers"])
    connector = kit.build()
    try:
        (item,) = await connector.fetch_pending()
        shown = [
            item.title,
            item.kind,
            *(f"{f.label} {f.value}" for f in item.fields),
            *(g.name for g in item.groups),
        ]
        assert not [text for text in shown if "_project_all_approvers" in text or "exec0" in text], shown
        assert ("Approver groups", "Project all approvers") in [(f.label, f.value) for f in item.fields]
        assert item.kind[0].isupper()
    finally:
        await connector.aclose()
