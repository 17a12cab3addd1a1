"""How services and the coordinator queue Slack work: jobs in, outbox rows out, delivery kicked.

Why a small object: the decision path and the sync both need the same three things (the plain
facts effects decide from, jobs turned into rows with the Home settle delay, a kick), and neither
should know the store's tables or the deliverer's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta

from bot.config import Config
from bot.outbox.effects import Audience, Change, after_claim, after_decision
from bot.outbox.jobs import Job, Priority, entries
from connectors.base import ApprovalItem
from store import cards, identities, subscriptions
from store import outbox as table
from store import reach as lookups
from store.outbox import Entry, Session
from store.repo import Store, now_utc


class Outbox:
    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        kick: Callable[[bool], None],
        home_settle: float = 2.0,
        per_user_listing: Mapping[str, bool] | None = None,
        email_linked: Mapping[str, bool] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        # Connectors whose vendor lists per linked user (an item naming nobody waits on nobody).
        self.per_user_listing = dict(per_user_listing or {})
        # Connectors whose people act through their email mapping (no linking first).
        self.email_linked = dict(email_linked or {})
        self._kick = kick
        # Seconds a changed App Home waits before it is republished, so a burst of changes (a sync,
        # several clicks) gives one views.publish instead of one each.
        self.home_settle = timedelta(seconds=home_settle)

    def kick(self, *, urgent: bool = False) -> None:
        """Wake delivery; `urgent` after queuing the card of someone who just acted (it cuts a
        delivery pass of other work short, so that card goes next)."""
        self._kick(urgent)

    def entries(self, jobs: Sequence[Job]) -> list[Entry]:
        return entries(jobs, home_settle=self.home_settle)

    async def enqueue(self, jobs: Sequence[Job], *, session: Session | None = None) -> None:
        """Queue jobs: inside the caller's transaction when given one (atomic with the change that
        caused them; the caller kicks delivery once it committed), else in a transaction of their
        own, and delivery is kicked."""
        rows = self.entries(jobs)
        if session is not None:
            await table.enqueue(session, entries=rows, now=now_utc())
            return
        await table.enqueue_now(self.store.db, entries=rows)
        self.kick(urgent=any(j.priority == Priority.ACTED for j in jobs))

    async def decision_entries(
        self, *, item_id: int, before: ApprovalItem, after: ApprovalItem | None, decided: bool = False
    ) -> list[Entry]:
        """The rows a finished click (or a released claim) queues with the claim's release: every
        copy redrawn first; with the vendor's new snapshot, its flow notices and Homes too."""
        audience = await self.audience_now(
            connector=before.connector,
            item_ids=[item_id],
            emails=addresses([before, *([after] if after else [])]),
        )
        if after is None:
            return self.entries(after_claim(item_id, audience.cards.get(item_id, ())))
        return self.entries(after_decision(Change(item_id, before, after), audience, decided=decided))

    async def audience(
        self,
        session: Session,
        *,
        connector: str,
        item_ids: Sequence[int],
        emails: Iterable[str] = (),
    ) -> Audience:
        """The plain facts effects need about `connector` and these items, all read in `session`
        (a second pooled connection held beside the caller's transaction can empty the pool under a
        burst); `emails`: the items' approvers' addresses, whose stored Slack answers are read
        (never asked)."""
        config = self.config.connector(connector)
        subscribed = (await subscriptions.channels(session, connectors=[connector]))[connector]
        default = self.config.notify_channel
        flow = [default, *(c for c in subscribed if c != default)] if default else subscribed
        linked = await identities.pairs_in(session, connector=connector)
        return Audience(
            channel=config.channel if config else None,
            slack_by_vendor={vendor: slack for slack, vendor, broken in linked if not broken},
            flow_channels=flow,
            cards=await cards.targets(session, item_ids=item_ids),
            linked=[(slack, vendor) for slack, vendor, _ in linked],
            slack_by_email={
                e: k.slack_user_id for e, k in (await lookups.lookups_in(session, emails=emails)).items()
            },
            channel_copy=config.channel_copy if config else "always",
            per_user_listing=self.per_user_listing.get(connector, False),
            email_linked=self.email_linked.get(connector, False),
        )

    async def audience_now(
        self, *, connector: str, item_ids: Sequence[int], emails: Iterable[str] = ()
    ) -> Audience:
        async with self.store.db.session() as s:
            return await self.audience(s, connector=connector, item_ids=item_ids, emails=emails)


def addresses(items: Iterable[ApprovalItem]) -> set[str]:
    """Every address of the approvers these items name (what the audience looks up)."""
    return {e for item in items for p in item.recipients for e in p.all_emails}
