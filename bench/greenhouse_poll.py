"""`python -m bench.greenhouse_poll [--approvers N] [--flows M]`: what a Greenhouse poll costs when
nothing changed, beside its floor.

Floor: the approvers pages, ceil(N / 500) requests (Harvest v3 pages `GET /v3/approvers?status=due`
by cursor, at most 500 a page). A no-change poll adds one `GET /v3/approval_flows?ids=` per 50
flows (so a flow decided in Greenhouse is seen at once), writes 0 rows and queues 0 Slack work. The bot's own sync (Coordinator) runs against the v3 sandbox with a real SQLite
store; nothing is posted to Slack, so "Slack work" is what the outbox would deliver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bot.config import Config, ConnectorConfig, Reminders
from bot.coordinator import Coordinator
from bot.outbox.queue import Outbox
from connectors.greenhouse.connector import GreenhouseConnector
from connectors.greenhouse.sandbox import GreenhouseSandbox
from connectors.greenhouse.settings import GreenhouseSettings
from store.crypto import CredentialBox
from store.db import Database
from store.repo import Store


def seed(sandbox: GreenhouseSandbox, approvers: int, flows: int) -> int:
    """`approvers` due slots spread over `flows` single-group flows; returns the service user."""
    admin = sandbox.add_user("Approvals Bot", "approvals-bot@example.com", site_admin=True)
    people = [sandbox.add_user(f"Approver {n}", f"approver{n}@example.com") for n in range(approvers)]
    for n in range(flows):
        job = sandbox.add_job(f"Job {n}")
        sandbox.add_flow(job, [(people[n::flows], 1)], requested_by=admin)
    return admin


def _coordinator(sandbox: GreenhouseSandbox, service: int, store: Store) -> Coordinator:
    """The bot's own sync of one Greenhouse connector against the sandbox, with Slack left out:
    what it would deliver stays in the outbox, to be counted."""
    settings = GreenhouseSettings.model_validate(
        {
            "base_url": sandbox.url,
            "auth_url": sandbox.auth_url,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "service_user_id": service,
        }
    )
    connector = GreenhouseConnector("hiring", settings)
    config = Config(
        connectors=(
            ConnectorConfig(
                name="hiring",
                type="greenhouse",
                poll_interval=timedelta(seconds=60),
                channel="C0HIRING",
                reminders=Reminders(),
                settings=settings,
            ),
        )
    )
    outbox = Outbox(store=store, config=config, kick=lambda urgent: None)
    return Coordinator(connector=connector, store=store, outbox=outbox)


async def measure(approvers: int, flows: int) -> dict[str, Any]:
    sandbox = GreenhouseSandbox(client_id="bench-client-1", client_secret="bench", rate_limit=100_000)
    service = seed(sandbox, approvers, flows)
    await sandbox.start()
    folder = Path(tempfile.mkdtemp(prefix="gh-bench-"))
    db = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await db.migrate()
    store = Store(db, CredentialBox(Fernet.generate_key().decode()))
    coordinator = _coordinator(sandbox, service, store)
    try:
        return await _two_polls(coordinator, sandbox, store, approvers=approvers, flows=flows)
    finally:
        await coordinator.connector.aclose()
        await db.dispose()
        await sandbox.stop()


async def _two_polls(
    coordinator: Coordinator, sandbox: GreenhouseSandbox, store: Store, *, approvers: int, flows: int
) -> dict[str, Any]:
    """The first poll (everything new), then one where nothing changed: its requests, rows and
    Slack work beside the floor."""
    started = time.perf_counter()
    first = await coordinator.run_once()
    first_s = time.perf_counter() - started
    first_requests = len(sandbox.query_log)
    outbox_before = await store.outbox_size()
    started = time.perf_counter()
    again = await coordinator.run_once()
    again_s = time.perf_counter() - started
    requests = len(sandbox.query_log) - first_requests
    assert first.ok and again.ok and again.plan is not None
    return {
        "approvers": approvers,
        "flows": flows,
        "first_poll_requests": first_requests,
        "first_poll_s": round(first_s, 3),
        "no_change_requests": requests,
        "floor_requests": math.ceil(approvers / 500),
        "no_change_rows_written": len(again.plan.new) + len(again.plan.changed) + len(again.plan.gone),
        "no_change_slack_work": await store.outbox_size() - outbox_before,
        "no_change_poll_s": round(again_s, 3),
        "tokens_minted": len(sandbox.minted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.greenhouse_poll")
    parser.add_argument("--approvers", type=int, default=1000)
    parser.add_argument("--flows", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args.approvers, args.flows)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
