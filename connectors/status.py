"""Where an approval stands at the vendor.

Its own module so that `connectors.errors` (whose `AlreadyDecided` carries a status) and
`connectors.base` (whose default methods raise `Unsupported`) need not import each other.
`connectors.base` re-exports it: callers keep importing the domain from there.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where an approval stands at the vendor."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self is not Status.PENDING
