"""Greenhouse identity: Slack email → Greenhouse user, pinned mappings, and the v3 credential kept secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connectors.errors import AuthExpired, NotAllowed, NotFound, VendorUnavailable
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.people import ALICE, BOB, CAROL, MALLORY
from tests.contract.kits.greenhouse import GreenhouseKit


async def test_people_are_found_by_primary_or_secondary_email(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    erin = kit.sandbox.add_user("Erin Second", "erin@corp.example", extra_emails=["erin.second@example.com"])
    identity = await connector.identify(ALICE.email.upper())
    assert identity is not None
    assert (identity.user_id, identity.display_name) == (str(kit.ids["alice"]), "Alice Approver")
    secondary = await connector.identify("Erin.Second@example.com")
    assert secondary is not None and secondary.user_id == str(erin)


async def test_nobody_and_disabled_users_are_not_found(
    kit: GreenhouseKit, connector: GreenhouseConnector
) -> None:
    kit.sandbox.add_user("Gone Person", "gone@example.com", disabled=True)
    assert await connector.identify(MALLORY.email) is None
    assert await connector.identify("gone@example.com") is None
    assert await connector.identify("   ") is None


async def test_pinned_mappings_come_before_the_email_lookup(kit: GreenhouseKit) -> None:
    connector = kit.build(users={CAROL.email: kit.ids["bob"], "ghost@example.com": 999})
    try:
        pinned = await connector.identify(CAROL.email)
        assert pinned is not None and pinned.user_id == str(kit.ids["bob"])
        assert await connector.identify("ghost@example.com") is None, "a pin to a missing user maps nobody"
        looked_up = await connector.identify(ALICE.email)
        assert looked_up is not None and looked_up.user_id == str(kit.ids["alice"])
    finally:
        await connector.aclose()
    lookups = [q for path, q in kit.sandbox.query_log if path == "/v3/users" and "primary_email" in q]
    assert len(lookups) == 1, "only the unpinned email was looked up"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"client_secret": "wrong-secret-3b1f"}, "does not know this client_id/client_secret"),
        ({"client_id": "nosuffixclient"}, "client_id is malformed"),
    ],
)
async def test_a_refused_credential_is_classified_by_body_and_never_shown(
    kit: GreenhouseKit, caplog: pytest.LogCaptureFixture, overrides: dict[str, Any], words: str
) -> None:
    connector = kit.build(**overrides)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AuthExpired) as caught:
            await connector.fetch_pending(kit.link(ALICE))
        with pytest.raises(AuthExpired):
            await connector.check()
    finally:
        await connector.aclose()
    shown = [str(caught.value), caught.value.detail or "", repr(connector), repr(kit.settings(**overrides))]
    shown += [r.getMessage() for r in caplog.records]
    for secret in overrides.values():
        assert all(secret not in text for text in shown), (
            "the token endpoint echoes the client id: never passed on"
        )
    assert words in str(caught.value)


async def test_credentials_never_follow_a_link_to_another_host(kit: GreenhouseKit) -> None:
    kit.sandbox.page_size = 1
    for _ in range(2):
        kit.sandbox.add_flow(kit.new_job(), [([kit.ids["alice"]], 1)], requested_by=kit.recruiter)
    kit.sandbox.link_origin = "http://127.0.0.2:9"
    connector = kit.build()
    try:
        with pytest.raises(VendorUnavailable, match="another host"):
            await connector.fetch_pending(kit.link(ALICE))
    finally:
        await connector.aclose()


async def test_check_names_a_pinned_user_that_does_not_exist(kit: GreenhouseKit) -> None:
    good = kit.build(users={BOB.email: kit.ids["bob"]})
    bad = kit.build(users={"ghost@example.com": 999})
    try:
        assert await good.check() == "reachable (Harvest v3), 1 pinned users"
        with pytest.raises(NotFound, match=r"ghost@example\.com"):
            await bad.check()
    finally:
        await good.aclose()
        await bad.aclose()


async def test_check_names_a_service_user_who_is_not_a_site_admin(kit: GreenhouseKit) -> None:
    connector = kit.build(service_user_id=kit.ids["alice"])
    try:
        with pytest.raises(NotAllowed, match="Site Admin"):
            await connector.check()
    finally:
        await connector.aclose()
    kit.sandbox.denied.add("approvers")
    connector = kit.build()
    try:
        with pytest.raises(NotAllowed, match="harvest:approvers:list"):
            await connector.check()
    finally:
        await connector.aclose()
