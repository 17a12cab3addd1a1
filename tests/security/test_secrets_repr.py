"""Objects that hold a decrypted credential print without it, and the demo's key file is private
from the moment it exists."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bot.demo import _demo_key
from connectors.base import Actor
from connectors.flexdeploy import FlexDeploySettings
from connectors.herzum import HerzumSettings
from connectors.herzum.client import HerzumClient
from store.crypto import CredentialBox
from store.repo import Store

SECRET = "pat-alice-s3cr3t-value"


async def test_identities_actors_and_linked_users_print_without_credentials(
    store: Store, secret_key: str
) -> None:
    await store.link(
        slack_user_id="U0ALICE",
        connector="deploys",
        vendor_user_id="alice",
        display_name="Alice",
        email="alice@example.com",
        credentials={"username": "alice", "secret": SECRET},
    )
    identity = await store.identity(slack_user_id="U0ALICE", connector="deploys")
    assert identity is not None and identity.credentials["secret"] == SECRET
    (linked,) = await store.linked_users(connector="deploys")
    actor = Actor("U0ALICE", "alice", "Alice", "alice@example.com", credentials=dict(identity.credentials))
    for thing in (identity, linked, actor, [identity], {"who": actor}):
        assert SECRET not in repr(thing) and SECRET not in str(thing), type(thing).__name__
    assert "alice" in repr(identity), "the rest of the repr still helps debugging"
    box = CredentialBox(secret_key)
    assert secret_key not in repr(box) and secret_key not in repr(store.box)


def test_vendor_settings_and_clients_print_without_secrets() -> None:
    herzum = HerzumSettings.model_validate(
        {"base_url": "https://jira.example.com", "username": "bot", "password": SECRET}
    )
    fd = FlexDeploySettings.model_validate(
        {"base_url": "https://fd.example.com", "username": "bot", "password": SECRET}
    )
    client = HerzumClient("https://jira.example.com", "alice", SECRET, timeout=1.0, sleep=_no_sleep)
    for thing in (herzum, fd, client, client.http):
        assert SECRET not in repr(thing), type(thing).__name__


async def _no_sleep(_: float) -> None:
    return None


def test_the_demo_key_file_is_created_0600_even_with_an_open_umask(tmp_path: Path) -> None:
    previous = os.umask(0)  # a careless shell: files would be world-readable by default
    try:
        key = _demo_key(tmp_path / "demo")
    finally:
        os.umask(previous)
    file = tmp_path / "demo" / "secret.key"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert CredentialBox(key).open(CredentialBox(key).seal({"a": "b"})) == {"a": "b"}
    assert _demo_key(tmp_path / "demo") == key, "a restart reads the same key"
