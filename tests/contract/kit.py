"""What each vendor gives the contract suite: its sandbox, driven like the real vendor.

A vendor adds `tests/contract/kits/<type>.py` defining `KIT = <subclass of ContractKit>`; the
suite in test_contract.py runs every test against every kit it finds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Literal

from connectors.base import Actor, Connector, LinkedUser, Status

Fault = Literal["500", "timeout", "drop"]


class ContractKit(ABC):
    type: ClassVar[str]
    # False for vendors whose API cannot approve or reject (Greenhouse, Approval Path).
    can_approve: ClassVar[bool] = True
    # "credentials": verify() is tested; "email": identify() is tested.
    link_mode: ClassVar[Literal["credentials", "email"]] = "credentials"

    @abstractmethod
    async def start(self) -> None:
        """Start the sandbox on 127.0.0.1, port 0."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def build(self, *, timeout: float = 2.0) -> Connector:
        """A connector pointed at the sandbox with its service settings; short timeouts for tests."""

    @abstractmethod
    def linked(self) -> list[LinkedUser]:
        """The linked users the bot would hand to fetch_pending (at least the approver)."""

    @abstractmethod
    def approver(self) -> Actor:
        """May act on every item seed_pending creates."""

    @abstractmethod
    def outsider(self) -> Actor:
        """A real vendor user the vendor refuses on those items."""

    def good_credentials(self) -> Mapping[str, str]:
        return self.approver().credentials

    def bad_credentials(self) -> Mapping[str, str]:
        return {key: "wrong-" + value for key, value in self.approver().credentials.items()}

    def approver_email(self) -> str:
        email = self.approver().email
        assert email
        return email

    @abstractmethod
    async def seed_pending(self) -> str:
        """Create a new pending item the approver can act on alone; return its external id."""

    @abstractmethod
    async def decide_elsewhere(self, external_id: str, status: Status) -> None:
        """Decide the item at the vendor, outside the bot (as someone in the vendor's UI would)."""

    @abstractmethod
    async def fail_next(self, fault: Fault, count: int = 1) -> None:
        """The next `count` requests fail: "500" answers 500; "timeout" answers after the client's
        timeout but still applies the request; "drop" closes the connection without applying it."""

    @abstractmethod
    def vendor_actions(self) -> list[tuple[str, str, str]]:
        """(external id, action, vendor user id) for each decision the sandbox applied."""
