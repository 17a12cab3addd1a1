"""The demo's Slack-like page in a real browser, as a newcomer uses it.

Every click here goes through the page to the Slack sandbox, which signs it and POSTs it to the
bot's /slack/events; what the test sees is what the bot posted back through the Web API.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.demo import Demo
from tests.browser.conftest import screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # The Harness and Herzum sandboxes keep request state under str keys, which aiohttp 3.14 warns
    # about; the warnings filter turns that into a 500 inside the sandbox. Not this page's concern.
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

GATE = "CAB approval: release 2026.11"
WAIT = 20_000  # ms: a card changes after the bot's vendor call and chat.update


async def _open(browser: Any, demo: Demo, who: str, width: int = 1280) -> Any:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    await page.goto(f"{demo.slack.url}/?as={who}")
    await page.wait_for_selector("body[data-ready]")
    return page


def _card(page: Any, text: str) -> Any:
    return page.locator(".main .msg:not(.ephemeral)", has_text=text).first


async def _wait_card(page: Any, text: str) -> Any:
    from playwright.async_api import expect

    card = _card(page, text)
    await expect(card).to_be_visible(timeout=WAIT)
    return card


async def test_the_page_loads_with_what_to_try_and_the_first_cards(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    await expect(page.locator("#intro p")).to_have_count(3)
    await expect(page.locator("#title")).to_have_text("#deploys")
    card = await _wait_card(page, GATE)
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    await expect(page.locator("#who")).to_have_value("U0ALICE")
    await screenshot(page, "page-desktop")
    phone = await _open(browser, demo, "alice", width=390)
    await _wait_card(phone, GATE)
    await screenshot(phone, "page-phone")


async def test_alice_approves_the_release_gate_and_every_copy_says_so(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    card = await _wait_card(page, GATE)
    await card.get_by_role("button", name="Approve", exact=True).click()
    await expect(card).to_contain_text("Approved by @alice", timeout=WAIT)
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    await screenshot(page, "approved")
    copies = [m for m in demo.slack.messages.values() if GATE in m.render()]
    assert copies
    for copy in copies:
        await page.locator(f'[data-conv="{copy.channel}"]').click()
        shown = page.locator(f'.main .msg[data-ts="{copy.ts}"]')
        await expect(shown).to_contain_text("Approved by @alice", timeout=WAIT)
        await expect(shown.get_by_role("button", name="Approve", exact=True)).to_have_count(0)


async def test_bob_is_asked_to_link_then_links_and_approves(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "bob")
    card = await _wait_card(page, GATE)
    await card.get_by_role("button", name="Approve", exact=True).click()
    prompt = page.locator(".main .msg.ephemeral", has_text="link your own FlexDeploy account")
    await expect(prompt).to_be_visible(timeout=WAIT)
    await expect(card).not_to_contain_text("Approved")
    await prompt.get_by_role("button", name=re.compile("Connect")).click()
    modal = page.get_by_role("dialog", name="Connect FlexDeploy")
    await expect(modal).to_be_visible(timeout=WAIT)
    credentials = demo.sandboxes["flexdeploy"].people["bob@example.com"]
    await modal.get_by_label("Username").fill(credentials["username"])
    await modal.get_by_label("Password or API token").fill(credentials["secret"])
    await modal.get_by_role("button", name="Connect").click()
    await expect(modal).to_be_hidden(timeout=WAIT)
    await card.get_by_role("button", name="Approve", exact=True).click()
    await expect(card).to_contain_text("Approved by @bob", timeout=WAIT)
    assert credentials["secret"] not in await page.content()


async def test_reject_with_a_reason_shows_the_card_rejected_with_it(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    card = await _wait_card(page, GATE)
    await card.get_by_role("button", name="Reject", exact=True).click()
    confirm = page.get_by_role("dialog", name="Reject?")
    await expect(confirm).to_be_visible()
    await confirm.get_by_role("button", name="Reject").click()
    modal = page.locator(".overlay form.modal")
    await expect(modal).to_be_visible(timeout=WAIT)
    await modal.get_by_label("Reason").fill("Not during the change freeze")
    await screenshot(page, "reject-modal")
    await modal.locator("button[type=submit]").click()
    await expect(modal).to_be_hidden(timeout=WAIT)
    await expect(card).to_contain_text("Rejected by @alice", timeout=WAIT)
    await expect(card).to_contain_text("Not during the change freeze")


async def test_app_home_bulk_approves_two_items(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    await _wait_card(page, GATE)
    await page.locator("#home-link").click()
    several = page.get_by_role("button", name="Approve several…")
    await expect(several).to_be_visible(timeout=WAIT)
    await screenshot(page, "home")
    await several.click()
    modal = page.get_by_role("dialog", name="Approve several")
    await expect(modal).to_be_visible(timeout=WAIT)
    # FlexDeploy items: approvable in one click (Herzum's here need a comment, which Jira says only
    # when asked, and the result would say so instead).
    boxes = modal.locator(".input label", has_text="(flexdeploy)")
    chosen = []
    for n in range(2):
        label = boxes.nth(n)
        chosen.append((await label.inner_text()).strip().rsplit(" (", 1)[0])
        await label.locator("input[type=checkbox]").check()
    await modal.get_by_role("button", name="Approve selected").click()
    await expect(modal).to_contain_text("2 of 2 approved", timeout=WAIT)
    for title in chosen:
        await demo.slack.wait_for(
            lambda title=title: any(
                title in m.render() and "Approved by" in m.render() for m in demo.slack.messages.values()
            ),
            timeout=WAIT / 1000,
            what=f"{title} approved",
        )
    await modal.locator("footer button").first.click()
    await expect(modal).to_be_hidden(timeout=WAIT)
    await page.locator('[data-conv="C0DEPLOYS"]').click()
    approved = page.locator(".main .msg", has_text="Approved by @alice")
    await expect(approved.first).to_be_visible(timeout=WAIT)


async def test_deciding_in_the_vendor_panel_updates_the_card(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    card = await _wait_card(page, GATE)
    await page.locator("#vendors-toggle").click()
    flexdeploy = page.locator('.vendor[data-vendor="flexdeploy"]')
    task = str(demo.sandboxes["flexdeploy"].extra["tasks"]["release_gate"])
    item = flexdeploy.locator(f'li[data-item="{task}"]')
    await screenshot(page, "vendor-panel")
    await item.get_by_role("button", name="Approve in FlexDeploy").click()
    await expect(item).to_have_count(0, timeout=WAIT)
    await page.locator("#vendors-toggle").click()
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_have_count(0, timeout=WAIT)
    await expect(card).to_contain_text("Approved", timeout=WAIT)


async def test_a_failing_vendor_shows_a_private_error_and_the_card_stays(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    card = await _wait_card(page, GATE)
    await page.locator("#vendors-toggle").click()
    await (
        page.locator('.vendor[data-vendor="flexdeploy"]').get_by_role("button", name="Next call: 500").click()
    )
    await page.locator("#vendors-toggle").click()
    await card.get_by_role("button", name="Approve", exact=True).click()
    error = page.locator(".main .msg.ephemeral", has_text="FlexDeploy")
    await expect(error).to_be_visible(timeout=WAIT)
    await expect(error).to_contain_text("Only visible to you")
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    assert demo.sandboxes["flexdeploy"].extra["sandbox"].decisions == []


async def test_a_greenhouse_approver_is_reassigned_from_the_card(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    await page.locator('[data-conv="D0ALICE"]').click()
    card = await _wait_card(page, "Offer to Jordan Rivera")
    await card.get_by_role("button", name="Reassign").click()
    modal = page.get_by_role("dialog", name="Reassign")
    await expect(modal).to_be_visible(timeout=WAIT)
    await modal.get_by_label("Approver to replace").select_option(label="Group 1: Alice Approver")
    await modal.get_by_label("New approver").select_option(label="dave (Dave Deployer)")
    await modal.get_by_role("button", name="Reassign").click()
    await expect(modal).to_be_hidden(timeout=WAIT)
    greenhouse = demo.sandboxes["greenhouse"].extra["sandbox"]
    seated = {email: uid for uid, user in greenhouse.users.items() for email in user.emails}
    offer = next(f for f in greenhouse.flows.values() if f.approval_type == "offer_candidate")
    first = min(offer.groups, key=lambda g: g.sort_order)
    await demo.slack.wait_for(
        lambda: {s.user_id for s in first.seats} == {seated["dave@example.com"], seated["bob@example.com"]},
        timeout=WAIT / 1000,
        what="Dave in Alice's seat of the offer's first group, in Greenhouse",
    )
    await expect(card).to_contain_text("no longer waits on you", timeout=WAIT)
    await expect(card.get_by_role("button", name="Reassign")).to_have_count(0)


async def test_an_approval_added_in_the_vendor_arrives_as_a_card(browser: Any, demo: Demo) -> None:
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    await _wait_card(page, GATE)
    await page.locator("#vendors-toggle").click()
    await (
        page.locator('.vendor[data-vendor="flexdeploy"]')
        .get_by_role("button", name="Add an approval")
        .click()
    )
    await page.locator("#vendors-toggle").click()
    card = await _wait_card(page, "Payments 2.5")
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_be_visible()


async def test_a_reminder_arrives_in_a_thread_of_the_dm(browser: Any, demo: Demo) -> None:
    """The demo's reminders are due seconds after a card; the reminder pass runs once a minute."""
    from playwright.async_api import expect

    page = await _open(browser, demo, "alice")
    await page.locator('[data-conv="D0ALICE"]').click()
    replies = page.locator(".main .msg .replies").first
    await expect(replies).to_be_visible(timeout=90_000)
    await replies.click()
    await expect(page.locator("#thread-messages")).to_contain_text("reminder 1 of", timeout=WAIT)
    await screenshot(page, "reminder")
