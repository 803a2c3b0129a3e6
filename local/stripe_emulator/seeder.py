"""Bulk seeding of history: customers with charges spread over a time range, created in memory.

Seeded objects are what the API would have produced (PaymentIntent -> Charge, completed Checkout
Sessions with and without `ripples_visitor_id`, refunds with cumulative `amount_refunded`), dated in
the past and emitted as no events: history is what a backfill reads through the list endpoints.
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass, field
from typing import Any

from . import fixtures
from .resources.payments import charge_object
from .store import Space, new_id

ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])


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
        spec.currencies = [c.lower() for c in spec.currencies]
        return spec


def _amount(rng: random.Random, currency: str) -> int:
    cents = rng.randrange(500, 50_000)
    if currency in ZERO_DECIMAL:
        return cents  # yen and the like: the same digits read as whole units
    if currency in THREE_DECIMAL:
        return cents * 10
    return cents


def seed(space: Space, spec: SeedSpec) -> dict[str, Any]:
    # Millions of new dicts would trigger the cyclic GC over and over, each pass scanning everything
    # seeded so far; none of them form cycles, so collect once at the end and freeze the survivors.
    gc.disable()
    try:
        return _seed(space, spec)
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
                if rng.random() < spec.visitor_id_rate:
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
