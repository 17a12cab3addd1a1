"""`approvals-bot run | demo | check | poll --once | rotate-key | audit` (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.config import Config, ConfigError, Env, load_config, parse_duration

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("approvals-bot")


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    from bot.logs import FORMATS, LEVELS

    parser.add_argument("--log-level", choices=LEVELS, default="info")
    parser.add_argument(
        "--log-format", choices=FORMATS, default="text", help="text for people, json for a log collector"
    )


def _problems(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return 2


def _load(path: str | None, env: Env) -> Config:
    return load_config(path or env.approvals_config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from bot.logs import setup_logging

    setup_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    env = Env()
    if args.command == "rotate-key":
        return asyncio.run(_rotate_key(env))
    if args.command == "audit":
        return asyncio.run(_audit(env, args.since, args.connector, args.format))
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            code: int = asyncio.run(run_demo(port=args.port, workdir=args.dir))
            return code
        config = _load(args.config, env)
    except ConfigError as exc:
        return _problems(exc.problems)
    if args.command == "check":
        return asyncio.run(_check(config, env))
    if args.command == "poll":
        return asyncio.run(_poll(config, env, args.connector))
    return asyncio.run(_run(config, env, args.host, args.port))


def _parser() -> argparse.ArgumentParser:
    """Every command and its options; `--help` reads them from here."""
    parser = argparse.ArgumentParser(
        prog="approvals-bot", description="Approvals from five vendors, decided in Slack."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the bot: Slack endpoint, scheduler, store")
    run.add_argument("--config")
    run.add_argument("--host", default="0.0.0.0")
    run.add_argument("--port", type=int, default=3000)
    _add_log_options(run)
    demo = sub.add_parser("demo", help="everything on this machine with no accounts")
    demo.add_argument("--port", type=int, default=3000)
    demo.add_argument("--dir", default="./demo-data", help="working folder for the demo database")
    _add_log_options(demo)
    check = sub.add_parser("check", help="validate the config and reach every vendor and Slack")
    check.add_argument("--config")
    poll = sub.add_parser("poll", help="one sync cycle, then exit")
    poll.add_argument("--once", action="store_true", required=True)
    poll.add_argument("--connector")
    poll.add_argument("--config")
    rotate = sub.add_parser(
        "rotate-key", help="re-encrypt every stored credential under the first key of APPROVALS_SECRET_KEY"
    )
    rotate.add_argument("--config", help="accepted for symmetry: rotation needs only the environment")
    trail = sub.add_parser("audit", help="export who decided or tried what, when, through which card")
    trail.add_argument("--since", help="a date (YYYY-MM-DD, UTC) or an ISO date-time")
    trail.add_argument("--connector")
    trail.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    return parser


def _runtime(config: Config, env: Env) -> object:
    from bot.runtime import Runtime, SlackSettings

    token = env.slack_bot_token.get_secret_value() if env.slack_bot_token else ""
    secret = env.slack_signing_secret.get_secret_value() if env.slack_signing_secret else None
    return Runtime(
        config=config,
        database_url=env.database_url,
        secret_key=env.approvals_secret_key.get_secret_value() if env.approvals_secret_key else "",
        slack=SlackSettings(
            token=token, api_url=env.slack_api_url, signing_secret=secret, socket_mode=env.socket_mode
        ),
        lease=parse_duration(env.approvals_lease).total_seconds(),
    )


async def _run(config: Config, env: Env, host: str, port: int) -> int:
    from bot.heap import settle_heap
    from bot.runtime import Runtime
    from store.crypto import SecretKeyError

    problems = env.problems_for_run()
    if problems:
        return _problems(problems)
    try:
        runtime = _runtime(config, env)
    except SecretKeyError as exc:
        return _problems([str(exc)])
    assert isinstance(runtime, Runtime)
    await runtime.start()
    runner = await _serve_http(runtime, env, host, port)
    socket_handler = await _connect_socket_mode(runtime, env) if env.socket_mode else None
    if socket_handler is not None:
        log.info("Socket Mode connected; /healthz and /metrics on http://%s:%s", host, port)
    else:
        log.info("listening on http://%s:%s/slack/events (also /healthz, /metrics)", host, port)
    settle_heap()
    await _until_stopped()
    log.info("stopping")
    if socket_handler is not None:
        await socket_handler.close_async()
    await runner.cleanup()
    await runtime.stop()
    return 0


async def _serve_http(runtime: Runtime, env: Env, host: str, port: int) -> web.AppRunner:
    """/slack/events (unless Socket Mode carries Slack's requests), /healthz and /metrics."""
    from bot.server import build_web

    web_app = build_web(runtime, slack=not env.socket_mode, healthz_token=env.healthz_token)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _connect_socket_mode(runtime: Runtime, env: Env) -> Any:
    """Slack's requests over a websocket the bot opens: no public URL needed."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert runtime.app is not None
    assert env.slack_app_token is not None
    handler = AsyncSocketModeHandler(runtime.app, env.slack_app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM (a container stop), so shutdown runs in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _check(config: Config, env: Env) -> int:
    from connectors.errors import ConnectorError
    from connectors.registry import specs

    problems: list[str] = []
    available = specs()
    for c in config.connectors:
        connector = available[c.type].build(c.name, c.settings)
        try:
            what = await asyncio.wait_for(connector.check(), timeout=60)
            print(f"ok: {c.name} ({connector.vendor_label}): {what}")
        except (ConnectorError, TimeoutError) as exc:
            problems.append(f"{c.name} ({connector.vendor_label}): {_explain(exc)}")
        finally:
            await connector.aclose()
        if c.channel is None and not connector.capabilities.per_user_listing:
            print(f"note: {c.name} has no channel: cards whose approvers cannot be named will not be posted")
    problems.extend(await _check_slack(config, env))
    if not env.socket_mode and not (env.slack_signing_secret and env.slack_signing_secret.get_secret_value()):
        problems.append("SLACK_SIGNING_SECRET is not set (required in HTTP mode)")
    if problems:
        return _problems(problems)
    print("all checks passed")
    return 0


async def _check_slack(config: Config, env: Env) -> list[str]:
    """The Slack half of `check`: the token, its scopes and channels, and the configured admins."""
    token = env.slack_bot_token.get_secret_value() if env.slack_bot_token else ""
    if not token:
        return ["Slack: SLACK_BOT_TOKEN is not set, so Slack was not checked"]
    from bot.slack.gateway import SlackFailure, SlackGateway

    gateway = SlackGateway(token=token, api_url=env.slack_api_url)
    problems: list[str] = []
    try:
        auth = await gateway.whoami()
        print(f"ok: Slack: connected as {auth.get('user')} in {auth.get('team')}")
        problems.extend(await _slack_install_problems(gateway, config, str(auth.get("granted_scopes", ""))))
        problems.extend(await _admin_problems(gateway, config.admins))
    except SlackFailure as exc:
        if exc.kind.name == "RETRY" and exc.error not in ("ratelimited", "rate_limited"):
            problems.append(f"Slack: could not reach {env.slack_api_url}: {exc.error}")
        else:
            problems.append(f"Slack: auth.test failed: {exc.error}")
    finally:
        await gateway.aclose()
    return problems


async def _admin_problems(gateway: object, admins: Sequence[str]) -> list[str]:
    """The `[slack] admins` Slack does not know; says ok when all are known."""
    from bot.authz import problems_with_ids
    from bot.slack.gateway import SlackGateway

    assert isinstance(gateway, SlackGateway)
    if not admins:
        return []
    bad = await problems_with_ids(gateway, admins)
    if not bad:
        print(f"ok: Slack: [slack] admins ({len(admins)}) are known to this workspace")
    return bad


async def _slack_install_problems(gateway: object, config: Config, scopes: str) -> list[str]:
    from bot.slack.gateway import SlackGateway
    from bot.slack_install import channel_problems, configured_channels, granted_scopes, missing_scopes

    assert isinstance(gateway, SlackGateway)
    problems: list[str] = []
    missing = missing_scopes(granted_scopes(scopes))
    if missing:
        problems.append(
            f"Slack: the token lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            "add them (manifest.yml lists them all) and reinstall the app"
        )
    else:
        print("ok: Slack: every scope the bot uses is granted")
    channels = configured_channels([config.notify_channel, *(c.channel for c in config.connectors)])
    if "channels:read" in missing:
        return problems  # conversations.info would only answer missing_scope
    found = await channel_problems(gateway, channels)
    problems.extend(found)
    if channels and not found:
        print(f"ok: Slack: the bot is in every configured channel ({', '.join(channels)})")
    return problems


async def _rotate_key(env: Env) -> int:
    from store.crypto import CredentialBox, SecretKeyError
    from store.db import Database
    from store.keys import rotate_credentials

    keys = env.approvals_secret_key.get_secret_value() if env.approvals_secret_key else ""
    if not keys.strip():
        return _problems(
            ["APPROVALS_SECRET_KEY is not set: give the new key first, then the old ones, comma-separated"]
        )
    try:
        box = CredentialBox(keys)
    except SecretKeyError as exc:
        return _problems([str(exc)])
    db = Database(env.database_url)
    try:
        await db.migrate()
        report = await rotate_credentials(db=db, box=box)
    finally:
        await db.dispose()
    print(f"rotated: {report.rotated} stored credential(s) now encrypted under the first key")
    for lost in report.unreadable:
        print(
            f"error: no key opens the credentials of Slack user {lost.slack_user_id} on {lost.connector}: "
            "their link is marked for reconnect (they are asked on their next click)",
            file=sys.stderr,
        )
    if report.unreadable:
        return 1
    print("every stored credential opens with the first key: the other keys may now be removed")
    return 0


async def _audit(env: Env, since: str | None, connector: str | None, form: str) -> int:
    import csv
    import json

    from store.audit import FIELDS, records
    from store.db import Database

    start = None
    if since:
        start = _parse_since(since)
        if start is None:
            return _problems(
                [f"--since {since}: use a date like 2026-12-01 or a date-time like 2026-12-01T09:00Z"]
            )
    db = Database(env.database_url)
    try:
        await db.migrate()
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS) if form == "csv" else None
        if writer is not None:
            writer.writeheader()
        async for record in records(db, since=start, connector=connector):
            if writer is not None:
                writer.writerow(record.as_dict())
            else:
                print(json.dumps(record.as_dict(), ensure_ascii=False))
    finally:
        await db.dispose()
    return 0


def _parse_since(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _explain(exc: BaseException) -> str:
    from bot.wording import explain_failure

    return explain_failure(exc).removeprefix("the vendor ")


async def _poll(config: Config, env: Env, only: str | None) -> int:
    from bot.runtime import Runtime

    if only and config.connector(only) is None:
        return _problems(
            [f"--connector {only}: no such connector (known: {', '.join(c.name for c in config.connectors)})"]
        )
    runtime = _runtime(config, env)
    assert isinstance(runtime, Runtime)
    await runtime.start(background=False)
    try:
        results = await runtime.poll_once(only)
    finally:
        await runtime.stop()
    failed = 0
    for name, result in results.items():
        if result.ok and result.plan is not None:
            plan = result.plan
            print(
                f"{name}: {result.pending} pending ({len(plan.new)} new, {len(plan.changed)} changed, "
                f"{len(plan.gone)} left the list)"
            )
        else:
            failed += 1
            print(f"{name}: failed: {result.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
