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
                    "client_id": "${GH_CLIENT}",
                    "client_secret": "${GH_SECRET}",
                    "service_user_id": 4101,
                    "webhook_secret": "${GH_HOOK}",
                    "channel": "C0HIRING",
                    "users": {"Alice@Example.com": 4080001},
                }
            ]
        },
        env={"GH_CLIENT": "abc-12", "GH_SECRET": "s-123", "GH_HOOK": "h-456"},
    )
    settings = config.connectors[0].settings
    assert isinstance(settings, GreenhouseSettings)
    assert settings.base_url == "https://harvest.greenhouse.io"
    assert settings.auth_url == "https://auth.greenhouse.io/token"
    assert settings.api_version == "v3"
    assert settings.service_user_id == 4101
    assert settings.ui_url == "https://app.greenhouse.io"
    assert settings.users == {"alice@example.com": 4080001}
    assert settings.client_secret.get_secret_value() == "s-123"
    assert "s-123" not in repr(settings) and "h-456" not in repr(settings)


@pytest.mark.parametrize(
    "table",
    [
        {"api_key": "${GH_KEY}"},
        {"api_version": "v1", "client_id": "a-1", "client_secret": "s", "service_user_id": 1},
        {"api_key": "${GH_KEY}", "api_version": "v1"},
    ],
)
def test_a_v1_table_fails_with_one_line_saying_how_to_get_a_v3_credential(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"connectors": [{"name": "hiring", "type": "greenhouse", **table}]}, env={"GH_KEY": "k"})
    assert len(caught.value.problems) == 1, caught.value.problems
    line = caught.value.problems[0]
    assert "retired" in line and "31 Aug 2026" in line
    assert "Harvest V3 (OAuth)" in line and "client_id" in line and "service_user_id" in line


def test_unsupported_versions_and_bad_pins_are_explained() -> None:
    base = {"client_id": "a-1", "client_secret": "s", "service_user_id": 7}
    with pytest.raises(ValidationError, match='use "v3"'):
        GreenhouseSettings.model_validate({**base, "api_version": "v4"})
    with pytest.raises(ValidationError, match="not an email address"):
        GreenhouseSettings.model_validate({**base, "users": {"alice": 1}})
    with pytest.raises(ConfigError) as caught:
        parse_config({"connectors": [{"name": "hiring", "type": "greenhouse"}]}, env={})
    assert any("client_id: missing key" in line for line in caught.value.problems)
    assert any("service_user_id: missing key" in line for line in caught.value.problems)


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
        assert set(by_kind) == {"Candidate offer", "Open job"}, "the unrequested flow is not carded"
        assert [p.email for p in by_kind["Candidate offer"].recipients] == [ALICE.email, BOB.email]
        assert [p.email for p in by_kind["Open job"].recipients] == [CAROL.email, DAVE.email]
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
