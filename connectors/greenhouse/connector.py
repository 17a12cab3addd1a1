"""Greenhouse (Harvest) approval flows: listing, due groups, reassign and request, as the clicker.

Harvest has no call to approve or reject, so this connector never offers Approve/Reject: cards
tell approvers it is their turn, show what they need to decide, link to Greenhouse, and offer what
the API can do (reassign an approver, request approvals on a flow not yet started).

Identity without per-user secrets: listing uses a token minted for the configured service user (a
Site Admin); a write uses a token minted for the clicking person's own Greenhouse user id
(`Actor.vendor_user_id`, re-checked against their email before each write), never an id taken from
the card, the inputs or the config.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

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

# Job names, candidate names, offers and user addresses change rarely; re-reading them on every
# poll would spend Harvest's budget (75 per 30 seconds in its example) on nothing.
CONTEXT_TTL_SECONDS = 900.0
# A flow's groups and slots are re-read at least this often even when its due slots look unchanged.
STRUCTURE_TTL_SECONDS = 300.0


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
    """Reads for one poll (or one refresh); users, jobs, offers and candidates through the TTL
    cache, so a poll where nothing changed reads none of them again."""

    def __init__(self, client: wire.HarvestClient, cache: _Cache) -> None:
        self.client = client
        self.cache = cache

    async def _cached(
        self, kind: str, ids: Iterable[int], read: Callable[[list[int]], Awaitable[Sequence[Any]]]
    ) -> dict[int, Any]:
        found: dict[int, Any] = {}
        missing: list[int] = []
        for ident in sorted(set(ids)):
            hit, value = self.cache.get((kind, ident))
            if hit:
                if value is not None:
                    found[ident] = value
            else:
                missing.append(ident)
        if missing:
            try:
                rows = await read(missing)
            except NotAllowed as exc:
                # The credential lacks this scope: the card shows less, and says nothing false.
                log.info("greenhouse %s unavailable for the cards: %s", kind, exc)
                rows = []
            by_id = {row.id: row for row in rows}
            for ident in missing:
                self.cache.put((kind, ident), by_id.get(ident))
                if ident in by_id:
                    found[ident] = by_id[ident]
        return found

    async def users(self, ids: Iterable[int]) -> dict[int, wire.User]:
        return await self._cached("user", ids, self.client.users)

    async def contexts(self, flows: Sequence[mapping.Flow]) -> dict[int, mapping.Context]:
        user_ids = {s.user_id for f in flows for s in f.slots}
        user_ids |= {f.flow.requested_by_id for f in flows if f.flow.requested_by_id}
        users = await self.users(user_ids)
        jobs = await self._cached("job", (f.flow.job_id for f in flows if f.flow.job_id), self.client.jobs)
        offer_ids = [
            f.flow.offer_id for f in flows if f.flow.offer_id and f.flow.approval_type == "offer_candidate"
        ]
        offers = await self._cached("offer", offer_ids, self.client.offers)
        candidates = await self._cached(
            "candidate", (o.candidate_id for o in offers.values() if o.candidate_id), self.client.candidates
        )
        result = {}
        for item in flows:
            flow = item.flow
            offer = offers.get(flow.offer_id) if flow.offer_id else None
            result[flow.id] = mapping.Context(
                users=users,
                job=jobs.get(flow.job_id) if flow.job_id else None,
                offer=offer,
                candidate=candidates.get(offer.candidate_id) if offer and offer.candidate_id else None,
            )
        return result

    async def flows(self, flows: Sequence[wire.ApprovalFlow]) -> list[mapping.Flow]:
        """Each flow with all its groups and every slot of them (three calls per 50 flows)."""
        if not flows:
            return []
        groups = await self.client.groups_of_flows(f.id for f in flows)
        slots = await self.client.approvers_of_groups(g.id for g in groups)
        by_flow: dict[int, list[wire.ApproverGroup]] = {}
        for group in groups:
            by_flow.setdefault(group.approval_flow_id, []).append(group)
        by_group: dict[int, list[wire.Approver]] = {}
        for slot in slots:
            by_group.setdefault(slot.approver_group_id, []).append(slot)
        return [
            mapping.Flow(
                f, by_flow.get(f.id, []), [s for g in by_flow.get(f.id, []) for s in by_group.get(g.id, [])]
            )
            for f in flows
        ]


class GreenhouseConnector(Connector):
    type = "greenhouse"
    vendor_label = "Greenhouse"
    capabilities = Capabilities(
        approve=False,
        reject=False,
        reassign=True,
        request=True,
        link_mode="email",
        per_user_listing=False,
        notes=(
            "Greenhouse's Harvest API cannot approve or reject: cards link to Greenhouse, where "
            "approvers decide (or from Greenhouse's approval email).",
            "Due approvers are found across the organisation and carded by their Greenhouse email; "
            "acting (Reassign, Request approvals) maps the clicker's Slack email to their Greenhouse user.",
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
        structure_ttl: float = STRUCTURE_TTL_SECONDS,
    ) -> None:
        super().__init__(name)
        self._api_version = settings.api_version
        self._ui_url = settings.ui_url.rstrip("/")
        self._pinned = dict(settings.users)
        self.webhook_secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        self._client = wire.HarvestClient(
            settings.base_url,
            auth_url=settings.auth_url,
            client_id=settings.client_id.get_secret_value(),
            client_secret=settings.client_secret.get_secret_value(),
            service_user_id=settings.service_user_id,
            api_version=settings.api_version,
            timeout=timeout,
            rate_window=rate_window,
            backoff_base=backoff_base,
        )
        self._cache = _Cache(context_ttl)
        # Flow structure (all groups and slots), reused while the flow's due slots and version
        # are what they were: a no-change poll then reads only the approvers pages and the flows.
        self._structure_ttl = structure_ttl
        self._structures: dict[int, tuple[float, tuple[Any, ...], mapping.Flow]] = {}
        self._group_flow: dict[int, int] = {}  # approver group → its flow (never changes)

    def __repr__(self) -> str:
        return f"GreenhouseConnector({self.name!r})"

    @property
    def client(self) -> wire.HarvestClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    def forget(self, flow_id: int | None = None) -> None:
        """Drop what is remembered of a flow (all flows with None): a webhook said it changed."""
        if flow_id is None:
            self._structures.clear()
        else:
            self._structures.pop(flow_id, None)

    # ------------------------------------------------------------------ listing

    async def fetch_pending(self, linked: Sequence[LinkedUser] = ()) -> list[ApprovalItem]:
        """Every pending flow with a due approver, across the organisation (the service user is a
        Site Admin). Linked users are not needed: due approvers are carded by their email."""
        reads = _Reads(self._client, self._cache)
        due = await self._client.due_approvers()
        unknown = {r.approver_group_id for r in due} - set(self._group_flow)
        if unknown:
            for group in await self._client.groups(unknown):
                self._group_flow[group.id] = group.approval_flow_id
        rows_by_flow: dict[int, list[wire.Approver]] = {}
        for row in due:
            flow_id = self._group_flow.get(row.approver_group_id)
            if flow_id is not None:
                rows_by_flow.setdefault(flow_id, []).append(row)
        flows = [f for f in await self._client.flows(rows_by_flow) if f.approval_status == "pending"]
        built = await self._structured(flows, rows_by_flow, reads)
        items = await self._build(built, reads)
        return [i for i in items if i.recipients]

    async def _structured(
        self,
        flows: Sequence[wire.ApprovalFlow],
        rows_by_flow: Mapping[int, Sequence[wire.Approver]],
        reads: _Reads,
    ) -> list[mapping.Flow]:
        now = time.monotonic()
        result: dict[int, mapping.Flow] = {}
        stale: list[wire.ApprovalFlow] = []
        signatures: dict[int, tuple[Any, ...]] = {}
        for flow in flows:
            signature = (
                flow.version,
                flow.requested_by_id,
                tuple(sorted(r.model_dump_json() for r in rows_by_flow.get(flow.id, ()))),
            )
            signatures[flow.id] = signature
            held = self._structures.get(flow.id)
            if held is not None and held[0] > now and held[1] == signature:
                result[flow.id] = mapping.Flow(flow, held[2].groups, held[2].slots)
            else:
                stale.append(flow)
        for chunk in [stale[i : i + wire.MAX_IDS] for i in range(0, len(stale), wire.MAX_IDS)]:
            for fresh in await reads.flows(chunk):
                result[fresh.flow.id] = fresh
                self._structures[fresh.flow.id] = (
                    now + self._structure_ttl,
                    signatures[fresh.flow.id],
                    fresh,
                )
        live = {f.id for f in flows}
        for gone in set(self._structures) - live:
            del self._structures[gone]
        return [result[f.id] for f in flows]

    async def _build(self, flows: Sequence[mapping.Flow], reads: _Reads) -> list[ApprovalItem]:
        contexts = await reads.contexts(flows)
        return [
            mapping.build_item(self.name, flow, contexts[flow.flow.id], ui_url=self._ui_url) for flow in flows
        ]

    async def _read_flow(self, flow_id: int, reads: _Reads) -> mapping.Flow:
        found = await self._client.flows([flow_id])
        if not found:
            raise NotFound(f"Greenhouse approval flow {flow_id} not found")
        (flow,) = await reads.flows(found[:1])
        return flow

    async def _item(self, flow_id: int) -> ApprovalItem:
        reads = _Reads(self._client, self._cache)
        flow = await self._read_flow(flow_id, reads)
        return (await self._build([flow], reads))[0]

    async def refresh(self, item: ApprovalItem) -> ApprovalItem:
        """Always read fresh (never the structure cache): this is the truth after a click or a webhook."""
        flow_id = _positive_id(item.external_id)
        if flow_id is None:
            raise NotFound(f"{item.external_id!r} is not a Greenhouse approval flow id")
        self.forget(flow_id)
        return await self._item(flow_id)

    # ------------------------------------------------------------------ identity

    async def identify(self, email: str) -> VendorIdentity | None:
        """Pinned mappings first, then Greenhouse's users by primary or secondary address."""
        key = email.strip().lower()
        if not key:
            return None
        pinned = self._pinned.get(key)
        if pinned is not None:
            users = await self._client.users([pinned])
            if not users:
                log.warning("users: %s is pinned to Greenhouse user %s, which does not exist", key, pinned)
                return None
            return None if users[0].deactivated else VendorIdentity(str(pinned), users[0].label, email)
        for user in await self._client.users_by_email(key):
            if not user.deactivated and key in user.addresses:
                return VendorIdentity(str(user.id), user.label, email)
        return None

    async def _acting_id(self, actor: Actor) -> int:
        """The clicker's own Greenhouse id, confirmed against their email: the only `sub` of a write."""
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

    def permits(self, item: ApprovalItem, action: Action, actor: Actor) -> str | None:
        """Reassign: an approver hands over only their own slot; the requester may reassign any."""
        if action is Action.REASSIGN and not mapping.permits_reassign(item, actor.vendor_user_id):
            return mapping.REASSIGN_WHO
        return None

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
        acting = await self._acting_id(actor)
        reads = _Reads(self._client, self._cache)
        flow = await self._read_flow(flow_id, reads)
        if mapping.is_final(flow.flow):
            item = (await self._build([flow], reads))[0]
            raise AlreadyDecided(
                f"approval flow {flow_id} is {flow.flow.approval_status}", status=item.status
            )
        users = await reads.users(s.user_id for s in flow.slots)
        choices = mapping.reassign_choices(flow, users)
        picked = (inputs.get("replace") or "").strip()
        if not picked and len(choices) == 1:
            picked = next(iter(choices))
        if picked not in choices:
            raise InvalidInput(
                f"{picked!r} is not an approver of an undecided group of flow {flow_id}",
                field="replace",
                detail="That approver is no longer in a group that has yet to decide.",
            )
        slot = choices[picked]
        if slot.user_id != acting and flow.flow.requested_by_id != acting and not actor.admin:
            raise NotAllowed(
                f"user {acting} may not replace user {slot.user_id} in flow {flow_id}",
                reason="not_your_slot",
                detail=f"Only {mapping.REASSIGN_WHO} may hand that slot over. Nothing was changed.",
            )
        new = _positive_id(inputs.get("new_approver"))
        if new is None:
            raise InvalidInput(
                "the new approver is not a Greenhouse user",
                field="new_approver",
                detail="The person you picked has no Greenhouse account the bot can find by their email.",
            )
        if any(s.user_id == new for s in flow.slots if s.approver_group_id == slot.approver_group_id):
            raise InvalidInput(
                f"user {new} is already an approver of that group",
                field="new_approver",
                detail="The person you picked already approves in that group.",
            )
        await self._client.acting_as(acting).replace_approver(
            slot.approver_group_id, remove_user_id=slot.user_id, add_user_id=new
        )
        self.forget(flow_id)
        return await self._item(flow_id)

    async def _request(self, flow_id: int, actor: Actor) -> ApprovalItem:
        acting = await self._acting_id(actor)
        await self._client.acting_as(acting).request_approvals(flow_id)
        self.forget(flow_id)
        return await self._item(flow_id)

    async def requestable(self, actor: Actor, target: str | None = None) -> list[Requestable]:
        """Flows not yet started: on the job `target` (an id or a Greenhouse job URL), or else
        the ones the actor is an approver of. Whether they may request is Greenhouse's call."""
        acting = await self._acting_id(actor)
        reads = _Reads(self._client, self._cache)
        if target and target.strip():
            job_id = _job_id(target)
            if job_id is None:
                raise InvalidInput(
                    f"{target!r} is not a Greenhouse job",
                    field="target",
                    detail="Give a Greenhouse job id or a job link (…/plans/12345).",
                )
            flows = await self._client.flows_of_job(job_id)
        else:
            rows = await self._client.approvers_of_user(acting, "waiting")
            groups = await self._client.groups({r.approver_group_id for r in rows})
            flows = await self._client.flows({g.approval_flow_id for g in groups})
        candidates = sorted(
            (f for f in flows if f.approval_status == "pending" and f.requested_by_id is None),
            key=lambda f: f.id,
        )
        built = [f for f in await reads.flows(candidates) if f.groups and not mapping.is_started(f)]
        items = await self._build(built, reads)
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
        """Mint the service user's token and read one page of approvers, naming what is missing."""
        try:
            await self._client.approvers_page()
        except NotAllowed as exc:
            raise NotAllowed(
                f"Greenhouse refused to list approvers for service_user_id {self._client.service_user_id}: "
                "grant the credential the harvest:approvers:list scope (and the other list scopes in "
                "docs/vendors/greenhouse.md), and make that user a Site Admin (v3 lists answer only Site Admins)",
                reason="permission",
            ) from exc
        users = await self._client.users([self._client.service_user_id])
        if users and not users[0].site_admin:
            raise NotAllowed(
                f"service_user_id {self._client.service_user_id} ({users[0].label}) is not a Site Admin: "
                "Harvest v3 lists answer only Site Admins",
                reason="permission",
            )
        for email, user_id in sorted(self._pinned.items()):
            if not await self._client.users([user_id]):
                raise NotFound(f"users: {email} is pinned to Greenhouse user {user_id}, which does not exist")
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
