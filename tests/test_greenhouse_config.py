"""Greenhouse configuration and the demo sandbox, as an admin and `approvals-bot demo` meet them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import ConfigError, parse_config
from connectors.base import Actor, LinkedUser
from connectors.greenhouse.settings import GreenhouseSettings
from connectors.people import ALICE, BOB, CAROL, DAVE
from connectors.registry import spec_for


def test_a_greenhouse_connector_table_is_understood() -> None:
    config = parse_config(
        {
            "connectors": [
                {
                    "name": "hiring",
                    "type": "greenhouse",
                    "api_key": "${GH_KEY}",
                    "channel": "C0HIRING",
                    "users": {"Alice@Example.com": 4080001},
                }
            ]
        },
        env={"GH_KEY": "k-123"},
    )
    settings = config.connectors[0].settings
    assert isinstance(settings, GreenhouseSettings)
    assert settings.base_url == "https://harvest.greenhouse.io"
    assert settings.api_version == "v1"
    assert settings.ui_url == "https://app.greenhouse.io"
    assert settings.users == {"alice@example.com": 4080001}
    assert settings.api_key.get_secret_value() == "k-123"
    assert "k-123" not in repr(settings)


def test_unsupported_versions_and_bad_pins_are_explained() -> None:
    with pytest.raises(ValidationError, match="Harvest v3 needs OAuth"):
        GreenhouseSettings.model_validate({"api_key": "k", "api_version": "v3"})
    with pytest.raises(ValidationError, match="not an email address"):
        GreenhouseSettings.model_validate({"api_key": "k", "users": {"alice": 1}})
    with pytest.raises(ConfigError) as caught:
        parse_config({"connectors": [{"name": "hiring", "type": "greenhouse"}]}, env={})
    assert any("api_key: missing key" in line for line in caught.value.problems)


async def test_the_demo_cards_alice_and_bob_and_offers_dave_a_request() -> None:
    spec = spec_for("greenhouse")
    assert spec is not None and spec.demo is not None
    setup = await spec.demo()
    connector = spec.build("hiring", spec.settings.model_validate(dict(setup.connector)))
    try:
        assert set(setup.people) == {ALICE.email, BOB.email, CAROL.email, DAVE.email}
        assert all(credentials == {} for credentials in setup.people.values())
        linked = []
        for email in setup.people:
            identity = await connector.identify(email)
            assert identity is not None, email
            linked.append(LinkedUser(f"U-{identity.user_id}", identity.user_id, email))

        items = await connector.fetch_pending(linked)
        by_kind = {i.kind: i for i in items}
        assert set(by_kind) == {"offer_candidate", "open_job"}, "the unrequested flow is not carded"
        assert [p.email for p in by_kind["offer_candidate"].recipients] == [ALICE.email, BOB.email]
        assert [p.email for p in by_kind["open_job"].recipients] == [CAROL.email, DAVE.email]
        assert all(i.url and i.url.startswith(str(setup.connector["ui_url"])) for i in items)

        dave = next(u for u in linked if u.email == DAVE.email)
        actor = Actor("U0DAVE", dave.vendor_user_id, "Dave Deployer", DAVE.email)
        offered = await connector.requestable(actor)
        assert [r.title for r in offered] == ["Make offers on Product Designer"]
        started = await connector.request(actor, offered[0].id)
        assert started is not None and [p.email for p in started.recipients] == [ALICE.email]
    finally:
        await connector.aclose()
        await setup.stop()
