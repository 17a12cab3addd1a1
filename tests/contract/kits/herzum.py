"""Herzum in the contract suite: a seeded approval on an issue in its source status, Alice the
only approver; Dave is a Jira user who is not an approver."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, ClassVar, Literal

from connectors.base import Actor, LinkedUser, Status
from connectors.herzum import HerzumSettings
from connectors.herzum.connector import HerzumConnector
from connectors.herzum.sandbox import HerzumSandbox
from connectors.people import ALICE, DAVE, DemoPerson
from tests.contract.kit import ContractKit, Fault


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


class HerzumKit(ContractKit):
    type: ClassVar[str] = "herzum"
    can_approve: ClassVar[bool] = True
    link_mode: ClassVar[Literal["credentials", "email"]] = "credentials"

    def __init__(self) -> None:
        self.sandbox = HerzumSandbox(slow_seconds=0.6)
        self._n = itertools.count(1)

    async def start(self) -> None:
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.stop()

    def build(self, *, timeout: float = 2.0, **settings: Any) -> HerzumConnector:
        values = HerzumSettings.model_validate(self.sandbox.connector_settings(**settings))
        return HerzumConnector("approvals", values, timeout=timeout, sleep=_no_sleep)

    def actor(self, person: DemoPerson) -> Actor:
        return Actor(
            person.slack_id,
            person.handle,
            person.name,
            person.email,
            credentials=self.sandbox.credentials(person.handle),
        )

    def linked(self) -> list[LinkedUser]:
        return [LinkedUser(ALICE.slack_id, "alice", ALICE.email, self.sandbox.credentials("alice"))]

    def approver(self) -> Actor:
        return self.actor(ALICE)

    def outsider(self) -> Actor:
        return self.actor(DAVE)

    async def seed_pending(self) -> str:
        n = next(self._n)
        issue = self.sandbox.add_issue(f"OPS-{100 + n}", f"Contract change {n}")
        return str(self.sandbox.add_approval(issue, ["alice"]))

    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        self.sandbox.decide(int(external_id), status.value.upper())

    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        self.sandbox.fail_next(fault, count, method="POST" if fault != "500" else None)

    def vendor_actions(self) -> list[tuple[str, str, str]]:
        return list(self.sandbox.decisions)


KIT = HerzumKit
