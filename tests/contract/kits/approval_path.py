"""Approval Path for Jira in the contract suite: no approve or reject call, people linked by email."""

from __future__ import annotations

from typing import ClassVar, Literal

from connectors.approval_path import ApprovalPathSettings
from connectors.approval_path.connector import ApprovalPathConnector
from connectors.approval_path.sandbox import ACCOUNTS, ApprovalPathSandbox
from connectors.base import Actor, Connector, LinkedUser, Status
from connectors.people import ALICE, BOB, DAVE, DemoPerson
from tests.contract.kit import ContractKit, Fault


def actor(person: DemoPerson) -> Actor:
    return Actor(person.slack_id, ACCOUNTS[person.email], person.name, person.email)


class ApprovalPathKit(ContractKit):
    type: ClassVar[str] = "approval_path"
    can_approve: ClassVar[bool] = False
    link_mode: ClassVar[Literal["credentials", "email"]] = "email"

    async def start(self) -> None:
        self.sandbox = ApprovalPathSandbox()
        self.definition = self.sandbox.add_definition(
            "Change approval", [self.sandbox.user_step(ALICE)], project="OPS"
        )
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.stop()

    def build(self, *, timeout: float = 2.0) -> Connector:
        settings = ApprovalPathSettings.model_validate(self.sandbox.connector_settings())
        return ApprovalPathConnector("paths", settings, timeout=timeout)

    def linked(self) -> list[LinkedUser]:
        return [LinkedUser(ALICE.slack_id, ACCOUNTS[ALICE.email], ALICE.email)]

    def approver(self) -> Actor:
        return actor(ALICE)

    def outsider(self) -> Actor:
        # A Jira user outside the group the API key accepts as performer.
        return actor(DAVE)

    async def seed_pending(self) -> str:
        issue = self.sandbox.add_issue("OPS", "Deploy the payments service")
        approval_id = self.sandbox.start_path(issue, self.definition, by=BOB)
        return f"{issue}:{approval_id}"

    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        issue, approval_id = external_id.rsplit(":", 1)
        self.sandbox.decide(issue, approval_id, status)

    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        self.sandbox.fail_next(fault, count)

    def vendor_actions(self) -> list[tuple[str, str, str]]:
        return list(self.sandbox.decisions)


KIT = ApprovalPathKit
