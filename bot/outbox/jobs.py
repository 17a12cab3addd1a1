"""Typed outbox jobs: one small class per kind of Slack work, each with a key and a priority.

Why typed: the deliverer, the effects and the store agree on one shape per kind instead of dicts
built in five places. The key coalesces repeats (ten changes of a card while it waits are one
update); the priority puts the card someone just clicked before a wave of other work.
"""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from store.outbox import Entry


class Priority(enum.IntEnum):
    ACTED = 0  # the card of an item someone just acted on: they are looking at it
    CARDS = 1  # new cards and updates of items decided elsewhere
    NOTICES = 2  # flow notices and their thread replies in subscribed channels
    BACKGROUND = 3  # reminders, escalations, digests, App Home republishes


# One encoder for every job's payload, the same text as json.dumps(..., sort_keys=True): dumps
# builds a new encoder on each call when given options, a sixth of the cost of a reminder job.
_payload = json.JSONEncoder(sort_keys=True).encode


@dataclass(frozen=True)
class Job(abc.ABC):
    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Equal for work that coalesces: a newer request of the same key replaces a waiting one."""

    @property
    def priority(self) -> Priority:
        return Priority.BACKGROUND

    @property
    def item_id(self) -> int | None:
        return getattr(self, "item", None)

    @property
    def target(self) -> str | None:
        """The delivery lane: jobs of one lane go in order, lanes do not wait on each other."""
        return None

    def entry(self, delay: timedelta = timedelta(0)) -> Entry:
        return Entry(
            key=self.key,
            kind=self.kind,
            priority=int(self.priority),
            # The fields as they are (flat: ints, strings, bools); dataclasses.asdict's deep copy
            # was a third of a reminder pass's CPU (the reminders benchmark).
            payload=_payload(vars(self)),
            item_id=self.item_id,
            target=self.target,
            delay=delay,
        )


@dataclass(frozen=True)
class CardJob(Job):
    """Make one copy of an item's card true (post it, or update it to the item as it is now)."""

    kind: ClassVar[str] = "card"
    item: int
    to: str  # "channel:C…", "user:U…" or "email:…"
    acted: bool = False

    @property
    def key(self) -> str:
        return f"card:{self.item}:{self.to}"

    @property
    def priority(self) -> Priority:
        return Priority.ACTED if self.acted else Priority.CARDS

    @property
    def target(self) -> str:
        return self.to


@dataclass(frozen=True)
class _NoticeJob(Job):
    """Work about one item in one subscribed channel."""

    item: int
    channel: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.item}:{self.channel}"

    @property
    def priority(self) -> Priority:
        return Priority.NOTICES

    @property
    def target(self) -> str:
        return self.channel


@dataclass(frozen=True)
class FlowJob(_NoticeJob):
    """The one status message of a flow in a subscribed channel, posted or updated in place."""

    kind: ClassVar[str] = "flow"


@dataclass(frozen=True)
class ThreadReplyJob(_NoticeJob):
    """Under a flow's status message, a reply per decision made through the bot not yet replied."""

    kind: ClassVar[str] = "reply"


@dataclass(frozen=True)
class ReminderJob(Job):
    """A reminder in the thread of one card (broadcast to the DM when it is a person's copy)."""

    kind: ClassVar[str] = "reminder"
    item: int
    channel: str
    ts: str
    slack_user: str | None
    title: str
    number: int
    total: int

    @property
    def key(self) -> str:
        return f"reminder:{self.item}:{self.channel}:{self.number}"

    @property
    def target(self) -> str:
        return self.channel


@dataclass(frozen=True)
class EscalationJob(Job):
    """After the last reminder: the connector's channel learns who has not acted."""

    kind: ClassVar[str] = "escalation"
    item: int
    channel: str
    slack_user: str
    title: str
    reminders: int

    @property
    def key(self) -> str:
        return f"escalation:{self.item}:{self.slack_user}"

    @property
    def target(self) -> str:
        return self.channel


@dataclass(frozen=True)
class DigestJob(Job):
    """The morning DM listing what waits on one person (rendered when sent)."""

    kind: ClassVar[str] = "digest"
    slack_user: str
    day: str

    @property
    def key(self) -> str:
        return f"digest:{self.slack_user}:{self.day}"

    @property
    def target(self) -> str:
        return f"user:{self.slack_user}"


@dataclass(frozen=True)
class HomeJob(Job):
    """Republish one person's App Home (queued a moment late so a burst of changes gives one)."""

    kind: ClassVar[str] = "home"
    slack_user: str

    @property
    def key(self) -> str:
        return f"home:{self.slack_user}"

    @property
    def target(self) -> str:
        return self.slack_user


@dataclass(frozen=True)
class TellJob(Job):
    """A DM to one person whose own answer was lost (a click settled by reconciliation)."""

    kind: ClassVar[str] = "tell"
    slack_user: str
    text: str
    about: str  # what it answers (the click), so a repeat coalesces

    @property
    def key(self) -> str:
        return f"tell:{self.slack_user}:{self.about}"[:200]

    @property
    def priority(self) -> Priority:
        return Priority.ACTED

    @property
    def target(self) -> str:
        return f"user:{self.slack_user}"


KINDS: dict[str, type[Job]] = {
    cls.kind: cls
    for cls in (CardJob, FlowJob, ThreadReplyJob, ReminderJob, EscalationJob, DigestJob, HomeJob, TellJob)
}


def job_of(*, kind: str, payload: str | None, item_id: int | None, target: str | None) -> Job | None:
    """The job an outbox row holds (None: an unknown kind or a payload that no longer fits).

    Rows queued before jobs were typed carry no payload: their item id and target say it all."""
    cls = KINDS.get(kind)
    if cls is None:
        return None
    try:
        if payload is not None:
            fields: dict[str, Any] = json.loads(payload)
            return cls(**fields)
        if cls is CardJob and item_id is not None and target:
            return CardJob(item=item_id, to=target)
        if cls is FlowJob and item_id is not None and target:
            return FlowJob(item=item_id, channel=target)
        if cls is HomeJob and target:
            return HomeJob(slack_user=target)
    except (TypeError, ValueError):
        return None
    return None


def entries(jobs: Iterable[Job], *, home_settle: timedelta = timedelta(0)) -> list[Entry]:
    """Outbox rows for these jobs; Home republishes wait `home_settle` so a burst gives one."""
    return [j.entry(home_settle if isinstance(j, HomeJob) else timedelta(0)) for j in jobs]
