"""The use cases behind every Slack interaction: decide, link, unlink, list, status.

Listeners stay thin (ack, call one of these, answer); these functions own the rules of
DESIGN.md 2.3-2.4: act only as the person who clicked, claim before calling the vendor, never
retry a decision blindly, re-read after any doubt, audit every attempt, and word every outcome
for the person (the only place vendor errors become sentences).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot import blocks, metrics
from bot.ack_first import no_wait
from bot.authz import Admins, MembershipUnknown, in_channel
from bot.blocks import ACTION_LABELS, CardState, Message
from bot.config import ConnectorConfig
from bot.ids import ItemRef
from bot.outbox.effects import after_claim, waits_on_everyone
from bot.outbox.jobs import CardJob
from bot.outbox.queue import Outbox
from bot.reach import Reach, email_problem
from bot.reconcile import GRACE, act_budget, click_deadline
from bot.slack.gateway import Deferred, SlackFailure, SlackGateway
from connectors.base import Action, Actor, ApprovalItem, Connector, Status
from connectors.errors import (
    AlreadyDecided,
    AuthExpired,
    ConnectorError,
    InvalidInput,
    NotAllowed,
    NotFound,
    TransientError,
    Unsupported,
    VendorUnavailable,
)
from connectors.http import never_sent
from store import audit as audit_trail
from store import cards
from store import items as stored_items
from store import reach as lookups
from store.audit import decision_row
from store.models import DecisionRow
from store.repo import Identity, Store, StoredItem, now_utc

log = logging.getLogger(__name__)

EXPECTED = {Action.APPROVE: Status.APPROVED, Action.REJECT: Status.REJECTED, Action.CANCEL: Status.CANCELLED}
PAST = {
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.ABSTAIN: "abstained on",
    Action.RESET: "reset",
    Action.REASSIGN: "reassigned",
    Action.COMMENT: "commented on",
    Action.CANCEL: "cancelled",
    Action.REQUEST: "requested",
}


def not_allowed_words(exc: NotAllowed, vendor: str, action: Action, *, email_linked: bool = False) -> str:
    verb = ACTION_LABELS[action].lower()
    words = {
        "not_approver": f"{vendor} says you are not an approver of this one (not in its approval group), "
        "so nothing was changed. Ask its owner to add you, or leave it to the approvers.",
        "self_approval": f"You triggered this run, and {vendor} does not let the person who triggered it "
        f"{verb} it. Another approver has to decide.",
        "disallowed_user": f"{vendor} has you on the list of people who may not {verb} this step.",
        "already_acted": f"You have already decided on this one in {vendor}; it now waits for the other approvers.",
        "service_account": f"The key you linked belongs to a service account; {vendor} needs a person to "
        "decide. Reconnect with your personal API key.",
        "wrong_user": f"The credentials you linked belong to someone else in {vendor}. Reconnect with your own.",
        "wrong_account": f"The key you linked belongs to another {vendor} account. Reconnect with a key of this one.",
        "action_disabled": f"{vendor} has “{verb}” turned off for this approval, so I no longer offer it.",
        "license": f"{vendor} refused because its license is not valid. Tell your {vendor} admin.",
        "permission": f"{vendor} says you lack the permission to {verb} this.",
        "service_permission": f"The bot's own {vendor} account may no longer read this, so nothing was sent. "
        "Please tell the admin (it is the account in the bot's config).",
        "key_permission": f"The bot's {vendor} key may not do this (its privileges, validity or allowed "
        "addresses). Nothing was changed; please tell the admin.",
        "not_linked": f"Your Slack email does not match a {vendor} user, so I cannot act for you there. Ask "
        f"your {vendor} admin to add it, or to pin your account in the bot's config.",
    }
    if email_linked:
        words["wrong_user"] = (
            f"Your Slack email no longer matches the {vendor} account you were linked to, so nothing was sent. "
            "Ask your admin to check the mapping."
        )
        words["disallowed_user"] = (
            f"The bot's {vendor} key does not let you {verb} this; ask your admin to add you to its group."
        )
    text = words.get(exc.reason) or f"{vendor} refused to {verb} this for you."
    if exc.detail and exc.reason not in words:
        text += f" ({blocks.cut(blocks.escape(exc.detail), 300)})"
    return text


@dataclass(frozen=True)
class Origin:
    """Where an interaction came from, so answers and card updates go back there."""

    channel: str | None = None
    ts: str | None = None
    response_url: str | None = None

    def as_metadata(self) -> dict[str, str]:
        return {k: v for k, v in (("ch", self.channel), ("ts", self.ts)) if v}

    @property
    def via(self) -> str | None:
        """The card as the audit names it: "channel/ts", or the channel alone."""
        if self.channel and self.ts:
            return f"{self.channel}/{self.ts}"
        return self.channel or None


@dataclass
class Precheck:
    """The outcome of looking at a click before anything slow happens (modals need the trigger)."""

    item: StoredItem | None = None
    connector: Connector | None = None
    reply: Message | None = None
    actor: Actor | None = None


@dataclass
class LinkOutcome:
    message: Message | None = None
    field_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _Click:
    """One claimed click on its way through the vendor: who, what, by when, and the audit rows that
    go with the claim's release (one transaction, so the record and the cards agree).

    Each outcome records itself, releases the claim with what is now known of the item, and returns
    the words for the person who clicked. They are told only what is known: "not sent" when the call
    never left, "I will check and tell you" when it left and no answer came (the claim then stays
    for reconciliation, which re-reads the vendor after the deadline and sends the DM)."""

    store: Store
    outbox: Outbox
    stored: StoredItem
    connector: Connector
    action: Action
    actor: Actor
    comment: str | None
    via: str | None
    claimed_at: datetime | None
    ends: float  # the event loop's time at the click's deadline
    pending: list[DecisionRow] = field(default_factory=list)

    @property
    def item(self) -> ApprovalItem:
        return self.stored.item

    @property
    def vendor(self) -> str:
        return self.connector.vendor_label

    @property
    def verb(self) -> str:
        return ACTION_LABELS[self.action].lower()

    # ---- the record, the release, the re-read ----------------------------------------------------

    def _row(self, outcome: str, answer: str | None) -> DecisionRow:
        metrics.CLICKS.labels(connector=self.connector.name, action=self.action.value, outcome=outcome).inc()
        row = decision_row(
            item_id=self.stored.id,
            connector=self.connector.name,
            external_id=self.item.external_id,
            slack_user_id=self.actor.slack_user_id,
            vendor_user_id=self.actor.vendor_user_id,
            action=self.action.value,
            comment=self.comment,
            outcome=outcome,
            vendor_answer=answer,
        )
        row.via = self.via
        return row

    def audit(self, outcome: str, answer: str | None) -> None:
        """The outcome's audit row, written with the claim's release."""
        self.pending.append(self._row(outcome, answer))

    async def release(self, fresh: ApprovalItem | None = None, error: str | None = None) -> None:
        """The claim given up (no decision recorded), the item as now known saved, its cards redrawn."""
        entries = await self.outbox.decision_entries(item_id=self.stored.id, before=self.item, after=fresh)
        await stored_items.finish_claim(
            self.store.db,
            item_id=self.stored.id,
            item=fresh,
            error=error,
            audit=self.pending,
            entries=entries,
            claimed_at=self.claimed_at,
        )
        self.outbox.kick(urgent=True)

    async def reread(self) -> ApprovalItem | None:
        """The item as the vendor shows it now, if it answers before the click's deadline."""
        left = self.ends - asyncio.get_running_loop().time()
        if left <= 0:
            return None
        try:
            async with asyncio.timeout(left):
                return await _reread(self.connector, self.item)
        except TimeoutError:
            return None

    # ---- the call and its outcomes ---------------------------------------------------------------

    async def send(self, inputs: Mapping[str, str]) -> ApprovalItem:
        """The decision, sent as the person who clicked; no answer within the budget counts as the
        vendor unavailable (the outcome is then unknown, see `unanswered`)."""
        budget = act_budget(self.connector)
        try:
            async with asyncio.timeout(budget):
                return await self.connector.act(
                    self.item, self.action, self.actor, comment=self.comment, inputs=inputs
                )
        except TimeoutError:
            raise VendorUnavailable(f"no answer within {budget:.0f} s") from None

    async def heartbeat_lapsed(self) -> Message:
        """Our heartbeat may have lapsed since the claim (the process froze, or lost the database):
        another replica may be settling this click now, so it is not sent."""
        self.audit("not_sent", "this replica's heartbeat lapsed before the call")
        await self.release(error=f"not sent to {self.vendor}; nothing was changed")
        return blocks.notice(
            f"I could not send your {self.verb} to {self.vendor} just now, so it was *not sent* and nothing "
            "was changed. Try again in a moment."
        )

    async def already_decided(self, exc: AlreadyDecided) -> Message:
        fresh = await self.reread() or (self.item.with_status(exc.status) if exc.status else None)
        self.audit("already_decided", str(exc))
        await self.release(fresh)
        status = (fresh.status if fresh else exc.status) or Status.APPROVED
        return blocks.notice(
            f"This was already *{status.value}* in {self.vendor} before your click, so nothing was changed. "
            "The card now shows it."
        )

    async def credentials_refused(self, exc: AuthExpired) -> Message:
        self.audit("refused", str(exc))
        await self.release()
        vendor = self.vendor
        if self.connector.capabilities.link_mode == "email":
            # The organisation's key was refused, not the person's: only the admin can fix it.
            return blocks.notice(
                f"{vendor} refused the bot's own API key, so nothing was changed. This is for the admin "
                "to fix (the key in the bot's config); please tell them."
            )
        await self.store.mark_broken(slack_user_id=self.actor.slack_user_id, connector=self.connector.name)
        return blocks.notice(
            f"Your {vendor} credentials no longer work, so nothing was changed. Reconnect with "
            f"`/approvals connect {self.connector.name}` (or the button), then click again.",
            buttons=[blocks.connect_button(self.connector.name, vendor)],
        )

    async def not_allowed(self, exc: NotAllowed) -> Message:
        self.audit("refused", f"{exc.reason}: {exc.detail or exc}")
        await self.release(await self.reread() if exc.reason == "already_acted" else None)
        email_linked = self.connector.capabilities.link_mode == "email"
        return blocks.notice(not_allowed_words(exc, self.vendor, self.action, email_linked=email_linked))

    async def input_refused(self, exc: InvalidInput) -> Message:
        self.audit("refused", f"{exc.field}: {exc.detail or exc}")
        await self.release()
        if exc.field == "comment":
            return blocks.notice(
                f"{self.vendor} needs a comment to {self.verb} this. Nothing was changed yet.",
                buttons=[blocks.with_comment_button(self.item, self.action)],
            )
        detail = (
            f": {blocks.cut(blocks.escape(exc.detail or str(exc)), 300)}" if exc.detail or exc.field else ""
        )
        return blocks.notice(
            f"{self.vendor} did not accept that{detail}. Nothing was changed; you can try again."
        )

    async def unsupported(self, exc: Unsupported) -> Message:
        self.audit("refused", str(exc))
        await self.release()
        return blocks.notice(
            f"{self.vendor} cannot {self.verb} this from Slack. Use “Open in {self.vendor}”."
        )

    async def gone(self, exc: NotFound) -> Message:
        fresh = await self.reread()
        self.audit("failed", str(exc))
        await self.release(
            fresh or self.item.with_status(Status.CANCELLED, decision_note=f"No longer in {self.vendor}")
        )
        return blocks.notice(f"{self.vendor} no longer knows this approval; the card has been updated.")

    async def unanswered(self, exc: ConnectorError) -> ApprovalItem | Message:
        """The outcome is unknown: ask the vendor what is true now instead of sending again. Returns
        the item when it shows the click's decision (the click went through), else the answer."""
        where = (self.action, self.connector.name, self.item.external_id)
        if never_sent(exc):
            # The call never left (connection refused or not opened in time): nothing changed.
            log.info("act %s on %s/%s: not sent (%s)", *where, exc)
            self.audit("not_sent", str(exc))
            await self.release(error=f"{self.vendor} could not be reached; nothing was sent")
            return blocks.notice(
                f"I could not reach {self.vendor}, so your {self.verb} was *not sent* and nothing was changed. "
                "Try again in a moment."
            )
        log.info("act %s on %s/%s: %s; re-reading", *where, exc)
        fresh = await self.reread()
        expected = EXPECTED.get(self.action)
        if fresh is not None and expected is not None and fresh.status is expected:
            return fresh
        if fresh is None:
            return await self._left_to_reconcile(exc)
        self.audit("failed", str(exc))
        await self.release(fresh, error=f"{self.vendor} did not answer; nothing was changed")
        return blocks.notice(
            f"{self.vendor} did not answer in time. I checked: the {self.item.kind.lower()} is still "
            f"{fresh.status.value}, so nothing was changed. Try again in a moment."
        )

    async def _left_to_reconcile(self, exc: ConnectorError) -> Message:
        """Sent, unanswered, and the vendor cannot be read now: the claim stays with the click's
        intent, and reconciliation settles it after the deadline (and tells them)."""
        await audit_trail.append(self.store.db, rows=[self._row("unknown", str(exc))])
        return blocks.notice(
            f"Your {self.verb} was sent, but {self.vendor} did not answer in time, so I do not know yet "
            "whether it went through. I will check with "
            f"{self.vendor} and tell you here; the card will show the outcome. Please do not click again."
        )

    async def decided(self, after: ApprovalItem) -> Message | None:
        """The vendor took the decision: recorded with the claim's release, the clicked card first;
        then flow notices with a thread reply, new approvers' cards, Homes."""
        self.audit("ok", f"status {after.status.value}")
        final = after.status.final
        entries = await self.outbox.decision_entries(
            item_id=self.stored.id, before=self.item, after=after, decided=True
        )
        await stored_items.finish_claim(
            self.store.db,
            item_id=self.stored.id,
            item=after,
            decided_by=self.actor.slack_user_id if final or self.action not in EXPECTED else None,
            action=self.action.value,
            comment=self.comment,
            audit=self.pending,
            entries=entries,
            claimed_at=self.claimed_at,
        )
        self.outbox.kick(urgent=True)
        if final:
            metrics.observe_decision(
                connector=self.connector.name, first_card=self.stored.row.first_seen_at, decided=now_utc()
            )
        if not final and self.action is Action.APPROVE:
            return blocks.notice(
                f"Your approval was recorded in {self.vendor}; it still needs other approvers before it goes through."
            )
        if self.action in (Action.REASSIGN, Action.RESET, Action.ABSTAIN):
            return blocks.notice(
                f"Done: you {PAST[self.action]} “{blocks.escape(self.item.title)}” in {self.vendor}."
            )
        return None


async def _reread(connector: Connector, item: ApprovalItem) -> ApprovalItem | None:
    """The item as the vendor shows it now; gone from the vendor reads as cancelled; None when it
    cannot be read."""
    try:
        return await connector.refresh(item)
    except NotFound:
        return item.with_status(Status.CANCELLED, decision_note=f"No longer in {connector.vendor_label}")
    except ConnectorError:
        return None


class Services:
    def __init__(
        self,
        *,
        store: Store,
        connectors: Mapping[str, Connector],
        configs: Mapping[str, ConnectorConfig],
        gateway: SlackGateway,
        outbox: Outbox,
        card_state: Callable[[StoredItem], CardState],
        reach: Reach | None = None,
    ) -> None:
        self.reach = reach
        self.store = store
        self.connectors = connectors
        self.configs = configs
        self.gateway = gateway
        self.outbox = outbox
        self.card_state = card_state
        # [slack] admins (the runtime sets them with the gateway that resolves user groups).
        self.admins = Admins()
        # Awaited between the steps of a click's work, so acknowledgements of other clicks go
        # first (the runtime sets AckFirst.wait; alone, it does not wait).
        self.yield_to: Callable[[], Awaitable[None]] = no_wait
        # This process's instance id while its heartbeat is live (the runtime sets the elector's),
        # recorded with each claim: a click of a process that died is reconciled without waiting.
        self.instance: Callable[[], str | None] = lambda: None

    # ---- clicks ----------------------------------------------------------------------------------

    async def precheck(
        self, *, ref: ItemRef, action: Action, slack_user: str, origin: Origin | None = None
    ) -> Precheck:
        """Every check that needs no vendor call, in order; each refusal is audited and answered
        privately, and nothing reaches the vendor."""
        via = origin.via if origin else None

        async def refuse(reason: str, reply: Message, **row: object) -> Precheck:
            await self._refused(ref, action, slack_user, reason, via, **row)
            return Precheck(reply=reply)

        connector = self.connectors.get(ref.connector)
        if connector is None:
            return await refuse(
                audit_trail.UNKNOWN_CONNECTOR,
                blocks.notice(
                    f"This card belongs to `{blocks.escape(ref.connector)}`, which is no longer configured here. "
                    "Nothing was changed."
                ),
            )
        stored = await self.store.item(connector=ref.connector, external_id=ref.external_id)
        if stored is None:
            return await refuse(
                audit_trail.UNKNOWN_ITEM,
                blocks.notice(
                    "I no longer know this approval (it may have been removed). Nothing was changed; "
                    "`/approvals` lists what waits on you now."
                ),
            )
        if stored.item.status.final:
            await self._redraw(stored.id)
            return await refuse(
                audit_trail.ALREADY_HANDLED,
                blocks.notice(self._final_words(stored, connector)),
                item_id=stored.id,
            )
        if stored.item.action(action) is None:
            await self._redraw(stored.id)
            return await refuse(
                audit_trail.NOT_OFFERED,
                blocks.notice(
                    f"{connector.vendor_label} does not offer “{ACTION_LABELS[action]}” on this one now; "
                    "the card has been refreshed."
                ),
                item_id=stored.id,
            )
        actor = await self.actor(connector, slack_user)
        if isinstance(actor, Message):
            return await refuse(audit_trail.NOT_LINKED, actor, item_id=stored.id)
        if self.admins and await self.admins.contains(slack_user):
            # Admins pass the bot's own guards, here and in the connector's act (which can see
            # what permits cannot, such as the slot picked in a modal).
            actor = replace(actor, admin=True)
        who = None if actor.admin else connector.permits(stored.item, action, actor)
        if who is not None:
            return await refuse(
                audit_trail.NOT_PERMITTED,
                blocks.notice(self._not_permitted_words(connector, action, who)),
                item_id=stored.id,
                vendor_user_id=actor.vendor_user_id,
            )
        if stored.row.claim_by:
            return await refuse(
                audit_trail.IN_PROGRESS,
                self._claimed_words(stored, slack_user),
                item_id=stored.id,
                vendor_user_id=actor.vendor_user_id,
            )
        return Precheck(item=stored, connector=connector, actor=actor)

    async def _refused(
        self, ref: ItemRef, action: Action, slack_user: str, reason: str, via: str | None, **row: object
    ) -> None:
        # Only configured names become metric labels: a card's connector name is not ours to trust.
        label = ref.connector if ref.connector in self.connectors else "unknown"
        metrics.CLICKS.labels(connector=label, action=action.value, outcome="refused").inc()
        await audit_trail.append(
            self.store.db,
            rows=[
                audit_trail.refusal(
                    connector=ref.connector,
                    external_id=ref.external_id,
                    slack_user_id=slack_user,
                    action=action.value,
                    reason=reason,
                    via=via,
                    item_id=row.get("item_id"),  # type: ignore[arg-type]
                    vendor_user_id=row.get("vendor_user_id"),  # type: ignore[arg-type]
                )
            ],
        )

    def _not_permitted_words(self, connector: Connector, action: Action, who: str) -> str:
        verb = ACTION_LABELS[action].lower()
        admins = f", or one of this bot's admins ({self.admins.mentions()})" if self.admins else ""
        return (
            f"Only {blocks.escape(who)}{admins} may {verb} this, so nothing was sent to {connector.vendor_label} "
            "and nothing was changed."
        )

    async def is_admin(self, slack_user: str) -> bool:
        return await self.admins.contains(slack_user)

    async def decide(
        self,
        *,
        ref: ItemRef,
        action: Action,
        slack_user: str,
        comment: str | None = None,
        inputs: Mapping[str, str] | None = None,
        checked: Precheck | None = None,
        origin: Origin | None = None,
    ) -> Message | None:
        """Act on one item as `slack_user`. Returns the private answer, or None when the card says it all.

        The story of a click: checked (the item, the comment, who the clicker is in the vendor),
        claimed (`_claim`), sent to the vendor as the clicker, and its outcome recorded with its
        effects on the cards (`_act`, `_Click`).

        `checked`: the precheck the caller just made for this same click (saves reading it twice).
        `origin`: where the click came from, for the audit."""
        check = checked or await self.precheck(ref=ref, action=action, slack_user=slack_user, origin=origin)
        if check.reply is not None or check.item is None or check.connector is None:
            return check.reply
        stored, connector = check.item, check.connector
        item = stored.item
        spec = item.action(action)
        assert spec is not None
        comment = (comment or "").strip() or None
        via = origin.via if origin else None
        if spec.comment == "required" and not comment:
            await self._refused(ref, action, slack_user, audit_trail.COMMENT_MISSING, via, item_id=stored.id)
            return blocks.notice(
                f"{connector.vendor_label} needs a comment to {ACTION_LABELS[action].lower()} this.",
                buttons=[blocks.with_comment_button(item, action)],
            )
        actor = check.actor or await self.actor(connector, slack_user)
        if isinstance(actor, Message):
            return actor
        await self.yield_to()
        claimed_at, process = await self._claim(stored, connector, action, actor, slack_user, comment, via)
        if claimed_at is None:
            return await self._not_claimed(ref, action, slack_user, via, stored, connector)
        self.outbox.kick(urgent=True)
        await self.yield_to()
        return await self._act(
            stored,
            connector,
            action,
            actor,
            comment,
            inputs or {},
            via,
            claimed_at=claimed_at,
            process=process,
        )

    async def _claim(
        self,
        stored: StoredItem,
        connector: Connector,
        action: Action,
        actor: Actor,
        slack_user: str,
        comment: str | None,
        via: str | None,
    ) -> tuple[datetime | None, str | None]:
        """The item taken (pending → acting) for this click; returns when (None: someone else's
        click or decision got there first) and the process that holds the claim.

        The claim also asks for "Working…" on every copy (buttons gone), in the same transaction,
        ahead of anything else waiting. The click's intent goes with its claim, and the attempt into
        the audit, before the vendor hears of it: a crash from here on leaves enough for
        reconciliation to finish the story."""
        working = self.outbox.entries(
            after_claim(stored.id, await cards.targets_now(self.store.db, item_id=stored.id))
        )
        attempt = decision_row(
            item_id=stored.id,
            connector=connector.name,
            external_id=stored.item.external_id,
            slack_user_id=slack_user,
            vendor_user_id=actor.vendor_user_id,
            action=action.value,
            comment=comment,
            outcome="attempt",
            vendor_answer=None,
        )
        attempt.via = via
        intent = stored_items.Intent(
            slack_user=slack_user,
            action=action.value,
            vendor_user=actor.vendor_user_id,
            comment=comment,
            via=via,
            deadline=click_deadline(connector) + GRACE,
            process=self.instance(),
        )
        claimed_at = await stored_items.claim(
            self.store.db,
            item_id=stored.id,
            slack_user=slack_user,
            action=action.value,
            entries=working,
            intent=intent,
            audit=[attempt],
        )
        return claimed_at, intent.process

    async def _not_claimed(
        self,
        ref: ItemRef,
        action: Action,
        slack_user: str,
        via: str | None,
        stored: StoredItem,
        connector: Connector,
    ) -> Message:
        """Someone got there first: the refusal audited, and the clicker told who, or how it ended."""
        fresh = await self.store.item_by_id(item_id=stored.id)
        reason = audit_trail.ALREADY_HANDLED if fresh and fresh.item.status.final else audit_trail.IN_PROGRESS
        await self._refused(ref, action, slack_user, reason, via, item_id=stored.id)
        if fresh is not None and fresh.item.status.final:
            return blocks.notice(self._final_words(fresh, connector))
        return self._claimed_words(fresh or stored, slack_user)

    async def _act(
        self,
        stored: StoredItem,
        connector: Connector,
        action: Action,
        actor: Actor,
        comment: str | None,
        inputs: Mapping[str, str],
        via: str | None = None,
        *,
        claimed_at: datetime | None = None,
        process: str | None = None,
    ) -> Message | None:
        """The vendor call as the person who clicked, and its outcome, all within the click's
        deadline (bot/reconcile.py): each cause below sits beside the outcome it leads to, which
        records itself, releases the claim and words the answer (`_Click`)."""
        loop = asyncio.get_running_loop()
        click = _Click(
            store=self.store,
            outbox=self.outbox,
            stored=stored,
            connector=connector,
            action=action,
            actor=actor,
            comment=comment,
            via=via,
            claimed_at=claimed_at,
            ends=loop.time() + click_deadline(connector).total_seconds(),
        )
        if process is not None and self.instance() != process:
            return await click.heartbeat_lapsed()
        try:
            after = await click.send(inputs)
        except AlreadyDecided as exc:
            return await click.already_decided(exc)
        except AuthExpired as exc:
            return await click.credentials_refused(exc)
        except NotAllowed as exc:
            return await click.not_allowed(exc)
        except InvalidInput as exc:
            return await click.input_refused(exc)
        except Unsupported as exc:
            return await click.unsupported(exc)
        except NotFound as exc:
            return await click.gone(exc)
        except (TransientError, ConnectorError) as exc:
            outcome = await click.unanswered(exc)
            if isinstance(outcome, Message):
                return outcome
            after = outcome  # unanswered, yet the vendor now shows the click's decision
        return await click.decided(after)

    async def _redraw(self, item_id: int) -> None:
        await self.outbox.enqueue(
            after_claim(item_id, await cards.targets_now(self.store.db, item_id=item_id))
        )

    def _final_words(self, stored: StoredItem, connector: Connector) -> str:
        status = stored.item.status.value
        who = ""
        if stored.row.decided_by:
            who = f" by <@{stored.row.decided_by}>"
        elif stored.item.decided_by:
            who = f" by {blocks.escape(stored.item.decided_by.label)}"
        return f"This is already *{status}*{who}. Nothing was changed."

    def _claimed_words(self, stored: StoredItem, slack_user: str) -> Message:
        by = stored.row.claim_by
        if by == slack_user:
            return blocks.notice("Your earlier click on this is still being handled; the card will update.")
        return blocks.notice(
            f"<@{by}> is already deciding on this one, so your click changed nothing. The card will show the result."
        )

    # ---- identity ----------------------------------------------------------------------------------

    async def actor(self, connector: Connector, slack_user: str) -> Actor | Message:
        """The clicking person as the vendor knows them, or the private answer saying how to get there."""
        if connector.capabilities.link_mode == "email":
            return await self._email_actor(connector, slack_user)
        identity = await self.store.identity(slack_user_id=slack_user, connector=connector.name)
        if identity is None:
            return blocks.notice(
                f"To decide from Slack you first link your own {connector.vendor_label} account: "
                f"your click is then made in {connector.vendor_label} as you. Nothing was changed.",
                buttons=[blocks.connect_button(connector.name, connector.vendor_label)],
            )
        if identity.broken:
            return blocks.notice(
                f"Your {connector.vendor_label} credentials no longer work. Reconnect, then click again. "
                "Nothing was changed.",
                buttons=[blocks.connect_button(connector.name, connector.vendor_label)],
            )
        return _actor(identity)

    async def _email_actor(self, connector: Connector, slack_user: str) -> Actor | Message:
        """Acting through an email mapping: the person did not opt out, and their Slack account, read
        now (never a stored copy), is a confirmed address of a full member of this workspace."""
        vendor = connector.vendor_label
        if connector.name in await lookups.opted_out(self.store.db, slack_user_id=slack_user):
            return blocks.notice(
                f"You disconnected {vendor} here, so I do not act for you there. Connect again to decide "
                "from Slack. Nothing was changed.",
                buttons=[blocks.connect_button(connector.name, vendor)],
            )
        email, problem = await self._trusted_email(slack_user)
        if email is None:
            return blocks.notice(
                f"{problem} So I cannot act for you in {vendor} by your email. Nothing was changed."
            )
        identity = await self.store.identity(slack_user_id=slack_user, connector=connector.name)
        if identity is None or (identity.email or "").lower() != email:
            linked = await self._link_email(connector, slack_user, email)
            identity = await self.store.identity(slack_user_id=slack_user, connector=connector.name)
            if identity is None:
                return linked
        if identity.broken:
            return blocks.notice(
                f"Your {vendor} mapping no longer works; ask your admin. Nothing was changed."
            )
        return _actor(identity)

    async def _trusted_email(self, slack_user: str) -> tuple[str | None, str]:
        """(the person's Slack email as Slack says it now, "") or (None, why it may not stand for them)."""
        try:
            user = await self.gateway.user_info(slack_user)
            team = await self.gateway.workspace_id()
        except (SlackFailure, Deferred) as exc:
            log.info("users.info for %s failed: %s", slack_user, exc)
            return None, "I could not read your Slack profile just now; try again in a moment."
        problem = email_problem(user, team)
        if problem is not None:
            return None, problem
        return str((user.get("profile") or {}).get("email") or "").lower(), ""

    async def link(self, *, connector_name: str, slack_user: str, values: Mapping[str, str]) -> LinkOutcome:
        connector = self.connectors.get(connector_name)
        if connector is None:
            return LinkOutcome(
                message=blocks.notice(f"There is no connector named `{blocks.escape(connector_name)}`.")
            )
        fields = {f.key: f for f in connector.credential_fields}
        missing = {
            k: "Required" for k, f in fields.items() if not f.optional and not (values.get(k) or "").strip()
        }
        if missing:
            return LinkOutcome(field_errors=missing)
        credentials = {k: (values.get(k) or "").strip() for k in fields if (values.get(k) or "").strip()}
        vendor = connector.vendor_label
        secret_key = next((k for k, f in fields.items() if f.secret), next(iter(fields), ""))
        try:
            identity = await connector.verify(credentials)
        except AuthExpired:
            return LinkOutcome(
                field_errors={
                    secret_key: f"{vendor} did not accept these credentials. Check them and try again."
                }
            )
        except NotAllowed as exc:
            return LinkOutcome(field_errors={secret_key: not_allowed_words(exc, vendor, Action.APPROVE)})
        except (TransientError, ConnectorError) as exc:
            log.info("verify for %s failed: %s", connector_name, type(exc).__name__)
            return LinkOutcome(
                field_errors={secret_key: f"Could not reach {vendor} to check these. Try again in a moment."}
            )
        profile = await self._profile(slack_user)
        await self.store.link(
            slack_user_id=slack_user,
            connector=connector_name,
            vendor_user_id=identity.user_id,
            display_name=identity.display_name or identity.user_id,
            email=identity.email or profile.get("email"),
            credentials=credentials,
        )
        await self._redraw_mine(connector_name, slack_user)
        who = blocks.escape(identity.display_name or identity.user_id)
        return LinkOutcome(
            message=blocks.notice(
                f":white_check_mark: Linked: your clicks on `{blocks.escape(connector_name)}` cards are now made in "
                f"{vendor} as *{who}*. `/approvals disconnect {connector_name}` forgets the link and the credentials."
            )
        )

    async def link_by_email(self, *, connector_name: str, slack_user: str, explicit: bool = True) -> Message:
        """Map this person to the vendor user with their Slack email. `explicit` (they asked: Connect)
        clears an earlier Disconnect; otherwise (a listing or Home) a Disconnect is respected."""
        connector = self.connectors[connector_name]
        vendor = connector.vendor_label
        if explicit:
            await lookups.opt_in(self.store.db, slack_user_id=slack_user, connector=connector_name)
        elif connector_name in await lookups.opted_out(self.store.db, slack_user_id=slack_user):
            return blocks.notice(f"You disconnected {vendor}; connect again to be mapped by your email.")
        email, problem = await self._trusted_email(slack_user)
        if email is None:
            return blocks.notice(
                f"{problem} So I cannot map you to {vendor} by your email. Nothing was changed."
            )
        message = await self._link_email(connector, slack_user, email)
        if explicit:
            await self._redraw_mine(connector_name, slack_user)
        return message

    async def _link_email(self, connector: Connector, slack_user: str, email: str) -> Message:
        vendor = connector.vendor_label
        try:
            identity = await connector.identify(email)
        except ConnectorError as exc:
            log.info("identify on %s failed: %s", connector.name, type(exc).__name__)
            return blocks.notice(f"Could not reach {vendor} to find your account. Try again in a moment.")
        if identity is None:
            return blocks.notice(
                f"No {vendor} user has your Slack email ({blocks.escape(email)}), so I cannot act for you there "
                f"and nothing was changed. Ask your {vendor} admin to use this email, or to map you in the bot's config."
            )
        await self.store.link(
            slack_user_id=slack_user,
            connector=connector.name,
            vendor_user_id=identity.user_id,
            display_name=identity.display_name or identity.user_id,
            email=email,
            credentials=None,
        )
        return blocks.notice(
            f":white_check_mark: Linked by email: you are *{blocks.escape(identity.display_name or identity.user_id)}* "
            f"in {vendor}."
        )

    async def _redraw_mine(self, connector_name: str, slack_user: str) -> None:
        """After linking, the person's own copies of pending cards are drawn again: where they offered
        linking, they now offer the decision."""
        mine = await lookups.dm_cards(self.store.db, slack_user_id=slack_user, connector=connector_name)
        if mine:
            await self.outbox.enqueue([CardJob(item=item_id, to=target) for item_id, target in mine])

    async def unlink(self, *, connector_name: str, slack_user: str) -> Message:
        connector = self.connectors.get(connector_name)
        if connector is None:
            return blocks.notice(f"There is no connector named `{blocks.escape(connector_name)}`.")
        name = blocks.escape(connector_name)
        if connector.capabilities.link_mode == "email":
            # Mapped by email: without a record of the choice, the next listing would map them again.
            await lookups.opt_out(
                self.store.db, slack_user_id=slack_user, connector=connector_name, now=now_utc()
            )
            await self.store.unlink(slack_user_id=slack_user, connector=connector_name)
            await self._redraw_mine(connector_name, slack_user)
            return blocks.notice(
                f"Disconnected from `{name}`: I no longer map you to {connector.vendor_label} by your email "
                f"and will not act for you there until you connect again (`/approvals connect {name}`)."
            )
        if await self.store.unlink(slack_user_id=slack_user, connector=connector_name):
            return blocks.notice(f"Disconnected from `{name}`: your link and stored credentials are gone.")
        return blocks.notice(f"You were not connected to `{name}`; nothing to do.")

    async def _profile(self, slack_user: str) -> dict[str, str]:
        try:
            return await self.gateway.user_profile(slack_user)
        except Exception as exc:  # Slack unreachable: linking still works without the email
            log.info("users.info for %s failed: %s", slack_user, type(exc).__name__)
            return {}

    # ---- channels -----------------------------------------------------------------------------------

    async def may_follow(
        self, *, connector_name: str, channel: str, slack_user: str, word: str = "subscribe"
    ) -> Message | None:
        """None when `slack_user` may (un)subscribe `channel` to a connector's flow notices: they
        have an identity for that connector and are in that channel, or they are an admin.

        Why both: the notices carry vendor data (titles, candidates, comments), so only someone who
        may see that connector's approvals may send them on, and only into a room they are in."""
        if await self.admins.contains(slack_user):
            return None
        connector = self.connectors[connector_name]
        vendor = connector.vendor_label
        admins = f" Admins of this bot may always do it ({self.admins.mentions()})." if self.admins else ""
        rule = (
            f"Only people with their own {vendor} identity here who are members of <#{channel}> may "
            f"{word} it to `{blocks.escape(connector_name)}`."
        )

        async def refuse(reason: str, why: str) -> Message:
            await audit_trail.append(
                self.store.db,
                rows=[
                    audit_trail.refusal(
                        connector=connector_name,
                        external_id=channel,
                        slack_user_id=slack_user,
                        action=word,
                        reason=reason,
                        via=channel,
                    )
                ],
            )
            return blocks.notice(f"{why} {rule}{admins} Nothing was changed.")

        actor = await self.actor(connector, slack_user)
        if isinstance(actor, Message):
            how = (
                f"your Slack email must match a {vendor} user"
                if connector.capabilities.link_mode == "email"
                else f"run `/approvals connect {connector_name}` first"
            )
            return await refuse(
                audit_trail.NOT_LINKED, f"You have no working {vendor} identity here ({how})."
            )
        try:
            member = await in_channel(self.gateway, channel=channel, user=slack_user)
        except MembershipUnknown as exc:
            log.info("conversations.members for %s failed: %s", channel, exc.error)
            return await refuse(
                audit_trail.NOT_PERMITTED,
                f"I could not check that you are in <#{channel}> (Slack said `{blocks.escape(exc.error)}`; "
                "for a private channel, invite me there first).",
            )
        if not member:
            return await refuse(audit_trail.NOT_PERMITTED, f"You are not a member of <#{channel}>.")
        return None

    # ---- lists and status -----------------------------------------------------------------------

    async def pending_for(self, *, slack_user: str) -> list[CardState]:
        """Exactly what waits on this person: items of connectors they are linked to (mapped by email
        where the vendor links that way, unless they disconnected) that name them as an approver, or,
        where the vendor names nobody at all (FlexDeploy), that it lists for them. An item of a
        per-user listing or with approver groups nobody could read waits on nobody known."""
        identities = {i.connector: i for i in await self.store.identities(slack_user_id=slack_user)}
        remapped = False
        opted = await lookups.opted_out(self.store.db, slack_user_id=slack_user)
        for name, connector in self.connectors.items():
            if name not in identities and name not in opted and connector.capabilities.link_mode == "email":
                await self.link_by_email(connector_name=name, slack_user=slack_user, explicit=False)
                remapped = True
        if remapped:
            identities = {i.connector: i for i in await self.store.identities(slack_user_id=slack_user)}
        states = []
        for stored in await self.store.pending_items(connectors=list(identities)):
            identity = identities[stored.item.connector]
            owner = self.connectors.get(stored.item.connector)
            if owner is None or not waits_on(stored.item, identity, owner.capabilities.per_user_listing):
                continue
            states.append(self.card_state(stored))
        states.sort(key=lambda s: s.item.created_at or s.now)
        return states

    def unlinked_connectors(self, linked: set[str]) -> list[tuple[str, str]]:
        return [(n, c.vendor_label) for n, c in self.connectors.items() if n not in linked]

    async def status_lines(self, *, detail: bool = True) -> list[str]:
        """Each connector's health. Without `detail` (people who are not admins): working (with
        its pending count) or failing, without the vendor's error text, failure counts or times."""
        states = await self.store.connector_states()
        lines = []
        for name, connector in self.connectors.items():
            state = states.get(name)
            if state is None or state.last_sync_at is None:
                lines.append(f"• `{name}` ({connector.vendor_label}): not synced yet")
                continue
            if not detail:
                health = (
                    ":red_circle: failing"
                    if state.failures
                    else f":large_green_circle: working, {state.pending} pending"
                )
                lines.append(f"• `{name}` ({connector.vendor_label}): {health}")
                continue
            when = blocks.slack_date(state.last_success_at) if state.last_success_at else "never"
            if state.failures:
                lines.append(
                    f"• `{name}` ({connector.vendor_label}): :red_circle: failing for {state.failures} sync(s): "
                    f"{blocks.escape(blocks.cut(state.last_error or 'unknown error', 300))}. Last good sync: {when}"
                )
            else:
                lines.append(
                    f"• `{name}` ({connector.vendor_label}): :large_green_circle: {state.pending} pending, "
                    f"last sync {when}"
                )
        return lines

    async def health(self) -> dict[str, object]:
        states = await self.store.connector_states()
        out: dict[str, object] = {}
        for name in self.connectors:
            state = states.get(name)
            out[name] = {
                "ok": bool(state and state.failures == 0 and state.last_success_at),
                "last_sync": _iso(state.last_sync_at) if state else None,
                "last_success": _iso(state.last_success_at) if state else None,
                "failures": state.failures if state else 0,
                "error": state.last_error if state else None,
                "pending": state.pending if state else 0,
            }
        return out


def waits_on(item: ApprovalItem, identity: Identity, per_user_listing: bool) -> bool:
    """Whether `item` is in the queue of the person with this identity."""
    if waits_on_everyone(item, per_user_listing=per_user_listing):
        return True
    email = (identity.email or "").lower()
    return any(p.id == identity.vendor_user_id or (email and email in p.all_emails) for p in item.recipients)


def _actor(identity: Identity) -> Actor:
    return Actor(
        slack_user_id=identity.slack_user_id,
        vendor_user_id=identity.vendor_user_id,
        display_name=identity.display_name,
        email=identity.email,
        credentials=dict(identity.credentials),
    )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


__all__ = ["LinkOutcome", "Origin", "Precheck", "Services", "now_utc"]
