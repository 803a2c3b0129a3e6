"""The dashboard page driven in headless Chromium against the real local stack, through the API only.

A Stripe account of the emulator with a seeded history (four currencies, refunds, Checkout Sessions
naming visitors) and visitors with acquisition sources; one visitor also subscribes and pays and is
refunded live, through Stripe's API, so that its timeline has every kind of event. The page: a
publishable key, a key missing permissions and a revoked key are refused in the API's words, the real
key connects, the import's progress runs to completed, the chart and the tier split show, the
visitor's timeline marks refunds and context events, re-sync clears and imports again, disconnect
removes the data.
Screenshots go to a temporary folder, or to docs/screenshots/ (the README shows one) with
SAVE_SCREENSHOTS=1: a test run leaves the work tree as it was.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl
from tests.stack_process import stack_process

if TYPE_CHECKING:
    import stripe
    from playwright.sync_api import Browser, Page

JWT_SECRET = "browser-secret-of-at-least-thirty-two-bytes"
PROJECT = "browser-shop"
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("SAVE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "ripples-screenshots"
)
SOURCES = ["google", "newsletter", "twitter", "producthunt", "(direct)"]
SEEDED_CUSTOMERS = 36
STAR = "vis-ada"  # the visitor whose timeline the test reads


@dataclass
class Stack:
    base_url: str
    control: EmulatorControl

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {issue_token([PROJECT], JWT_SECRET)}"}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`python -m local.stack` as `make run` starts it, on free ports (this test makes its own account)."""
    with stack_process(tmp_path_factory.mktemp("browser-stack"), JWT_SECRET) as running:
        yield Stack(running.base_url, EmulatorControl(running.stripe_url))


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1180, "height": 900}, locale="en-US", timezone_id="UTC")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    # The only console errors allowed are the browser's own notes of the API's refusals the test provokes.
    unexpected = [error for error in errors if "status of 4" not in error]
    assert not unexpected, unexpected


def subscribe_and_pay(merchant: stripe.StripeClient, visitor: str, email: str) -> None:
    """A subscription bought through Checkout naming the visitor, a one-off payment, a partial refund."""
    product = merchant.v1.products.create(params={"name": "Ripples Pro"})
    price = merchant.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 4900,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "nickname": "Pro monthly",
        }
    )
    session = merchant.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "success_url": "https://shop.example/thanks",
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"ripples_visitor_id": visitor},
        }
    )
    response = merchant.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session.id}/complete", email=email)
    completed = merchant.deserialize(response, api_mode="V1")
    intent = merchant.v1.payment_intents.create(
        params={
            "amount": 12000,
            "currency": "usd",
            "customer": completed.customer,
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    assert isinstance(intent.latest_charge, str)
    merchant.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 2500})


def money(text: str) -> float:
    """A formatted amount as a number: "$1,234.50" -> 1234.5."""
    return float(re.sub(r"[^\d.]", "", text))


def shoot(page: Page, name: str, **options: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), **options)


# Every visible text's contrast against its background (WCAG 2 AA: 4.5, 3 for large text).
CONTRAST_FAILURES = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode;
    const el = text.parentElement;
    if (!text.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const box = el.getBoundingClientRect();
    const skipped = el.closest("[hidden], .visually-hidden, dialog:not([open]), button:disabled");
    if (!box.width || !box.height || skipped) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color), bg = background(el);
    const ratio = (Math.max(lum(fg), lum(bg)) + 0.05) / (Math.min(lum(fg), lum(bg)) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    const what = text.textContent.trim().slice(0, 40);
    if (ratio < (large ? 3 : 4.5)) failures.push(`${el.tagName} "${what}": ${ratio.toFixed(2)}`);
  }
  return failures;
}"""

# Every visible form control has a label, every button a name.
UNLABELLED = """() => [...document.querySelectorAll("input, select, button")]
  .filter((el) => el.getClientRects().length && !el.closest("[hidden]"))
  .filter((el) => (el.tagName === "BUTTON" ? !el.textContent.trim() && !el.ariaLabel : !el.labels.length))
  .map((el) => el.outerHTML.slice(0, 80))"""


def assert_accessible(page: Page) -> None:
    assert page.evaluate(CONTRAST_FAILURES) == []
    assert page.evaluate(UNLABELLED) == []


def wait_for_import(page: Page, run: int, timeout_s: float = 45) -> None:
    details = page.locator("#backfill-details")
    page.wait_for_function(
        "run => document.querySelector('#backfill-status').textContent === 'Complete'"
        " && document.querySelector('#backfill-details').textContent.endsWith('run ' + run)",
        arg=run,
        timeout=timeout_s * 1000,
    )
    assert re.search(r"\d[\d,]* charges imported · oldest reached \w{3} \d+, \d{4}", details.inner_text())


def test_connect_import_report_timeline_resync_disconnect(browser: Browser, stack: Stack, page: Page) -> None:
    started = time.monotonic()
    # Given an emulator account with a year of history and visitors of the project
    account = stack.control.create_account()
    merchant = stack.control.client(account.secret_key)
    now = int(time.time())
    stack.control.seed(
        account.id,
        customers=SEEDED_CUSTOMERS,
        charges_per_customer=3,
        start=now - 400 * 86_400,
        end=now - 3600,
        currencies=["usd", "eur", "jpy", "kwd"],
        refund_rate=0.2,
        checkout_rate=0.6,
        visitor_id_rate=0.7,
        visitor_prefix="visitor-",
    )
    for index in range(SEEDED_CUSTOMERS - 6):  # the last few customers stay unattributed
        body: dict[str, Any] = {"acquisition": {"source": SOURCES[index % len(SOURCES)], "medium": "web"}}
        if index % 3 == 0:
            body["email"] = f"customer{index}@example.com"
        status, _ = stack.call("PUT", f"/projects/{PROJECT}/visitors/visitor-{index}", body)
        assert status == 200
    ada = {"name": "Ada Lovelace", "email": "ada@example.com"}
    ada["acquisition"] = {"source": "newsletter", "medium": "email", "campaign": "spring-launch"}  # type: ignore[assignment]
    assert stack.call("PUT", f"/projects/{PROJECT}/visitors/{STAR}", ada)[0] == 200
    weak_key = stack.control.create_key(account.id, ["rak_charge_read", "rak_customer_read"])
    revoked_key = stack.control.create_key(account.id, ["rak_charge_read"])
    stack.control.revoke_key(revoked_key)

    # When the page opens for the project: not connected, a key field and Connect
    page.goto(f"{stack.base_url}/?project={PROJECT}")
    page.get_by_text("Not connected").wait_for()
    key_field = page.get_by_label("Restricted API key")
    assert key_field.is_visible()
    assert_accessible(page)
    # The focus order follows the page: the skip link, the key field, Connect, then the revenue's range
    focused = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.id || document.activeElement.className"))
    assert focused == ["skip-link", "api-key", "connect-button", "range-from"]

    # A publishable key is refused with the API's message
    key_field.fill("pk_test_51Hxyz0123456789abcdef")
    page.get_by_role("button", name="Connect").click()
    error = page.locator("#connect-error")
    error.get_by_text("publishable key").wait_for()
    assert error.get_attribute("data-code") == "invalid_key_format"
    assert key_field.get_attribute("aria-invalid") == "true"

    # A restricted key without every permission: each missing one named as Stripe's dashboard does
    key_field.fill(weak_key)
    page.get_by_role("button", name="Connect").click()
    error.locator("li").first.wait_for()
    assert error.get_attribute("data-code") == "missing_permissions"
    missing = error.locator("li").all_inner_texts()
    assert "Webhook Endpoints: Write" in missing
    assert "Checkout Sessions: Read" in missing
    assert "Charges: Read" not in missing
    shoot(page, "stripe-connect-error.png", clip={"x": 0, "y": 0, "width": 1180, "height": 520})

    # A revoked key: Stripe's refusal, in the API's words
    key_field.fill(revoked_key)
    page.get_by_role("button", name="Connect").click()
    page.wait_for_function("() => document.querySelector('#connect-error').dataset.code === 'stripe_key_rejected'")
    assert error.locator("li").count() == 0
    assert "Stripe rejected this key" in error.inner_text()

    # When the merchant's restricted key is pasted: connected, and the import's progress shows
    stack.control.set_latency(account.id, 1500)  # Stripe's pace, so that the import is seen under way
    key_field.fill(account.restricted_key)
    page.get_by_role("button", name="Connect").click()
    page.locator("#stripe-status", has_text=re.compile("^Connected$")).wait_for()
    assert page.locator("#fact-mode").inner_text() == "Test"
    assert page.locator("#fact-key").inner_text() == f"rk_test_...{account.restricted_key[-4:]}"
    assert page.locator("#fact-webhook code").inner_text().startswith("we_")
    assert page.locator("#connect-error").is_hidden()
    # The progress bar while charges come in (documentation only: a fast import may finish first)
    page.wait_for_function(
        "() => { const s = document.querySelector('#backfill-status').textContent;"
        " return s === 'Complete' || (s === 'Importing' && /^Phase: \\w.* [1-9][\\d,]* charges? imported/"
        ".test(document.querySelector('#backfill-details').textContent)); }",
        timeout=45_000,
    )
    if page.locator("#backfill-status").inner_text() == "Importing":
        shoot(page, "stripe-importing.png", clip={"x": 0, "y": 0, "width": 1180, "height": 420})
    stack.control.set_latency(account.id, 0)
    subscribe_and_pay(merchant, STAR, "ada@example.com")  # live webhooks while the history is imported
    wait_for_import(page, run=1)
    assert page.locator("#backfill-progress").evaluate("bar => bar.value") == 100

    # Then the revenue view: totals with each currency's decimals, the chart, the tier split
    page.locator("#totals li[data-currency='kwd']").wait_for()
    totals = {
        li.get_attribute("data-currency"): li.locator(".amount").inner_text() for li in page.locator("#totals li").all()
    }
    assert set(totals) == {"eur", "jpy", "kwd", "usd"}
    assert re.fullmatch(r"¥[\d,]+", totals["jpy"]), totals  # JPY: no decimals
    assert re.fullmatch(r"KWD\s[\d,]+\.\d{3}", totals["kwd"]), totals  # KWD: three
    assert re.fullmatch(r"\$[\d,]+\.\d{2}", totals["usd"]), totals
    assert page.locator("#chart-currency").input_value() == "usd"
    bars = page.locator("#source-chart tbody tr.source")
    assert bars.count() >= 3
    sources = [row.get_attribute("data-source") for row in bars.all()]
    assert set(sources) <= {*SOURCES}
    width_of = "els => els.map(e => parseFloat(e.style.width))"
    widths = bars.locator(".bar").evaluate_all(width_of)
    assert widths == sorted(widths, reverse=True)  # sources by revenue, the unattributed bar last
    assert max(page.locator("#source-chart .bar").evaluate_all(width_of)) == 100
    assert page.locator("#tier-table tr[data-tier='1'] td.num").first.inner_text().startswith("$")
    unattributed_share = page.locator("#tier-table tr[data-tier='none'] td.num").last.inner_text()
    assert unattributed_share.endswith("%")
    page.locator("#chart-currency").select_option("jpy")
    assert page.locator("#source-title").inner_text().endswith("(JPY)")
    assert re.fullmatch(r"¥[\d,]+", page.locator("#source-chart tbody tr td.num").first.inner_text())
    page.locator("#chart-currency").select_option("usd")

    # A date range: charges created in it, the end date included
    all_time_usd = totals["usd"]
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 60 * 86_400))
    page.get_by_label("From", exact=True).fill(since)
    page.get_by_label("To (inclusive)").fill(time.strftime("%Y-%m-%d", time.gmtime(now)))
    page.get_by_role("button", name="Apply").click()
    page.locator("#revenue-range-label", has_text=re.compile(r"^\w{3} \d+, \d{4} \u2013 ")).wait_for()
    in_range_usd = page.locator("#totals li[data-currency='usd'] .amount").inner_text()
    assert money(in_range_usd) < money(all_time_usd)
    assert money(in_range_usd) >= 144  # today's payments of the visitor below are in it
    page.get_by_role("button", name="All time").click()
    page.locator("#revenue-range-label", has_text="All time").wait_for()
    page.locator("#totals li[data-currency='usd'] .amount", has_text=all_time_usd).wait_for()

    # And a visitor's lookup: lifetime revenue, plan, the timeline with refunds and context events
    page.get_by_label("Visitor ID").fill(STAR)
    page.get_by_role("button", name="Look up").click()
    page.locator("#timeline li.refund").first.wait_for()
    assert page.locator("#visitor-revenue").inner_text() == "$144.00"  # 49 + 120 - 25
    plan = page.locator("#visitor-plan").inner_text()
    assert "Pro monthly" in plan
    assert "$49.00 / month" in plan
    assert "active" in plan
    refund = page.locator("#timeline li.refund").first
    assert refund.locator(".rev").inner_text().endswith("-$25.00")
    assert refund.locator(".rev").evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
    context_events = page.locator("#timeline li.context")
    assert context_events.count() >= 3  # Checkout Completed, Invoice Paid, Subscription Updated
    assert all(text == "adds no revenue" for text in context_events.locator(".rev").all_inner_texts())
    types = page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.type)")
    assert {"Charge Succeeded", "Charge Refunded", "Checkout Completed", "Subscription Updated"} <= set(types)
    assert_accessible(page)
    shoot(page, "dashboard.png", full_page=True)

    # When the merchant re-syncs: a confirmation that it clears and re-imports, then run 2 completes
    page.get_by_role("button", name="Re-sync…").click()
    dialog = page.locator("#resync-dialog")
    assert dialog.is_visible()
    assert "clears" in dialog.inner_text()
    assert "imports them again" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert dialog.is_hidden()
    assert "run 1" in page.locator("#backfill-details").inner_text()
    page.get_by_role("button", name="Re-sync…").click()
    dialog.get_by_role("button", name="Clear and re-import").click()
    page.locator("#stripe-notice", has_text="Re-sync started").wait_for()
    wait_for_import(page, run=2)
    page.get_by_role("button", name="Look up").click()
    page.locator("#timeline li.refund").first.wait_for()
    assert page.locator("#visitor-revenue").inner_text() == "$144.00"  # the same numbers, never twice

    # When the merchant disconnects, removing the imported data
    page.get_by_role("button", name="Disconnect…").click()
    dialog = page.locator("#disconnect-dialog")
    assert dialog.get_by_label("Keep the imported revenue and timelines").is_checked()
    dialog.get_by_label("Remove the imported revenue, timelines and customer links").check()
    box = dialog.bounding_box()
    assert box is not None
    margin = 32
    clip = {"x": box["x"] - margin, "y": box["y"] - margin}
    shoot(
        page,
        "stripe-disconnect.png",
        clip={**clip, "width": box["width"] + 2 * margin, "height": box["height"] + 2 * margin},
    )
    dialog.get_by_role("button", name="Disconnect").click()
    page.get_by_text("Not connected").wait_for()
    page.locator("#stripe-notice", has_text="has been removed").wait_for(timeout=30_000)
    assert page.get_by_label("Restricted API key").is_visible()
    page.locator("#totals li.empty").wait_for(timeout=30_000)  # the data is gone once removed
    status, shown = stack.call("GET", f"/projects/{PROJECT}/integrations/stripe")
    assert (status, shown["status"]) == (200, "disconnected")
    assert merchant.v1.webhook_endpoints.list().data == []
    assert time.monotonic() - started < 90


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (2500, "usd", "$25.00"),
        (-2500, "usd", "-$25.00"),
        (1500, "jpy", "¥1,500"),  # zero-decimal: the minor unit is the yen
        (1234567, "kwd", "KWD 1,234.567"),  # three decimals
        (500, "bhd", "BHD 0.500"),
        (99, "eur", "€0.99"),
        (1000, "krw", "₩1,000"),
        (125, "clp", "CLP 125"),
    ],
)
def test_amounts_are_shown_with_each_currencys_decimals(
    page: Page, stack: Stack, minor: int, currency: str, shown: str
) -> None:
    page.goto(f"{stack.base_url}/?project=browser-formatting")
    page.get_by_text("Not connected").wait_for()
    formatted = page.evaluate("([minor, cur]) => window.ripples.formatMoney(minor, cur)", [minor, currency])
    assert formatted.replace("\u00a0", " ") == shown
