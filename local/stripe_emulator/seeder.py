"""Bulk seeding of history: customers with charges spread over a time range, created in memory.

Seeded objects are what the API would have produced (PaymentIntent -> Charge, completed Checkout
Sessions with and without `ripples_visitor_id`, refunds with cumulative `amount_refunded`), dated in
the past and emitted as no events: history is what a backfill reads through the list endpoints.

Subscriptions (`subscriptions` > 0) go through the emulator's own Billing and Checkout code at the
historical moments (`HistoryContext`: the request context with a clock of its own and no events), so
their prices, sessions, invoices, invoice payments, PaymentIntents and charges are exactly what the
API makes: started through Checkout (a share `checkout_rate`) or the API, renewed every period up to
`end`, and left active, trialing, past_due (the last renewal declined) or canceled.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import fixtures
from .core import Context, Emulator
from .keys import ApiKey
from .resources.billing import cancel_subscription, create_price, create_product, create_subscription_route, renew
from .resources.checkout import complete_session, create_session
from .resources.payments import charge_object, settle
from .store import Space, new_id

ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
RouteHandler = Callable[[Context], dict[str, Any]]


@dataclass
class SeedSpec:
    customers: int
    charges_per_customer: int
    start: int
    end: int
    livemode: bool = False
    currencies: list[str] = field(default_factory=lambda: ["usd"])
    refund_rate: float = 0.1
    failure_rate: float = 0.05
    checkout_rate: float = 0.5
    visitor_id_rate: float = 0.5
    email_prefix: str = "customer"
    visitor_prefix: str = "visitor"
    seed: int = 1
    # Customers 0..visitor_customers-1 alone carry `ripples_visitor_id` (None: every customer may):
    # the others paid without the tracker.
    visitor_customers: int | None = None
    subscriptions: int = 0  # on distinct customers; each status's share below, the rest active
    trialing_rate: float = 0.1
    past_due_rate: float = 0.1
    canceled_rate: float = 0.25

    @classmethod
    def from_body(cls, body: dict[str, Any], now: int) -> SeedSpec:
        names = set(cls.__dataclass_fields__) - {"start", "end"}
        known = {k: v for k, v in body.items() if k in names}
        unknown = set(body) - names - {"account", "start", "end"}
        if unknown:
            raise ValueError(f"unknown seed fields: {sorted(unknown)}")
        spec = cls(start=int(body.get("start", now - 365 * 86_400)), end=int(body.get("end", now)), **known)
        if spec.customers < 0 or spec.charges_per_customer < 0 or spec.start >= spec.end:
            raise ValueError("customers and charges_per_customer must be >= 0 and start < end")
        if not 0 <= spec.subscriptions <= spec.customers:
            raise ValueError("subscriptions must be between 0 and customers (one per customer)")
        if spec.trialing_rate + spec.past_due_rate + spec.canceled_rate > 1:
            raise ValueError("trialing_rate + past_due_rate + canceled_rate must be at most 1")
        spec.currencies = [c.lower() for c in spec.currencies]
        return spec


def _amount(rng: random.Random, currency: str) -> int:
    cents = rng.randrange(500, 50_000)
    if currency in ZERO_DECIMAL:
        return cents  # yen and the like: the same digits read as whole units
    if currency in THREE_DECIMAL:
        return cents * 10
    return cents


def seed(space: Space, spec: SeedSpec, emulator: Emulator | None = None) -> dict[str, Any]:
    """Seed `space`; subscriptions need the `emulator` whose Billing code makes them."""
    if spec.subscriptions and emulator is None:
        raise ValueError("seeding subscriptions needs the emulator")
    # Millions of new dicts would trigger the cyclic GC over and over, each pass scanning everything
    # seeded so far; none of them form cycles, so collect once at the end and freeze the survivors.
    gc.disable()
    try:
        started = time.perf_counter()
        counts = _seed(space, spec)
        counts.update(_seed_subscriptions(emulator, space, spec))
        counts["seconds"] = round(time.perf_counter() - started, 3)
        return counts
    finally:
        gc.enable()
        gc.freeze()


def _seed(space: Space, spec: SeedSpec) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(spec.seed)
    livemode = space.livemode
    customers, charges, intents = space["customers"], space["charges"], space["payment_intents"]
    sessions, refunds = space["checkout_sessions"], space["refunds"]
    counts: dict[str, Any] = {
        "customers": 0,
        "charges": 0,
        "failed_charges": 0,
        "refunds": 0,
        "checkout_sessions": 0,
        "with_visitor_id": 0,
    }
    span = spec.end - spec.start
    for c in range(spec.customers):
        times = sorted(spec.start + rng.randrange(span) for _ in range(spec.charges_per_customer))
        email = f"{spec.email_prefix}{c}@example.com"
        customer = fixtures.build(
            "customer",
            id=new_id("cus_"),
            created=times[0] - 60 if times else spec.start,
            livemode=livemode,
            email=email,
            name=f"Customer {c}",
            invoice_prefix=None,
        )
        customers.save(customer)
        counts["customers"] += 1
        for created in times:
            currency = rng.choice(spec.currencies)
            amount = _amount(rng, currency)
            failed = rng.random() < spec.failure_rate
            pi_id = new_id("pi_")
            charge = charge_object(
                charge_id=new_id("ch_"),
                created=created,
                livemode=livemode,
                amount=amount,
                currency=currency,
                customer=customer["id"],
                payment_intent=pi_id,
                payment_method=new_id("pm_"),
                status="failed" if failed else "succeeded",
                billing_email=email,
            )
            if not failed:
                charge["balance_transaction"] = new_id("txn_")
            intents.save(
                fixtures.build(
                    "payment_intent",
                    id=pi_id,
                    created=created,
                    livemode=livemode,
                    amount=amount,
                    amount_received=0 if failed else amount,
                    currency=currency,
                    customer=customer["id"],
                    client_secret=f"{pi_id}_secret_seeded",
                    latest_charge=charge["id"],
                    payment_method=charge["payment_method"],
                    status="requires_payment_method" if failed else "succeeded",
                    metadata={},
                )
            )
            counts["charges"] += 1
            if failed:
                counts["failed_charges"] += 1
                charges.save(charge)
                continue
            if rng.random() < spec.checkout_rate:
                metadata = {}
                if rng.random() < spec.visitor_id_rate and _tracked(spec, c):
                    metadata["ripples_visitor_id"] = f"{spec.visitor_prefix}{c}"
                    counts["with_visitor_id"] += 1
                session = fixtures.build(
                    "checkout.session",
                    id=new_id("cs_live_" if livemode else "cs_test_"),
                    created=created - 30,
                    livemode=livemode,
                    mode="payment",
                    status="complete",
                    payment_status="paid",
                    amount_subtotal=amount,
                    amount_total=amount,
                    currency=currency,
                    customer=customer["id"],
                    customer_details={
                        "email": email,
                        "name": customer["name"],
                        "address": None,
                        "phone": None,
                        "tax_exempt": "none",
                        "tax_ids": [],
                        "business_name": None,
                        "individual_name": None,
                    },
                    payment_intent=pi_id,
                    metadata=metadata,
                    expires_at=created + 86_400,
                    url=None,
                )
                sessions.save(session)
                counts["checkout_sessions"] += 1
            if rng.random() < spec.refund_rate:
                refunded = amount if rng.random() < 0.5 else amount // 2
                refund_at = min(created + rng.randrange(3600, 30 * 86_400), spec.end)
                refunds.save(
                    fixtures.build(
                        "refund",
                        id=new_id("re_"),
                        created=max(refund_at, created),  # a Refund has no livemode field
                        amount=refunded,
                        charge=charge["id"],
                        currency=currency,
                        payment_intent=pi_id,
                        customer=customer["id"],
                        status="succeeded",
                        balance_transaction=new_id("txn_"),
                    )
                )
                charge["amount_refunded"] = refunded
                charge["refunded"] = refunded == amount
                counts["refunds"] += 1
            charges.save(charge)
    counts["seconds"] = round(time.perf_counter() - started, 3)
    return counts


def _tracked(spec: SeedSpec, customer_index: int) -> bool:
    return spec.visitor_customers is None or customer_index < spec.visitor_customers


@dataclass
class HistoryContext(Context):
    """A request context at a moment of the past (`at`) that records no events: the emulator's own
    Billing and Checkout code run through it make history, shaped as the API makes it."""

    at: int = 0

    @property
    def now(self) -> int:
        return self.at

    def emit(
        self, event_type: str, obj: dict[str, Any], previous_attributes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {}

    def call(self, handler: RouteHandler, at: int, params: dict[str, Any] | None = None, **path: str) -> dict[str, Any]:
        """A route's handler at `at`, as if its request came then."""
        self.at, self.params, self.path_args = at, params or {}, path
        return handler(self)


# (nickname, interval, amount in usd/eur cents, amount in zero-decimal units)
PLANS = (
    ("Starter monthly", "month", 1_900, 2_000),
    ("Pro monthly", "month", 4_900, 5_000),
    ("Pro yearly", "year", 49_000, 50_000),
)
PERIOD = {"month": 30 * 86_400, "year": 365 * 86_400}  # the emulator's periods (billing.INTERVAL_SECONDS)
TRIAL_DAYS = 14


def _seed_subscriptions(emulator: Emulator | None, space: Space, spec: SeedSpec) -> dict[str, Any]:
    counts: dict[str, Any] = {"subscriptions": 0, "subscription_statuses": {}, "invoices": 0, "subscription_charges": 0}
    if not spec.subscriptions or emulator is None:
        return counts
    rng = random.Random(spec.seed * 7_919 + 17)  # its own stream: the one-time history stays as it was
    key = ApiKey("sk_seeder", space.account_id, space.livemode, None)
    ctx = HistoryContext(emulator, key, space, {}, {}, "req_seeder", None)
    prices = _prices(ctx, spec)
    customers = sorted(space["customers"].by_id.values(), key=lambda c: (c["created"], c["id"]))
    indexes = {c["id"]: int(c["name"].rsplit(" ", 1)[-1]) for c in customers}  # "Customer <c>"
    statuses: dict[str, int] = {}
    for customer in rng.sample(customers, spec.subscriptions):
        status = _status(rng, spec)
        currency = rng.choice(spec.currencies)
        name, interval, _, _ = rng.choices(PLANS, weights=(5, 4, 1))[0]
        price = prices[(name, currency)]
        period = PERIOD[interval]
        first = max(spec.start, int(customer["created"]) + 60)
        trial = status == "trialing"
        if trial:
            start = max(first, spec.end - (TRIAL_DAYS - 1) * 86_400) + rng.randrange(3_600)
        else:
            latest = spec.end - (period + 86_400 if status == "past_due" else 3_600)
            if latest <= first:
                status = "active"  # no room for a declined renewal: a subscription that just started
                latest = spec.end - 3_600
            start = rng.randrange(first, max(first + 1, latest))
        sub = _start(ctx, spec, rng, customer, indexes[customer["id"]], price, start, trial)
        counts["invoices"] += 1
        counts["subscription_charges"] += 0 if trial else 1
        ends = spec.end if status != "canceled" else rng.randrange(start + 3_600, max(start + 7_200, spec.end))
        while status != "trialing" and sub["items"]["data"][0]["current_period_end"] <= ends:
            renewal_at = int(sub["items"]["data"][0]["current_period_end"])
            last = sub["items"]["data"][0]["current_period_end"] + period > ends
            declined = status == "past_due" and last
            ctx.at = renewal_at
            _, charge = renew(ctx, sub, "pm_card_chargeDeclined" if declined else "pm_card_visa")
            if charge is not None:
                settle(ctx, charge)
            counts["invoices"] += 1
            counts["subscription_charges"] += 1
        if status == "canceled":
            ctx.call(cancel_subscription, ends, id=sub["id"])
        statuses[sub["status"]] = statuses.get(sub["status"], 0) + 1
        counts["subscriptions"] += 1
    counts["subscription_statuses"] = statuses
    return counts


def _status(rng: random.Random, spec: SeedSpec) -> str:
    draw = rng.random()
    for status, rate in (("trialing", spec.trialing_rate), ("past_due", spec.past_due_rate)):
        if draw < rate:
            return status
        draw -= rate
    return "canceled" if draw < spec.canceled_rate else "active"


def _prices(ctx: HistoryContext, spec: SeedSpec) -> dict[tuple[str, str], dict[str, Any]]:
    """A product per plan and a price per plan and currency, made before the history starts."""
    ctx.at = spec.start - 86_400
    prices = {}
    products: dict[str, dict[str, Any]] = {}
    for name, interval, minor, zero_decimal in PLANS:
        product_name = name.split()[0]
        if product_name not in products:
            products[product_name] = create_product(ctx, product_name)
        for currency in spec.currencies:
            amount = zero_decimal if currency in ZERO_DECIMAL else minor * 10 if currency in THREE_DECIMAL else minor
            prices[(name, currency)] = create_price(
                ctx,
                {
                    "product": products[product_name]["id"],
                    "currency": currency,
                    "unit_amount": amount,
                    "recurring": {"interval": interval},
                    "nickname": name,
                    "lookup_key": f"{name.lower().replace(' ', '_')}_{currency}",
                },
            )
    return prices


def _start(
    ctx: HistoryContext,
    spec: SeedSpec,
    rng: random.Random,
    customer: dict[str, Any],
    index: int,
    price: dict[str, Any],
    start: int,
    trial: bool,
) -> dict[str, Any]:
    """A subscription started at `start`, through Checkout (`checkout_rate`) or the API; its first
    invoice paid (nothing to pay in a trial)."""
    trial_data = {"trial_period_days": TRIAL_DAYS} if trial else {}
    if rng.random() >= spec.checkout_rate:
        params = {"customer": customer["id"], "items": [{"price": price["id"]}], **trial_data}
        return ctx.call(create_subscription_route, start, params)
    metadata = {}
    if rng.random() < spec.visitor_id_rate and _tracked(spec, index):
        metadata["ripples_visitor_id"] = f"{spec.visitor_prefix}{index}"
    session = ctx.call(
        create_session,
        start - 30,
        {
            "mode": "subscription",
            "customer": customer["id"],
            "line_items": [{"price": price["id"], "quantity": 1}],
            "metadata": metadata,
            "subscription_data": trial_data,
            "success_url": "https://example.com/welcome",
        },
    )
    session = ctx.call(complete_session, start, {"payment_method": "pm_card_visa"}, id=session["id"])
    subscription: dict[str, Any] = ctx.space["subscriptions"].by_id[session["subscription"]]
    return subscription
