"""`python -m bench.reach [--groups G] [--members M] [--missing P]`: what finding every approver in
Slack costs a sync, beside its floors.

Harness steps name G approver groups of M distinct people each (two groups a step), so G×M approvers;
P of every 100 are not in Slack. The bot's own sync (Coordinator with Reach) runs against the Harness
sandbox and the Slack sandbox on a real SQLite store; nothing is delivered, so "Slack calls" are the
sync's own (users.lookupByEmail), and the cards it would post are counted as outbox rows.

Floors: a first sync reads each group's members once per page (ceil(M / 100) each) and looks each
address up once (G×M). A no-change sync makes 0 membership calls and 0 lookups. An hour later, only
the not-found answers are due again: one lookup each (at most 50 a sync), and still 0 membership
calls within their TTL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bot.config import Config, ConnectorConfig, Reminders
from bot.coordinator import Coordinator
from bot.outbox.queue import Outbox
from bot.reach import Reach
from bot.sandbox.slack_api import SlackSandbox
from bot.slack.gateway import SlackGateway, Tiers
from connectors.harness import HarnessSettings
from connectors.harness.connector import HarnessConnector
from connectors.harness.sandbox import HarnessSandbox
from connectors.people import DemoPerson
from store.crypto import CredentialBox
from store.db import Database
from store.repo import Store, now_utc

MEMBERS = "POST /ng/api/user-groups/"
REFRESH_PER_SYNC = 50  # Reach.refresh_due's default limit


class _Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return now_utc() + self.offset


def seed(harness: HarnessSandbox, groups: int, members: int, missing: int) -> list[DemoPerson]:
    """Groups of distinct people, two a step; returns the people who are in Slack."""
    in_slack: list[DemoPerson] = []
    for g in range(groups):
        emails = [f"p{g:03d}x{n:03d}@example.com" for n in range(members)]
        harness.add_group(f"team_{g:03d}", emails, display=f"Team {g}")
        for n, email in enumerate(emails):
            if (g * members + n) * missing % 100 >= missing:
                in_slack.append(DemoPerson(email.split("@")[0], email, email, f"U{g:03d}X{n:03d}", "UTC"))
    for g in range(0, groups - 1, 2):
        harness.add_waiting(groups=[f"team_{g:03d}", f"team_{g + 1:03d}"])
    return in_slack


@dataclass
class _Rig:
    """The bot's own sync (Coordinator with Reach) wired to the Harness and Slack sandboxes on a
    fresh SQLite store, with a clock the scenario moves forward."""

    harness: HarnessSandbox
    slack: SlackSandbox
    db: Database
    store: Store
    gateway: SlackGateway
    connector: HarnessConnector
    coordinator: Coordinator
    clock: _Clock

    async def sync(self) -> dict[str, Any]:
        """One sync and what it cost: vendor requests, membership calls, Slack lookups, cards queued."""
        served, calls = len(self.harness.served), len(self.slack.calls)
        rows = await self.store.outbox_size()
        started = time.perf_counter()
        result = await self.coordinator.run_once()
        seconds = time.perf_counter() - started
        assert result.ok, result.error
        vendor = self.harness.served[served:]
        slack_calls = self.slack.calls[calls:]
        return {
            "vendor_requests": len(vendor),
            "membership_calls": sum(r.startswith(MEMBERS) for r in vendor),
            "slack_calls": len(slack_calls),
            "slack_lookups": sum(c.method == "users.lookupByEmail" for c in slack_calls),
            "cards_queued": await self.store.outbox_size() - rows,
            "seconds": round(seconds, 3),
        }

    async def close(self) -> None:
        await self.connector.aclose()
        await self.gateway.aclose()
        await self.db.dispose()
        await self.slack.stop()
        await self.harness.stop()


async def _rig(harness: HarnessSandbox, slack: SlackSandbox) -> _Rig:
    """Everything the sync needs, built once: the store, the Harness connector, Slack through the
    real gateway (tiers scaled up: the sync's own calls are counted, not paced) and Reach."""
    folder = Path(tempfile.mkdtemp(prefix="reach-bench-"))
    db = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await db.migrate()
    store = Store(db, CredentialBox(Fernet.generate_key().decode()))
    settings = HarnessSettings.model_validate(harness.connector_settings())
    connector = HarnessConnector("pipelines", settings)
    config = Config(
        connectors=(
            ConnectorConfig(
                name="pipelines",
                type="harness",
                poll_interval=timedelta(seconds=60),
                channel="C0DEPLOYS",
                reminders=Reminders(),
                settings=settings,
            ),
        )
    )
    gateway = SlackGateway(token=slack.token, api_url=slack.api_url, tiers=Tiers().scaled(1000.0))
    clock = _Clock()
    reach = Reach(db=db, gateway=gateway, clock=clock)
    outbox = Outbox(store=store, config=config, kick=lambda urgent: None)
    coordinator = Coordinator(connector=connector, store=store, outbox=outbox, reach=reach)
    return _Rig(harness, slack, db, store, gateway, connector, coordinator, clock)


async def measure(groups: int = 100, members: int = 10, missing: int = 10) -> dict[str, Any]:
    """One scenario read top to bottom: three syncs (first, no change, an hour later) and their counts."""
    harness = HarnessSandbox(slow_seconds=5.0)
    people = seed(harness, groups, members, missing)
    slack = SlackSandbox(people=people)
    await harness.start()
    await slack.start()
    rig = await _rig(harness, slack)
    approvers = groups * members
    not_in_slack = approvers - len(people)
    pages = groups * math.ceil(members / 100)
    try:
        first = await rig.sync()
        again = await rig.sync()
        rig.clock.offset = timedelta(minutes=61)
        # The background refresh asks at most REFRESH_PER_SYNC addresses a sync (Tier 3: ~50 a
        # minute), so the due answers are spread over as many syncs as that takes.
        hour_later = [await rig.sync() for _ in range(math.ceil(not_in_slack / REFRESH_PER_SYNC) or 1)]
        return {
            "approvers": approvers,
            "groups": groups,
            "not_in_slack": not_in_slack,
            "first_sync": first,
            "first_sync_floor": {"membership_calls": pages, "slack_lookups": approvers},
            "no_change_sync": again,
            "no_change_floor": {"membership_calls": 0, "slack_lookups": 0},
            "hour_later_syncs": len(hour_later),
            "hour_later": {k: sum(s[k] for s in hour_later) for k in first if k != "seconds"},
            "hour_later_floor": {"membership_calls": 0, "slack_lookups": not_in_slack},
        }
    finally:
        await rig.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reach")
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument(
        "--missing", type=int, default=10, help="per 100 approvers, how many are not in Slack"
    )
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args.groups, args.members, args.missing)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
