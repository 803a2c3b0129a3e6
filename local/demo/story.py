"""The demo's story over HTTP, against a running stack: seed, connect, backfill, live payments, report.

Everything goes through the doors a merchant and their customers use: the HTTP API with a dashboard
token, and Stripe's API in the emulator (which delivers signed webhooks to the stack).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import stripe

from local.stripe_emulator.control_client import EmulatorControl

from .world import PROJECT, VISITOR_PREFIX, Api, DemoSize, DemoWorld, seed_demo

ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd", "clp", "xof", "xaf"})
SYMBOLS = {"usd": "$", "eur": "€", "jpy": "¥", "gbp": "£"}
TIER_NAMES = {"1": "tier 1  checkout metadata", "2": "tier 2  email", "3": "tier 3  remembered customer"}
BAR_WIDTH = 30
WAIT_SECONDS = 30.0
STALL_SECONDS = 60.0


def money(amount: int, currency: str) -> str:
    """Minor units for a person (domain rule 5): $1,234.56, ¥4,800."""
    symbol = SYMBOLS.get(currency, currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{abs(amount):,}"
    return f"{sign}{symbol}{abs(amount) // 100:,}.{abs(amount) % 100:02d}"


@dataclass
class LiveResult:
    """A live payment (or refund) and what the API showed once its webhooks were processed."""

    what: str
    visitor_id: str
    charge_id: str
    amount: int  # what it adds to the visitor's revenue (negative for a refund)
    currency: str
    tier: int | None
    seconds: float  # from the Stripe call's answer to the effect being visible


@dataclass
class DemoReport:
    world: DemoWorld
    integration: dict[str, Any]  # once the backfill finished
    live: list[LiveResult]
    revenue: dict[str, Any]  # GET /projects/demo/revenue at the end
    lines: list[str] = field(default_factory=list)  # everything printed
    timings: dict[str, float] = field(default_factory=dict)


class Printer:
    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started
        self.lines: list[str] = []
        self.tty = out.isatty()
        self._bar_open = False  # a progress line drawn in place, not ended yet

    def __call__(self, text: str = "") -> None:
        self.lines.append(text)
        print(("\n" if self._bar_open else "") + text, file=self.out, flush=True)
        self._bar_open = False

    def step(self, label: str, text: str) -> None:
        self(f"[{time.perf_counter() - self.started:6.1f} s] {label:<16} {text}")

    def bar(self, line: str, final: bool) -> None:
        """A progress line: redrawn in place on a terminal, every tenth of the way otherwise."""
        if self.tty:
            print("\r" + line, end="\n" if final else "", file=self.out, flush=True)
            self._bar_open = not final
            if final:
                self.lines.append(line)
        else:
            self(line)


def run_demo(
    api: Api,
    control: EmulatorControl,
    size: DemoSize,
    out: TextIO = sys.stdout,
    started: float | None = None,
) -> DemoReport:
    """The whole story against the stack at `api` and its emulator `control`."""
    say = Printer(out, time.perf_counter() if started is None else started)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    world = seed_demo(api, control, size)
    timings["seed"] = time.perf_counter() - t
    s = world.seeded
    say.step(
        "account seeded",
        f"{s['customers']:,} customers, {world.charges:,} charges (usd eur jpy, 18 months), "
        f"{s['refunds']:,} refunds, {s['subscriptions']:,} subscriptions "
        f"({_statuses(s['subscription_statuses'])}) in {world.seconds['emulator']:.1f} s",
    )
    sources: dict[str, int] = {}
    for v in world.visitors:
        sources[v.source] = sources.get(v.source, 0) + 1
    identified = sum(1 for v in world.visitors if v.email)
    say.step(
        "visitors",
        f"{len(world.visitors):,} through PUT /visitors ({identified:,} with an email; "
        + ", ".join(f"{k} {n}" for k, n in sorted(sources.items(), key=lambda kv: -kv[1]))
        + f") in {world.seconds['visitors']:.1f} s",
    )

    t = time.perf_counter()
    connected = api.ok("POST", api.project_path("/integrations/stripe"), {"api_key": world.account.restricted_key})
    timings["connect"] = time.perf_counter() - t
    say.step(
        "connected",
        f"{connected['key_hint']} ({connected['mode']}): webhook {connected['webhook_endpoint_id']}, "
        f"backfill run {connected['backfill']['run']} queued ({timings['connect']:.2f} s)",
    )

    t = time.perf_counter()
    integration = _follow_backfill(api, world, say)
    timings["backfill"] = time.perf_counter() - t
    backfill = integration["backfill"]
    if backfill["status"] != "completed":
        raise RuntimeError(f"the backfill ended {backfill['status']}: {backfill.get('error')}")
    progress = backfill.get("progress") or {}
    say.step(
        "backfill done",
        f"{backfill['charges_imported']:,} charges in {timings['backfill']:.1f} s "
        f"({backfill['charges_imported'] / max(timings['backfill'], 0.001):,.0f}/s; "
        f"{progress.get('pages', 0):,} pages in {progress.get('slices', 0)} slices)",
    )

    t = time.perf_counter()
    say("live: through Stripe's API in the emulator, signed webhooks to the stack")
    live = _live(api, control, world, say)
    timings["live"] = time.perf_counter() - t

    revenue = api.ok("GET", api.project_path("/revenue"))
    say()
    _revenue_table(revenue, say)
    say()
    _tier_table(revenue, say)
    timings["total"] = time.perf_counter() - say.started
    say()
    say(
        "timings: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        + "; webhook to visible: "
        + ", ".join(f"{r.seconds:.2f} s" for r in live)
    )
    return DemoReport(world, integration, live, revenue, say.lines, timings)


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items(), key=lambda kv: -kv[1]))


def _follow_backfill(api: Api, world: DemoWorld, say: Printer) -> dict[str, Any]:
    """The integration once its backfill finished, drawing the charges imported as it goes."""
    expected = max(1, world.charges)
    shown_tenth = -1
    started = time.perf_counter()
    deadline = started + 35 * 60  # past the queue's visibility timeout (30 min): a failed page's retry
    last_imported, last_change, stall_told = -1, started, False
    while True:
        integration: dict[str, Any] = api.ok("GET", api.project_path("/integrations/stripe"))
        backfill = integration["backfill"]
        done = backfill["status"] not in ("queued", "running")
        imported = int(backfill["charges_imported"])
        fraction = 1.0 if done and backfill["status"] == "completed" else min(0.99, imported / expected)
        tenth = int(fraction * 10)
        if say.tty or tenth > shown_tenth or done:
            filled = int(fraction * BAR_WIDTH)
            say.bar(
                f"  backfill [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%} "
                f"{imported:>7,}/{world.charges:,} charges  {backfill['phase'] or backfill['status']:<17} "
                f"{time.perf_counter() - started:5.1f} s",
                final=done,
            )
            shown_tenth = tenth
        if done:
            return integration
        if imported != last_imported:
            last_imported, last_change = imported, time.perf_counter()
        elif time.perf_counter() - last_change > STALL_SECONDS and not stall_told:
            stall_told = True  # a failed page waits for its message's visibility timeout, as on AWS
            say(
                f"  (no charge imported for {STALL_SECONDS:.0f} s: a failed page is retried after the queue's "
                "visibility timeout, 30 min as on AWS; the stack's errors are printed if the demo fails)"
            )
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the backfill did not finish: {backfill}")
        time.sleep(0.5)


# ---- Live payments -----------------------------------------------------------------------------


def _live(api: Api, control: EmulatorControl, world: DemoWorld, say: Printer) -> list[LiveResult]:
    stripe_api = control.client(world.account.secret_key, max_network_retries=2)
    results = []

    # A new visitor from Product Hunt buys through Checkout, the session naming it: tier 1
    visitor = "visitor-live-producthunt"
    api.ok("PUT", api.project_path(f"/visitors/{visitor}"), {"acquisition": {"source": "producthunt"}})
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price_data": _price_data(12_000, "usd", "Lifetime deal"), "quantity": 1}],
        "metadata": {"ripples_visitor_id": visitor},
        "success_url": "https://shop.example.com/thanks",
    }
    session = stripe_api.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    stripe_api.raw_request(
        "post",
        f"/v1/test_helpers/checkout/sessions/{session.id}/complete",
        email="maker@example.com",
        payment_method="pm_card_visa",
    )
    checkout_charge = _charge_of(stripe_api, session.id)
    results.append(_wait(api, "checkout", visitor, checkout_charge, 12_000, "usd", say, "Checkout, new visitor"))

    # A customer already linked to a visitor pays again, by PaymentIntent: tier 3
    linked = _linked_visitor(api, world)
    if linked is not None:
        visitor, customer = linked
        intent = stripe_api.v1.payment_intents.create(
            params={
                "amount": 3_500,
                "currency": "eur",
                "customer": customer,
                "confirm": True,
                "payment_method": "pm_card_visa",
            }
        )
        charge = str(intent.latest_charge)
        results.append(_wait(api, "repeat", visitor, charge, 3_500, "eur", say, f"returning customer {customer}"))

    # A visitor from Twitter identifies with an email, then pays as a new customer: tier 2
    visitor = "visitor-live-twitter"
    email = "new.buyer@example.com"
    api.ok("PUT", api.project_path(f"/visitors/{visitor}"), {"email": email, "acquisition": {"source": "twitter"}})
    customer_obj = stripe_api.v1.customers.create(params={"email": email})
    intent = stripe_api.v1.payment_intents.create(
        params={
            "amount": 4_800,
            "currency": "jpy",
            "customer": customer_obj.id,
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    results.append(
        _wait(api, "identified", visitor, str(intent.latest_charge), 4_800, "jpy", say, f"identified as {email}")
    )

    # A subscription of a linked customer renews: invoice.paid, its charge: tier 3 (a small account
    # may have no such subscription: the returning customer subscribes first)
    renewal = _renewable(stripe_api, api, world)
    if renewal is None and linked is not None:
        renewal = linked[0], _subscribe(stripe_api, linked[1])
    if renewal is not None:
        visitor, subscription = renewal
        before = _charge_ids(stripe_api, str(subscription["customer"]))
        stripe_api.raw_request("post", f"/v1/test_helpers/subscriptions/{subscription['id']}/renew")
        (charge,) = _charge_ids(stripe_api, str(subscription["customer"])) - before
        item = subscription["items"]["data"][0]
        amount, currency = int(item["price"]["unit_amount"]), str(subscription["currency"])
        plan = item["price"]["nickname"]
        results.append(_wait(api, "renewal", visitor, charge, amount, currency, say, f"{plan}, invoice.paid"))

    # Part of the Checkout payment is refunded: the visitor's revenue goes down by as much
    stripe_api.v1.refunds.create(params={"charge": checkout_charge, "amount": 4_000})
    results.append(
        _wait(api, "refund", "visitor-live-producthunt", checkout_charge, -4_000, "usd", say, "of the Checkout payment")
    )
    return results


def _subscribe(stripe_api: stripe.StripeClient, customer: str) -> dict[str, Any]:
    """A monthly plan for `customer`, its first invoice paid (the renewal's subscription)."""
    params: dict[str, Any] = {
        "currency": "usd",
        "unit_amount": 4_900,
        "recurring": {"interval": "month"},
        "nickname": "Pro monthly",
        "product_data": {"name": "Pro"},
    }
    price = stripe_api.v1.prices.create(params=params)  # type: ignore[arg-type]
    created = stripe_api.v1.subscriptions.create(params={"customer": customer, "items": [{"price": price.id}]})
    return stripe_api.v1.subscriptions.retrieve(created.id).to_dict()


def _price_data(amount: int, currency: str, name: str) -> dict[str, Any]:
    return {"currency": currency, "unit_amount": amount, "product_data": {"name": name}}


def _charge_of(stripe_api: stripe.StripeClient, session_id: str) -> str:
    session = stripe_api.v1.checkout.sessions.retrieve(session_id)
    intent = stripe_api.v1.payment_intents.retrieve(str(session.payment_intent))
    return str(intent.latest_charge)


def _charge_ids(stripe_api: stripe.StripeClient, customer: str) -> set[str]:
    return {c.id for c in stripe_api.v1.charges.list(params={"customer": customer, "limit": 100}).data}


def _linked_visitor(api: Api, world: DemoWorld, skip: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """A seeded visitor owning a Stripe customer (linked by the backfill), and that customer."""
    for v in world.visitors:
        status, shown = api.call("GET", api.project_path(f"/visitors/{v.visitor_id}"))
        customers = [c for c in (shown.get("stripe_customer_ids") or []) if c not in skip] if status == 200 else []
        if customers:
            return v.visitor_id, customers[0]
    return None


def _renewable(stripe_api: stripe.StripeClient, api: Api, world: DemoWorld) -> tuple[str, dict[str, Any]] | None:
    """An active subscription whose customer is linked to a seeded visitor."""
    tracked = len(world.visitors)
    active = stripe_api.v1.subscriptions.list(params={"status": "active", "limit": 100, "expand": ["data.customer"]})
    for sub in active.auto_paging_iter():
        email = str(sub.customer.email or "")  # type: ignore[union-attr]
        index = email.removeprefix("customer").removesuffix("@example.com")
        if not index.isdigit() or int(index) >= tracked:
            continue
        visitor = f"{VISITOR_PREFIX}{index}"
        status, shown = api.call("GET", api.project_path(f"/visitors/{visitor}"))
        if status == 200 and sub.customer.id in (shown.get("stripe_customer_ids") or []):  # type: ignore[union-attr]
            raw = stripe_api.v1.subscriptions.retrieve(sub.id).to_dict()
            return visitor, raw
    return None


def _wait(
    api: Api, what: str, visitor: str, charge: str, amount: int, currency: str, say: Printer, detail: str
) -> LiveResult:
    """Poll the visitor's timeline until the charge's event (or its refund) shows: the webhooks'
    effect. Returns the tier the API gave the charge."""
    started = time.perf_counter()
    refund = amount < 0
    event = _until(lambda: _event_of(api, visitor, charge, refund), f"{what} of {visitor} ({charge})")
    seconds = time.perf_counter() - started
    tier = event.get("attribution_tier")
    label = "refund" if refund else f"tier {tier}"
    say(
        f"  {what:<11} {money(amount, currency):>10}  {visitor:<26} {label:<7} "
        f"visible after {seconds:.2f} s  ({detail})"
    )
    return LiveResult(what, visitor, charge, amount, currency, tier, seconds)


def _event_of(api: Api, visitor: str, charge: str, refund: bool) -> dict[str, Any] | None:
    status, timeline = api.call("GET", api.project_path(f"/visitors/{visitor}/timeline?limit=50"))
    if status != 200:
        return None
    wanted = "Charge Refunded" if refund else "Charge Succeeded"
    for event in timeline["events"]:
        if event["stripe_object_id"] == charge and event["type"] == wanted:
            return dict(event)
    return None


def _until(check: Callable[[], dict[str, Any] | None], what: str) -> dict[str, Any]:
    deadline = time.perf_counter() + WAIT_SECONDS
    while True:
        found = check()
        if found is not None:
            return found
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not visible after {WAIT_SECONDS:.0f} s: {what}")
        time.sleep(0.05)


# ---- Report ------------------------------------------------------------------------------------


def _currencies(revenue: dict[str, Any]) -> list[str]:
    return sorted(revenue["totals"], key=lambda c: (c != "usd", c != "eur", c))


def _revenue_table(revenue: dict[str, Any], say: Printer) -> None:
    currencies = _currencies(revenue)
    say(f"Revenue by source (GET /projects/{PROJECT}/revenue, all time, net of refunds)")
    head = f"  {'source':<14}{'payments':>9}{'visitors':>9}" + "".join(f"{c:>16}" for c in currencies)
    say(head)
    rows = sorted(revenue["by_source"], key=lambda r: -int(r["revenue"].get("usd", 0)))
    for row in rows:
        say(_row(row["source"], row["payments"], row["visitors"], row["revenue"], currencies))
    unattributed = revenue["unattributed"]
    say(_row("unattributed", unattributed["payments"], None, unattributed["revenue"], currencies))
    total_payments = sum(int(r["payments"]) for r in rows) + int(unattributed["payments"])
    say(_row("total", total_payments, None, revenue["totals"], currencies))


def _row(name: str, payments: int, visitors: int | None, amounts: dict[str, int], currencies: list[str]) -> str:
    shown_visitors = "" if visitors is None else f"{visitors:,}"
    return f"  {name:<14}{payments:>9,}{shown_visitors:>9}" + "".join(
        f"{money(int(amounts.get(c, 0)), c):>16}" for c in currencies
    )


def _tier_table(revenue: dict[str, Any], say: Printer) -> None:
    currencies = _currencies(revenue)
    totals = revenue["totals"]
    say("Tier split (share of each currency's net revenue)")
    rows: list[tuple[str, dict[str, int]]] = [
        (TIER_NAMES[tier], revenue["by_tier"].get(tier, {})) for tier in ("1", "2", "3")
    ]
    rows.append(("unattributed", revenue["unattributed"]["revenue"]))
    for name, amounts in rows:
        cells = []
        for c in currencies:
            amount, total = int(amounts.get(c, 0)), int(totals.get(c, 0))
            share = f"{amount / total:.0%}" if total else "-"
            cells.append(f"{money(amount, c):>16} {share:>4}")
        say(f"  {name:<28}" + "".join(cells))
