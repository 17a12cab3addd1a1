"""Harness in the contract suite: a seeded step whose only group has Alice (minimumCount 1);
Dave is a Harness user outside the group."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from connectors.base import Actor, LinkedUser, Status
from connectors.harness import HarnessSettings
from connectors.harness.connector import HarnessConnector
from connectors.harness.sandbox import HarnessSandbox
from connectors.people import ALICE, DAVE, DemoPerson
from tests.contract.kit import ContractKit, Fault


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


class HarnessKit(ContractKit):
    type: ClassVar[str] = "harness"
    can_approve: ClassVar[bool] = True
    link_mode: ClassVar[Literal["credentials", "email"]] = "credentials"

    def __init__(self) -> None:
        self.sandbox = HarnessSandbox(slow_seconds=0.6)
        self.sandbox.add_group("approvers", [ALICE])

    async def start(self) -> None:
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.stop()

    def build(self, *, timeout: float = 2.0, **settings: Any) -> HarnessConnector:
        options = {k: settings.pop(k) for k in ("membership_ttl", "clock") if k in settings}
        values = HarnessSettings.model_validate(self.sandbox.connector_settings(**settings))
        return HarnessConnector("pipelines", values, timeout=timeout, sleep=_no_sleep, **options)

    def actor(self, person: DemoPerson) -> Actor:
        return Actor(
            person.slack_id,
            f"u-{person.handle}",
            person.name,
            person.email,
            credentials={"api_key": self.sandbox.key(person.handle)},
        )

    def linked(self) -> list[LinkedUser]:
        return []

    def approver(self) -> Actor:
        return self.actor(ALICE)

    def outsider(self) -> Actor:
        return self.actor(DAVE)

    async def seed_pending(self) -> str:
        return self.sandbox.add_waiting(groups=["approvers"])

    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        self.sandbox.decide(external_id, status.value.upper())

    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        self.sandbox.fail_next(fault, count, method="POST" if fault != "500" else None)

    def vendor_actions(self) -> list[tuple[str, str, str]]:
        return list(self.sandbox.decisions)


KIT = HarnessKit
