"""Which connector types exist, found by looking for vendor packages (no list to edit).

Each vendor package `connectors/<type>/__init__.py` exposes `SPEC: ConnectorSpec`. Adding a vendor
is adding a package; config validation, `check`, `demo` and the contract tests pick it up.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict

import connectors
from connectors.base import Connector


class VendorSettings(BaseModel):
    """The vendor-specific keys of one [[connectors]] table. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str


@dataclass
class SandboxSetup:
    """A running vendor simulator for `approvals-bot demo`.

    `connector` is the [[connectors]] table that points at it (without name/type); `people` maps a
    demo person's email to the credentials they link with (empty mapping for email-linked vendors).
    """

    connector: Mapping[str, Any]
    people: Mapping[str, Mapping[str, str]]
    stop: Callable[[], Awaitable[None]]
    describe: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorSpec:
    type: str
    settings: builtins.type[VendorSettings]
    build: Callable[[str, Any], Connector]
    # Starts a seeded simulator for the demo; `people` are (email, display name) of demo users.
    demo: Callable[[], Awaitable[SandboxSetup]] | None = None


@cache
def specs() -> dict[str, ConnectorSpec]:
    found: dict[str, ConnectorSpec] = {}
    for module in pkgutil.iter_modules(connectors.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"connectors.{module.name}")
        spec = getattr(package, "SPEC", None)
        if isinstance(spec, ConnectorSpec):
            found[spec.type] = spec
    return dict(sorted(found.items()))


def spec_for(type_name: str) -> ConnectorSpec | None:
    return specs().get(type_name)
