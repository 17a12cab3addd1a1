"""`approvals-bot rotate-key`, the whole way: credentials linked under an old key, the command run
as a real process with the new key first, then the bot restarted with only the new key, and a
click that still reaches the vendor as the person. A credential no key opens is reported per
person and its link marked for reconnect."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from bot.sandbox.slack_api import SlackSandbox
from connectors.flexdeploy.sandbox import FlexDeploySandbox
from store.crypto import CredentialBox
from store.db import Database
from store.models import IdentityRow
from store.repo import Store
from tests.harness import link_flexdeploy, start_flexdeploy_bot
from tests.processes import cli

pytestmark = pytest.mark.slow  # real processes: each start of the CLI costs seconds


async def _sealed(db: Database) -> dict[str, str]:
    async with db.session() as s:
        return {r.slack_user_id: r.credentials_enc or "" for r in (await s.exec(select(IdentityRow))).all()}


async def test_rotation_across_a_restart(db: Database, slack: SlackSandbox, fd: FlexDeploySandbox) -> None:
    old, new, lost = (Fernet.generate_key().decode() for _ in range(3))
    bot = await start_flexdeploy_bot(database_url=db.url, secret_key=old, slack=slack, fd=fd)
    try:
        await link_flexdeploy(bot, fd, "alice")  # under the old key, through Slack
    finally:
        await bot.stop()
    # Carol's credentials were sealed under a key nobody kept.
    await Store(db, CredentialBox(lost)).link(
        slack_user_id="U0CAROL",
        connector="deploys",
        vendor_user_id="carol",
        display_name="Carol",
        email="carol@example.com",
        credentials=fd.credentials("carol", token=True),
    )
    before = await _sealed(db)

    code, out, err = await cli(
        "rotate-key", env={"APPROVALS_SECRET_KEY": f"{new},{old}", "DATABASE_URL": db.url}, timeout=120
    )
    assert code == 1, (out, err)  # something could not be rotated: the admin must not drop keys blindly
    assert "rotated: 1 stored credential" in out
    assert "U0CAROL on deploys" in err and "marked for reconnect" in err
    after = await _sealed(db)
    assert after["U0ALICE"] != before["U0ALICE"]
    assert CredentialBox(new).open(after["U0ALICE"]) == fd.credentials("alice", token=True), (
        "opens with the new key alone"
    )
    for secret in (
        fd.credentials("alice", token=True)["secret"],
        fd.credentials("carol", token=True)["secret"],
    ):
        assert secret not in out + err

    # The bot restarted with only the new key: Alice's click reaches FlexDeploy as Alice.
    bot = await start_flexdeploy_bot(database_url=db.url, secret_key=new, slack=slack, fd=fd)
    try:
        await bot.poll()
        gate = bot.card("C0DEPLOYS", "Retail Web")
        await bot.click("carol", gate, "Approve")
        text = await bot.wait_private("carol", "no longer work")
        assert "Reconnect" in text
        assert fd.decisions == []
        await bot.click("alice", gate, "Approve")
        await bot.wait_card(gate, "Approved")
        assert [d[1:] for d in fd.decisions] == [("approve", "alice")]
    finally:
        await bot.stop()

    # Run again: nothing left under the old key; Carol is still reported until she reconnects.
    code, out, err = await cli(
        "rotate-key", env={"APPROVALS_SECRET_KEY": new, "DATABASE_URL": db.url}, timeout=120
    )
    assert code == 1 and "rotated: 1" in out and "U0CAROL" in err


async def test_rotate_key_needs_the_key(db: Database) -> None:
    code, _, err = await cli(
        "rotate-key", env={"APPROVALS_SECRET_KEY": "", "DATABASE_URL": db.url}, timeout=120
    )
    assert code == 2 and "APPROVALS_SECRET_KEY is not set" in err
    code, _, err = await cli(
        "rotate-key", env={"APPROVALS_SECRET_KEY": "not-a-key", "DATABASE_URL": db.url}, timeout=120
    )
    assert code == 2 and "Fernet keys" in err
