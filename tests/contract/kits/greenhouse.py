"""Greenhouse in the contract suite (and the fixture the Greenhouse tests build on).

Greenhouse cannot approve or reject through its API, so `can_approve` is False; people link by
email. A seeded item is a requested flow (Harvest v3) with one group in which Alice is the only approver.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from bot.config import ConnectorConfig
from connectors.base import Actor, LinkedUser, Status
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.greenhouse.sandbox import GreenhouseSandbox
from connectors.greenhouse.settings import GreenhouseSettings
from connectors.people import ALICE, BOB, CAROL, DAVE, MALLORY, DemoPerson
from tests.contract.kit import ContractKit, Fault
from tests.harness import connector_config

UI_URL = "https://app.greenhouse.io"


class GreenhouseKit(ContractKit):
    type: ClassVar[str] = "greenhouse"
    can_approve: ClassVar[bool] = False
    link_mode: ClassVar[Literal["credentials", "email"]] = "email"

    def __init__(self, **sandbox_options: Any) -> None:
        self.sandbox = GreenhouseSandbox(
            client_id="kit-client-7", client_secret="kit-secret", slow_seconds=0.6, **sandbox_options
        )
        self.ids = {p.handle: self.sandbox.add_person(p) for p in (ALICE, BOB, CAROL, DAVE)}
        self.recruiter = self.sandbox.add_user(
            "Rita Recruiter", "rita.recruiter@example.com", site_admin=True
        )
        self.service = self.sandbox.add_user("Approvals Bot", "approvals-bot@example.com", site_admin=True)
        self.sandbox.can_request.add(self.recruiter)
        self._jobs = itertools.count(1)

    async def start(self) -> None:
        await self.sandbox.start()

    async def stop(self) -> None:
        await self.sandbox.stop()

    def connector_settings(self, **extra: Any) -> dict[str, Any]:
        """The connector's table as an admin writes it for this sandbox (the bot's config, no ui_url)."""
        return {
            "base_url": self.sandbox.url,
            "auth_url": self.sandbox.auth_url,
            "client_id": self.sandbox.client_id,
            "client_secret": self.sandbox.client_secret,
            "service_user_id": self.service,
            **extra,
        }

    def bot_config(self, **extra: Any) -> ConnectorConfig:
        """Connector `hiring` on this sandbox as the bot runs it, carding in channel C0APPROVALS."""
        return connector_config(
            "hiring", "greenhouse", self.connector_settings(**extra), channel="C0APPROVALS"
        )

    def settings(self, **overrides: Any) -> GreenhouseSettings:
        return GreenhouseSettings.model_validate({**self.connector_settings(ui_url=UI_URL), **overrides})

    def build(self, *, timeout: float = 2.0, **settings: Any) -> GreenhouseConnector:
        return GreenhouseConnector(
            "hiring",
            self.settings(**settings),
            timeout=timeout,
            rate_window=self.sandbox.rate_window,
            backoff_base=0.05,
        )

    def bad_credentials(self) -> Mapping[str, str]:
        return {"client_secret": "wrong"}

    def actor(self, person: DemoPerson, vendor_user_id: str | None = None) -> Actor:
        user_id = vendor_user_id if vendor_user_id is not None else str(self.ids.get(person.handle, ""))
        return Actor(person.slack_id, user_id, person.name, person.email)

    def link(self, *people: DemoPerson) -> list[LinkedUser]:
        return [LinkedUser(p.slack_id, str(self.ids[p.handle]), p.email) for p in people]

    def linked(self) -> list[LinkedUser]:
        return self.link(ALICE, BOB, CAROL, DAVE)

    def approver(self) -> Actor:
        return self.actor(ALICE)

    def outsider(self) -> Actor:
        return self.actor(CAROL)

    def mallory(self) -> Actor:
        return self.actor(MALLORY, "")

    def good_credentials(self) -> Mapping[str, str]:
        return {}

    def new_job(self, name: str | None = None, **options: Any) -> int:
        number = next(self._jobs)
        return self.sandbox.add_job(
            name or f"Contract job {number}", requisition_id=f"REQ-{number:04d}", **options
        )

    async def seed_pending(self) -> str:
        flow = self.sandbox.add_flow(self.new_job(), [([self.ids["alice"]], 1)], requested_by=self.recruiter)
        return str(flow)

    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        outcome: Literal["approved", "rejected"] = "approved" if status is Status.APPROVED else "rejected"
        self.sandbox.decide_flow(int(external_id), outcome, by=self.recruiter)

    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        self.sandbox.fail_next(fault, count)

    def vendor_actions(self) -> list[tuple[str, str, str]]:
        return list(self.sandbox.decisions)


KIT = GreenhouseKit
