"""FlexDeploy's [[connectors]] keys: a wrong table is one clear line, and secrets stay out of sight."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot.config import ConfigError, parse_config
from connectors.flexdeploy import SPEC, FlexDeploySettings
from connectors.flexdeploy.connector import FlexDeployConnector
from connectors.registry import spec_for

BASE = {"base_url": "https://fd.example.com/flexdeploy", "username": "svc-approvals"}


def problems(**keys: Any) -> list[str]:
    raw = {"connectors": [{"name": "deploys", "type": "flexdeploy", **BASE, **keys}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env={})
    return caught.value.problems


def test_the_registry_finds_flexdeploy() -> None:
    assert spec_for("flexdeploy") is SPEC
    assert SPEC.settings is FlexDeploySettings


@pytest.mark.parametrize("secret", [{"password": "pw"}, {"token": "fdt_abc"}])
def test_a_password_or_a_token_will_do(secret: dict[str, str]) -> None:
    settings = FlexDeploySettings.model_validate(BASE | secret)
    assert settings.secret == next(iter(secret.values()))
    assert settings.link_url == "https://fd.example.com/flexdeploy"


def test_both_or_neither_is_one_clear_line() -> None:
    (both,) = problems(password="pw", token="tk")
    assert (
        both
        == "connectors[0] (deploys): give either password or token for the FlexDeploy service account, not both"
    )
    (neither,) = problems(password="  ")
    assert neither.startswith("connectors[0] (deploys): missing password or token")


def test_base_url_is_the_flexdeploy_root() -> None:
    (line,) = problems(base_url="https://fd.example.com/flexdeploy/rest/v1", password="pw")
    assert (
        line.startswith("connectors[0] (deploys).base_url:")
        and "the bot appends /rest/v1/tasks/approval" in line
    )
    (line,) = problems(base_url="fd.example.com", password="pw")
    assert "is not an http(s) URL" in line


def test_ui_url_is_optional_and_tidied() -> None:
    settings = FlexDeploySettings.model_validate(
        BASE | {"password": "pw", "ui_url": "https://deploy.example.com/fd/"}
    )
    assert settings.link_url == "https://deploy.example.com/fd"


def test_unknown_keys_are_refused() -> None:
    assert "connectors[0] (deploys).api_key: unknown key" in problems(password="pw", api_key="x")


async def test_secrets_never_show_in_reprs() -> None:
    settings = FlexDeploySettings.model_validate(BASE | {"password": "hunter2-service"})
    token_settings = FlexDeploySettings.model_validate(BASE | {"token": "fdt_secret_token"})
    assert "hunter2-service" not in repr(settings) + str(settings)
    assert "fdt_secret_token" not in repr(token_settings)
    connector = FlexDeployConnector("deploys", settings)
    try:
        assert "hunter2-service" not in repr(vars(connector))
    finally:
        await connector.aclose()


def test_settings_are_frozen() -> None:
    settings = FlexDeploySettings.model_validate(BASE | {"password": "pw"})
    with pytest.raises(ValidationError):
        settings.password = "other"  # type: ignore[misc]
