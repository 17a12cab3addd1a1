"""Finding the people a vendor names in Slack, by email, without anyone linking first.

Why here and not on the click: users.lookupByEmail is Tier 3 and slow next to a 3-second ack, so
answers are kept in the database (store/reach.py) with their age and asked only by the sync, before
it computes its effects, or by its background refresh: found addresses again after a day, not found
ones after an hour (a new hire joins Slack, and their card moves from the channel to their DM).

Acting by email is stricter than being told by email: `email_problem` says why a Slack account may
not act through an email mapping (unconfirmed address, guest, Slack Connect, deactivated), from a
users.info read at the click, never from a stored copy.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.slack.gateway import Deferred, SlackFailure, SlackGateway
from store import reach as lookups
from store.db import Database
from store.outbox import now_utc

log = logging.getLogger(__name__)

FOUND_TTL = timedelta(days=1)
MISSING_TTL = timedelta(hours=1)


def email_problem(user: Mapping[str, Any], team_id: str | None) -> str | None:
    """Why this Slack account (users.info's `user`) may not act through an email mapping; None: it may."""
    if user.get("deleted"):
        return "Your Slack account is deactivated."
    if user.get("is_bot") or user.get("is_app_user"):
        return "Bots and apps cannot act through an email mapping."
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return "You are a guest in this Slack workspace, and guests cannot act through an email mapping."
    teams = {str(t) for t in ((user.get("enterprise_user") or {}).get("teams") or ())}
    other_team = bool(
        team_id and user.get("team_id") and user.get("team_id") != team_id and team_id not in teams
    )
    if user.get("is_stranger") or other_team:
        return (
            "Your Slack account belongs to another organisation (Slack Connect), so your email cannot "
            "stand for an account here."
        )
    if not (user.get("profile") or {}).get("email"):
        return "I cannot read your Slack email (the app needs the users:read.email scope)."
    if user.get("is_email_confirmed") is not True:
        return "Your Slack email is not confirmed yet. Confirm it in Slack (Profile, then Account settings)."
    return None


class Reach:
    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        clock: Callable[[], datetime] = now_utc,
        found_ttl: timedelta = FOUND_TTL,
        missing_ttl: timedelta = MISSING_TTL,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self.found_ttl = found_ttl
        self.missing_ttl = missing_ttl

    def _due(self, lookup: lookups.Lookup, now: datetime) -> bool:
        ttl = self.found_ttl if lookup.slack_user_id else self.missing_ttl
        return lookup.checked_at + ttl <= now

    async def resolve(
        self,
        emails: Iterable[str],
        *,
        patience: float = math.inf,
        budget: float | None = None,
        strict: bool = False,
    ) -> dict[str, str | None]:
        """The Slack user of each address (None: not in Slack), asking Slack only for addresses never
        asked or due again. For the sync and delivery, never for a click. An address Slack could not
        be asked about now is left out (the caller keeps it for later): Slack refused or is busy, a
        call would wait longer than `patience` for Tier 3's pace, or `budget` seconds are spent.

        Why a budget: Tier 3 allows about 50 lookups a minute, so a first sync naming 1,000 new
        people would otherwise hold its cards back for twenty minutes. Past the budget, the rest go
        out as "email:" card targets, and delivery asks for them at Slack's pace (`strict`: Slack's
        refusal or pace is raised, so the delivery job is retried as its kind says)."""
        started = time.monotonic()
        wanted = {e.strip().lower() for e in emails if e and e.strip()}
        if not wanted:
            return {}
        known = await lookups.lookups(self.db, emails=wanted)
        now = self.clock()
        answers: dict[str, str | None] = {e: k.slack_user_id for e, k in known.items()}
        fresh: dict[str, str | None] = {}
        for email in sorted(wanted):
            if email in known and not self._due(known[email], now):
                continue
            if budget is not None and time.monotonic() - started > budget:
                break
            try:
                fresh[email] = await self.gateway.user_by_email(email, patience=patience)
            except (SlackFailure, Deferred) as exc:
                if strict:
                    await lookups.record(self.db, answers=fresh, now=now)
                    raise
                log.info("users.lookupByEmail not asked now (%s); asking later", exc)
                break  # Slack is busy or refusing: the rest wait too
        await lookups.record(self.db, answers=fresh, now=now)
        answers.update(fresh)
        return answers

    async def refresh_due(self, *, limit: int = 50, patience: float = math.inf) -> set[str]:
        """Ask Slack again about up to `limit` addresses past their time to live (background work);
        returns the addresses whose answer changed (someone joined Slack, left, or changed address)."""
        now = self.clock()
        due = await lookups.due(
            self.db, found_before=now - self.found_ttl, missing_before=now - self.missing_ttl, limit=limit
        )
        if not due:
            return set()
        fresh: dict[str, str | None] = {}
        for email, _ in due:
            try:
                fresh[email] = await self.gateway.user_by_email(email, patience=patience)
            except (SlackFailure, Deferred) as exc:
                log.info("users.lookupByEmail not asked now (%s); refreshing later", exc)
                break
        await lookups.record(self.db, answers=fresh, now=now)
        return {email for email, before in due if email in fresh and fresh[email] != before}

    async def cached(self, emails: Iterable[str]) -> dict[str, str | None]:
        """What the database knows, whatever its age: no Slack call (the click path and renders)."""
        found = await lookups.lookups(self.db, emails={e.lower() for e in emails if e})
        return {e: k.slack_user_id for e, k in found.items()}
