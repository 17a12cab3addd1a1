"""Greenhouse (Harvest) approval flows: listing, due groups, reassign and request, as the clicker.

Harvest has no call to approve or reject, so this connector never offers Approve/Reject: cards
tell approvers it is their turn, show what they need to decide, link to Greenhouse, and offer what
the API can do (reassign an approver, request approvals on a flow not yet started).

Identity without secrets: every call uses the organisation's Harvest key; a write names the person
in `On-Behalf-Of`. That header is only ever the clicking person's own Greenhouse user id
(`Actor.vendor_user_id`), re-checked against their email before each write, never an id taken from
the card, the inputs or the config.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from connectors.base import (
    Action,
    Actor,
    ApprovalItem,
    Capabilities,
    Connector,
    LinkedUser,
    Requestable,
    VendorIdentity,
)
from connectors.errors import AlreadyDecided, InvalidInput, NotAllowed, NotFound, Unsupported
from connectors.greenhouse import client as wire
from connectors.greenhouse import mapping
from connectors.greenhouse.pacing import HARVEST_WINDOW_SECONDS
from connectors.greenhouse.settings import GreenhouseSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Job names, candidate names and user names change rarely; re-reading them on every poll would
# spend Harvest's 50-per-10-seconds budget on nothing. Offers and flows are always read fresh.
CONTEXT_TTL_SECONDS = 900.0


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the rest and raise that failure itself."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [t.result() for t in tasks]


def _positive_id(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


class _Cache:
    """A small time-to-live memo of context reads (None is a remembered "not available")."""

    MAX_ENTRIES = 10_000  # past this, expired entries are dropped

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, Any]] = {}

    def get(self, key: tuple[str, int]) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return False, None
        return True, entry[1]

    def put(self, key: tuple[str, int], value: Any) -> None:
        now = self._clock()
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if e[0] >= now}
        self._entries[key] = (now + self._ttl, value)


class _Reads:
    """What one poll (or one refresh) has read so far, so nothing is read twice in it."""

    def __init__(self, client: wire.HarvestClient, cache: _Cache) -> None:
        self.client = client
        self.cache = cache
        self.pending: dict[int, list[wire.PendingApproval]] = {}
        self.flows: dict[int, wire.ApprovalFlow] = {}

    async def load_pending(self, user_ids: Iterable[int]) -> None:
        missing = sorted(set(user_ids) - set(self.pending))

        async def one(user_id: int) -> list[wire.PendingApproval]:
            try:
                return await self.client.pending_approvals(user_id)
            except NotFound:
                log.info("greenhouse user %s is gone; no pending approvals", user_id)
                return []

        for user_id, rows in zip(missing, await _all(one(u) for u in missing), strict=True):
            self.pending[user_id] = rows

    async def load_flows(self, flow_ids: Iterable[int]) -> None:
        missing = sorted(set(flow_ids) - set(self.flows))

        async def one(flow_id: int) -> wire.ApprovalFlow | None:
            try:
                return await self.client.approval_flow(flow_id)
            except NotFound:
                return None  # deleted between the listing and now

        for flow in await _all(one(f) for f in missing):
            if flow is not None:
                self.flows[flow.id] = flow

    async def _context(
        self, kind: str, ident: int, read: Callable[[int], Awaitable[T]], cached: bool
    ) -> T | None:
        if cached:
            hit, remembered = self.cache.get((kind, ident))
            if hit:
                return cast("T | None", remembered)
        value: T | None
        try:
            value = await read(ident)
        except (NotFound, NotAllowed) as exc:
            # The record is gone, or the Harvest key may not read this endpoint: show less.
            log.info("greenhouse %s %s unavailable for the card: %s", kind, ident, exc)
            value = None
        if cached:
            self.cache.put((kind, ident), value)
        return value

    async def contexts(self, flows: Sequence[wire.ApprovalFlow]) -> dict[int, mapping.Context]:
        job_ids = sorted({f.job_id for f in flows if f.job_id})
        offer_ids = sorted({f.offer_id for f in flows if f.offer_id and f.approval_type == "offer_candidate"})
        approver_ids = {a.id for f in flows for g in f.approver_groups for a in g.approvers}
        requester_ids = sorted(
            {f.requested_by_user_id for f in flows if f.requested_by_user_id} - approver_ids
        )
        jobs = await _all(self._context("job", j, self.client.job, True) for j in job_ids)
        offers = await _all(self._context("offer", o, self.client.offer, False) for o in offer_ids)
        users = await _all(self._context("user", u, self.client.user, True) for u in requester_ids)
        candidate_ids = sorted({o.candidate_id for o in offers if o is not None and o.candidate_id})
        candidates = await _all(
            self._context("candidate", c, self.client.candidate, True) for c in candidate_ids
        )

        by_job = dict(zip(job_ids, jobs, strict=True))
        by_offer = dict(zip(offer_ids, offers, strict=True))
        by_user = dict(zip(requester_ids, users, strict=True))
        by_candidate = dict(zip(candidate_ids, candidates, strict=True))
        result = {}
        for flow in flows:
            offer = by_offer.get(flow.offer_id) if flow.offer_id else None
            result[flow.id] = mapping.Context(
                job=by_job.get(flow.job_id) if flow.job_id else None,
                offer=offer,
                candidate=by_candidate.get(offer.candidate_id) if offer and offer.candidate_id else None,
                requester=by_user.get(flow.requested_by_user_id) if flow.requested_by_user_id else None,
            )
        return result


class GreenhouseConnector(Connector):
    type = "greenhouse"
    vendor_label = "Greenhouse"
    capabilities = Capabilities(
        approve=False,
        reject=False,
        reassign=True,
        request=True,
        link_mode="email",
        per_user_listing=True,
        notes=(
            "Greenhouse's Harvest API cannot approve or reject: cards link to Greenhouse, where "
            "approvers decide (or from Greenhouse's approval email).",
            "People are matched by Slack email to Greenhouse users; admins may pin mappings in the config.",
        ),
    )
    credential_fields = ()

    def __init__(
        self,
        name: str,
        settings: GreenhouseSettings,
        *,
        timeout: float = 15.0,
        rate_window: float = HARVEST_WINDOW_SECONDS,
        backoff_base: float = 0.5,
        context_ttl: float = CONTEXT_TTL_SECONDS,
    ) -> None:
        super().__init__(name)
        self._api_version = settings.api_version
        self._ui_url = settings.ui_url.rstrip("/")
        self._pinned = dict(settings.users)
        self._client = wire.HarvestClient(
            settings.base_url,
            settings.api_key.get_secret_value(),
            api_version=settings.api_version,
            timeout=timeout,
            rate_window=rate_window,
            backoff_base=backoff_base,
        )
        self._cache = _Cache(context_ttl)

    def __repr__(self) -> str:
        return f"GreenhouseConnector({self.name!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ listing

    def _mapped_ids(self, linked: Sequence[LinkedUser]) -> set[int]:
        ids = set(self._pinned.values())
        for user in linked:
            user_id = _positive_id(user.vendor_user_id)
            if user_id is None:
                log.warning("linked Slack user %s has no usable Greenhouse user id", user.slack_user_id)
                continue
            ids.add(user_id)
        return ids

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        """Flows in progress that a mapped person takes part in (Harvest lists approvals per user).

        Flows not yet requested are left out: nobody has been asked yet. They are what
        `requestable` offers.
        """
        reads = _Reads(self._client, self._cache)
        await reads.load_pending(self._mapped_ids(linked))
        flow_ids = {
            row.approval_flow_id
            for rows in reads.pending.values()
            for row in rows
            if row.approval_flow_status in (None, "pending")
        }
        await reads.load_flows(flow_ids)
        flows = [f for _, f in sorted(reads.flows.items()) if not mapping.is_final(f)]
        return await self._items(flows, reads, started=True)

    async def _items(
        self, flows: Sequence[wire.ApprovalFlow], reads: _Reads, *, started: bool | None = None
    ) -> list[ApprovalItem]:
        """Items for `flows`; with `started`, only the flows that have (or have not) been requested."""
        # Whose pending lists say where each flow stands: the approvers of the groups that are
        # due if the flow has started; then of any group their rows say is due after all.
        await reads.load_pending(a.id for f in flows for g in mapping.due_if_started(f) for a in g.approvers)
        await reads.load_pending(u for f in flows for u in mapping.due_approver_ids(f, reads.pending))
        if started is not None:
            flows = [f for f in flows if mapping.is_started(f, reads.pending) is started]
        contexts = await reads.contexts(flows)
        return [
            mapping.build_item(self.name, flow, reads.pending, contexts[flow.id], ui_url=self._ui_url)
            for flow in flows
        ]

    async def _item(self, flow_id: int, reads: _Reads | None = None) -> ApprovalItem:
        reads = reads or _Reads(self._client, self._cache)
        flow = await self._client.approval_flow(flow_id)
        reads.flows[flow.id] = flow
        return (await self._items([flow], reads))[0]

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        flow_id = _positive_id(item.external_id)
        if flow_id is None:
            raise NotFound(f"{item.external_id!r} is not a Greenhouse approval flow id")
        return await self._item(flow_id)

    # ------------------------------------------------------------------ identity

    async def identify(self, email: str) -> VendorIdentity | None:
        """Pinned mappings first, then Greenhouse's lookup by (primary or secondary) email."""
        key = email.strip().lower()
        if not key:
            return None
        pinned = self._pinned.get(key)
        if pinned is not None:
            try:
                user = await self._client.user(pinned)
            except NotFound:
                log.warning("users: %s is pinned to Greenhouse user %s, which does not exist", key, pinned)
                return None
            except NotAllowed:
                return VendorIdentity(str(pinned), "", email)  # the key may not read users: trust the pin
            return None if user.disabled else VendorIdentity(str(user.id), user.name, email)
        for user in await self._client.users_by_email(key):
            addresses = {e.lower() for e in [*user.emails, user.primary_email_address or ""] if e}
            if not user.disabled and key in addresses:
                return VendorIdentity(str(user.id), user.name, email)
        return None

    async def _on_behalf_of(self, actor: Actor) -> int:
        """The clicker's own Greenhouse id, confirmed against their email; the only On-Behalf-Of."""
        user_id = _positive_id(actor.vendor_user_id)
        if user_id is None:
            raise NotAllowed(
                "no Greenhouse user is linked to this Slack user",
                reason="not_linked",
                detail="Your Slack email does not match a Greenhouse user.",
            )
        if actor.email:
            identity = await self.identify(actor.email)
            if identity is None or identity.user_id != str(user_id):
                raise NotAllowed(
                    f"Slack user {actor.slack_user_id} is linked to Greenhouse user {user_id}, "
                    "but their email no longer maps to it",
                    reason="wrong_user",
                    detail="Your Slack email no longer matches the Greenhouse user you were linked to.",
                )
        return user_id

    # ------------------------------------------------------------------ actions

    async def act(
        self,
        item: ApprovalItem,
        action: Action,
        actor: Actor,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> ApprovalItem:
        if action in (Action.APPROVE, Action.REJECT):
            raise Unsupported(
                "Greenhouse's API cannot approve or reject: decide in Greenhouse or from its approval email"
            )
        flow_id = _positive_id(item.external_id)
        if flow_id is None:
            raise NotFound(f"{item.external_id!r} is not a Greenhouse approval flow id")
        if action is Action.REASSIGN:
            return await self._reassign(flow_id, actor, inputs or {})
        if action is Action.REQUEST:
            return await self._request(flow_id, actor)
        raise Unsupported(f"Greenhouse cannot {action.value} an approval flow")

    async def _reassign(self, flow_id: int, actor: Actor, inputs: Mapping[str, str]) -> ApprovalItem:
        on_behalf_of = await self._on_behalf_of(actor)
        flow = await self._client.approval_flow(flow_id)
        if mapping.is_final(flow):
            item = await self._item(flow_id)
            raise AlreadyDecided(f"approval flow {flow_id} is {flow.approval_status}", status=item.status)
        choices = mapping.reassign_choices(flow)
        picked = (inputs.get("replace") or "").strip()
        if not picked and len(choices) == 1:
            picked = next(iter(choices))
        if picked not in choices:
            raise InvalidInput(
                f"{picked!r} is not an approver of an undecided group of flow {flow_id}",
                field="replace",
                detail="That approver is no longer in a group that has yet to decide.",
            )
        group, old = choices[picked]
        new = _positive_id(inputs.get("new_approver"))
        if new is None:
            raise InvalidInput(
                "the new approver is not a Greenhouse user",
                field="new_approver",
                detail="The person you picked has no Greenhouse account the bot can find by their email.",
            )
        if new == old.id or new in {a.id for a in group.approvers}:
            raise InvalidInput(
                f"user {new} is already an approver of that group",
                field="new_approver",
                detail="The person you picked already approves in that group.",
            )
        await self._client.acting_as(on_behalf_of).replace_approver(
            group.id, remove_user_id=old.id, add_user_id=new
        )
        return await self._item(flow_id)

    async def _request(self, flow_id: int, actor: Actor) -> ApprovalItem:
        on_behalf_of = await self._on_behalf_of(actor)
        await self._client.acting_as(on_behalf_of).request_approvals(flow_id)
        return await self._item(flow_id)

    async def requestable(self, actor: Actor, target: str | None = None) -> list[Requestable]:
        """Flows not yet started: on the job `target` (an id or a Greenhouse job URL), or else
        the ones the actor is an approver of. Whether they may request is Greenhouse's call."""
        on_behalf_of = await self._on_behalf_of(actor)
        reads = _Reads(self._client, self._cache)
        if target and target.strip():
            job_id = _job_id(target)
            if job_id is None:
                raise InvalidInput(
                    f"{target!r} is not a Greenhouse job",
                    field="target",
                    detail="Give a Greenhouse job id or a job link (…/plans/12345).",
                )
            flows = await self._client.job_approval_flows(job_id)
            reads.flows.update({f.id: f for f in flows})
        else:
            await reads.load_pending([on_behalf_of])
            waiting = {r.approval_flow_id for r in reads.pending[on_behalf_of] if r.status == "waiting"}
            await reads.load_flows(waiting)
        candidates = [
            f for _, f in sorted(reads.flows.items()) if not mapping.is_final(f) and f.approver_groups
        ]
        items = await self._items(candidates, reads, started=False)
        return [Requestable(id=i.external_id, title=i.title, description=_groups_line(i)) for i in items]

    async def request(
        self, actor: Actor, requestable_id: str, inputs: Mapping[str, str] | None = None
    ) -> ApprovalItem | None:
        flow_id = _positive_id(requestable_id)
        if flow_id is None:
            raise NotFound(f"{requestable_id!r} is not a Greenhouse approval flow id")
        return await self._request(flow_id, actor)

    # ------------------------------------------------------------------ health

    async def check(self) -> str:
        await self._client.any_user()
        for email, user_id in sorted(self._pinned.items()):
            try:
                await self._client.user(user_id)
            except NotFound as exc:
                raise NotFound(
                    f"users: {email} is pinned to Greenhouse user {user_id}, which does not exist"
                ) from exc
        return f"reachable (Harvest {self._api_version}), {len(self._pinned)} pinned users"


def _job_id(target: str) -> int | None:
    text = target.strip()
    match = re.search(r"/plans/(\d+)", text)
    return _positive_id(match.group(1) if match else text)


def _groups_line(item: ApprovalItem) -> str:
    parts = []
    for group in item.groups:
        names = ", ".join(p.label for p in group.approvers) or "no approvers"
        parts.append(f"{group.name} ({group.required} of {len(group.approvers)}): {names}")
    order = next((f.value for f in item.fields if f.label == "Order"), "")
    return "; ".join(parts) + (f". {order}." if order else "")
