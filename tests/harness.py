"""The bot under test: the real Runtime and aiohttp server, talking to the Slack sandbox and to
vendor sandboxes over 127.0.0.1, on a real database. Nothing of ours is patched."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from aiohttp import web

from bot.config import Config, ConnectorConfig, Reminders
from bot.runtime import Runtime, SlackSettings
from bot.sandbox.slack_api import SlackSandbox, StoredMessage
from bot.server import build_web
from bot.slack.gateway import Tiers
from connectors.base import Connector
from connectors.registry import specs


def connector_config(
    name: str, type_name: str, settings: dict[str, Any], *, channel: str | None = "C0DEPLOYS", poll: int = 60
) -> ConnectorConfig:
    return ConnectorConfig(
        name=name,
        type=type_name,
        poll_interval=timedelta(seconds=poll),
        channel=channel,
        reminders=Reminders(),
        settings=specs()[type_name].settings.model_validate(settings),
    )


@dataclass
class Bot:
    runtime: Runtime
    slack: SlackSandbox
    url: str
    runner: web.AppRunner

    async def poll(self) -> None:
        await self.runtime.poll_once()
        await self.settle()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until every queued Slack delivery is done (the delivery loop runs in the background)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.runtime.store.outbox_size():
            self.runtime.delivery.kick()
            if loop.time() > deadline:
                raise TimeoutError("the outbox did not drain")
            await asyncio.sleep(0.02)

    def cards(self, channel: str) -> list[StoredMessage]:
        return [
            m
            for m in self.slack.messages_in(
                self.slack.dm_channel(channel) if channel.startswith("U") else channel
            )
            if not m.thread_ts
        ]

    def card(self, channel: str, contains: str = "") -> StoredMessage:
        matches = [m for m in self.cards(channel) if contains in m.render()]
        assert len(matches) == 1, f"expected one card with {contains!r} in {channel}, found {len(matches)}"
        return matches[0]

    async def click(self, user: str, message: StoredMessage, label: str) -> None:
        reply = await self.slack.click(
            self.url, user=user, channel=message.channel, ts=message.ts, label=label
        )
        assert reply.status == 200, reply.text

    async def command(self, user: str, text: str, channel: str = "C0GENERAL") -> None:
        reply = await self.slack.command(self.url, user=user, text=text, channel=channel)
        assert reply.status == 200, reply.text

    def last_private(self, user: str) -> str:
        mine = self.slack.ephemerals_for(self.slack.person(user).slack_id)
        return mine[-1].render() if mine else ""

    async def wait_private(self, user: str, contains: str, timeout: float = 5.0) -> str:
        def found() -> str:
            for e in reversed(self.slack.ephemerals_for(self.slack.person(user).slack_id)):
                text = e.render()
                if contains in text:
                    return text
            return ""

        return await self.slack.wait_for(found, timeout, what=f"a private message with {contains!r}")

    async def wait_card(self, message: StoredMessage, contains: str, timeout: float = 5.0) -> str:
        key = (message.channel, message.ts)

        def found() -> str:
            text = self.slack.messages[key].render()
            return text if contains in text else ""

        return await self.slack.wait_for(found, timeout, what=f"card {key} showing {contains!r}")

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.runtime.stop()


async def start_bot(
    *,
    database_url: str,
    secret_key: str,
    slack: SlackSandbox,
    connectors: Sequence[ConnectorConfig],
    notify_channel: str | None = None,
    instances: Mapping[str, Connector] | None = None,
    home_settle: float = 0.0,
    admins: Sequence[str] = (),
    slack_tiers: Tiers | None = None,
    reminders: Reminders | None = None,
) -> Bot:
    """`reminders`: the config's own [reminders] (working hours and the digest), not a connector's.
    `instances`: connectors built by the test (e.g. with short timeouts), by name.
    `slack_tiers`: Slack's limits as the bot paces them (default: scaled far up, out of the way).
    `home_settle` is 0 unless a test is about it: an App Home republished at once keeps tests short.
    `admins`: the config's [slack] admins."""
    config = Config(
        connectors=tuple(connectors),
        notify_channel=notify_channel,
        admins=tuple(admins),
        reminders=reminders or Reminders(),
    )
    runtime = Runtime(
        config=config,
        database_url=database_url,
        secret_key=secret_key,
        slack=SlackSettings(token=slack.token, api_url=slack.api_url, signing_secret=slack.signing_secret),
        deliver_interval=0.05,
        connectors=instances,
        slack_rate=(1000.0, 1000.0),
        slack_tiers=slack_tiers or Tiers().scaled(1000.0),
        home_settle=home_settle,
    )
    await runtime.start(background=True, poll=False)
    runner = web.AppRunner(build_web(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/slack/events"
    slack.bot_url = url
    return Bot(runtime=runtime, slack=slack, url=url, runner=runner)


class _Sandbox(Protocol):
    def connector_settings(self) -> dict[str, Any]: ...


class SandboxKit(Protocol):
    """A contract kit whose sandbox writes its own [[connectors]] table (Harness, Herzum)."""

    @property
    def type(self) -> str: ...

    @property
    def sandbox(self) -> _Sandbox: ...

    def build(self) -> Connector: ...


async def start_kit_bot(
    kit: SandboxKit,
    name: str,
    *,
    channel: str,
    database_url: str,
    secret_key: str,
    slack: SlackSandbox,
    **options: Any,
) -> Bot:
    """The bot with one connector `name` on the kit's sandbox, the instance built by the kit (its
    short test timeouts). `options`: other fields of the connector's config (e.g. reach=...)."""
    config = connector_config(name, kit.type, kit.sandbox.connector_settings(), channel=channel)
    return await start_bot(
        database_url=database_url,
        secret_key=secret_key,
        slack=slack,
        connectors=[replace(config, **options)],
        instances={name: kit.build()},
    )


async def start_flexdeploy_bot(
    *,
    database_url: str,
    secret_key: str,
    slack: SlackSandbox,
    fd: Any,
    notify_channel: str | None = None,
    timeout: float = 15.0,
    home_settle: float = 0.0,
    admins: Sequence[str] = (),
    reminders: Reminders | None = None,
    slack_tiers: Tiers | None = None,
) -> Bot:
    """The bot with one FlexDeploy connector `deploys` (channel C0DEPLOYS) on the given sandbox."""
    from connectors.flexdeploy import FlexDeploySettings
    from connectors.flexdeploy.connector import FlexDeployConnector

    settings = fd.connector_settings()
    connector = FlexDeployConnector(
        "deploys", FlexDeploySettings.model_validate(settings), timeout=timeout, backoff_base=0.01
    )
    return await start_bot(
        database_url=database_url,
        secret_key=secret_key,
        slack=slack,
        notify_channel=notify_channel,
        connectors=[
            replace(
                connector_config("deploys", "flexdeploy", settings, channel="C0DEPLOYS"),
                reminders=reminders or Reminders(),
            )
        ],
        instances={"deploys": connector},
        home_settle=home_settle,
        admins=admins,
        slack_tiers=slack_tiers,
    )


async def submit_harness_key(bot: Bot, user: str, key: str) -> None:
    """`user` submits the Harness connect modal that a command or a card's Connect button opened."""
    await bot.slack.wait_for(lambda: bot.slack.open_modals(user), what="the connect modal")
    result = await bot.slack.submit_view(bot.url, user=user, values={"Personal API key": key})
    assert result.closed, result.text


async def link_flexdeploy(bot: Bot, fd: Any, user: str, *, token: bool = True) -> None:
    """`user` links their FlexDeploy account through /approvals connect, as a person would."""
    await bot.command(user, "connect deploys")
    await bot.slack.wait_for(lambda: bot.slack.open_modals(user), what="the connect modal")
    credentials = fd.credentials(user, token=token)
    result = await bot.slack.submit_view(
        bot.url,
        user=user,
        values={"Username": credentials["username"], "Password or API token": credentials["secret"]},
    )
    assert result.closed, result.text
    await bot.wait_private(user, "Linked")
