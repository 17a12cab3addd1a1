"""`approvals-bot demo` as a new user meets it: cards from every sandbox, and a click approves as the clicker."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.demo import start_demo

pytestmark = pytest.mark.slow


async def test_the_demo_shows_cards_and_a_click_approves_as_alice(tmp_path: Path) -> None:
    printed: list[str] = []
    demo = await start_demo(port=0, workdir=tmp_path, out=printed.append)
    try:
        slack = demo.slack
        fd = demo.sandboxes["flexdeploy"].extra
        gate = await slack.wait_for(
            lambda: next((m for m in slack.messages_in("C0DEPLOYS") if "CAB approval" in m.render()), None),
            timeout=15,
            what="the FlexDeploy release gate card",
        )
        await slack.wait_for(
            lambda: any("click as Alice" in chunk and gate.ts in chunk for chunk in printed),
            what="the terminal saying how to click",
        )
        reply = await slack.click(
            demo.bot_url, user="alice", channel=gate.channel, ts=gate.ts, label="Approve"
        )
        assert reply.status == 200
        await slack.wait_for(
            lambda: "Approved" in slack.messages[(gate.channel, gate.ts)].render(),
            timeout=10,
            what="approved card",
        )
        sandbox = fd["sandbox"]
        assert [d[1:] for d in sandbox.decisions] == [("approve", "alice")]
        # `/` on the bot's port sends a person to the page, which answers on the Slack sandbox's.
        bot_root = demo.bot_url.removesuffix("/slack/events") + "/"
        async with aiohttp.ClientSession() as http:
            async with http.get(bot_root, allow_redirects=False) as answer:
                assert (answer.status, answer.headers["Location"]) == (302, f"{slack.url}/")
            async with http.get(f"{slack.url}/") as page:
                assert page.status == 200 and "approvals-bot demo" in await page.text()
        # Every vendor with a demo has shown something by now.
        await slack.wait_for(lambda: len(slack.messages) >= 6, timeout=15, what="cards of the other vendors")
    finally:
        await demo.stop()
