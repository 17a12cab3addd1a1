"""FlexDeploy in the contract suite (and the fixture the FlexDeploy tests build on).

A seeded item is a project deployment task of the approval group "Contract approvers", in
which Alice and Bob are; Dave is a real FlexDeploy user outside it. The service account is the
sandbox's administrator, who sees every task.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from connectors.base import Actor, LinkedUser, Status
from connectors.flexdeploy import FlexDeploySettings
from connectors.flexdeploy.connector import FlexDeployConnector
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from connectors.people import ALICE, BOB, DAVE, DemoPerson
from tests.contract.kit import ContractKit, Fault

GROUP = "Contract approvers"


async def _no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


class FlexDeployKit(ContractKit):
    type: ClassVar[str] = "flexdeploy"
    can_approve: ClassVar[bool] = True
    link_mode: ClassVar[Literal["credentials", "email"]] = "credentials"

    def __init__(self) -> None:
        self.sandbox = FlexDeploySandbox(slow_seconds=0.6)
        self.sandbox.add_group(GROUP, [ALICE, BOB])
        self._versions = 0

    async def start(self) -> None:
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.stop()

    def settings(self, **overrides: Any) -> FlexDeploySettings:
        return FlexDeploySettings.model_validate(self.sandbox.connector_settings(**overrides))

    def build(self, *, timeout: float = 2.0, **settings: Any) -> FlexDeployConnector:
        # Retries back off without waiting: the tests count attempts, not seconds.
        return FlexDeployConnector("deploys", self.settings(**settings), timeout=timeout, sleep=_no_sleep)

    def actor(self, person: DemoPerson, *, token: bool = False) -> Actor:
        credentials = self.sandbox.credentials(person, token=token)
        return Actor(person.slack_id, person.handle, person.name, person.email, credentials=credentials)

    def linked(self) -> list[LinkedUser]:
        return [
            LinkedUser(p.slack_id, p.handle, p.email, credentials=self.sandbox.credentials(p))
            for p in (ALICE, BOB)
        ]

    def approver(self) -> Actor:
        return self.actor(ALICE)

    def outsider(self) -> Actor:
        return self.actor(DAVE)

    async def seed_pending(self) -> str:
        self._versions += 1
        task_id = self.sandbox.add_project_task(
            project="Contract Service", version=f"1.0.{self._versions}", group=GROUP
        )
        return str(task_id)

    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        self.sandbox.decide(external_id, status, notes="decided in the FlexDeploy UI")

    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        # The connector re-reads a task just before deciding it; a slow or dropped answer is
        # about the decision itself, so those faults wait for the PUT.
        method = "PUT" if fault in ("timeout", "drop") else None
        self.sandbox.fail_next(fault, count, method=method)

    def vendor_actions(self) -> list[tuple[str, str, str]]:
        return list(self.sandbox.decisions)


KIT = FlexDeployKit
