"""Scenarios of one-off payments: Checkout, direct PaymentIntents, refunds, manual capture, currencies.

Each scenario: Given a shop connected to Stripe (and visitors from the tracker), When the merchant's
customers pay and Stripe's events arrive (in the order the scenario chooses), Then the visitor, its
timeline and the revenue report say what the domain rules promise. The invariant is asserted after each.
"""

from __future__ import annotations

from typing import Any

import pytest

from .harness import Shop, event_type, nonzero
from .harness import shop_fixture as shop_fixture  # the `shop` fixture
from .harness import shops_fixture as shops_fixture  # the `shops` fixture (`shop` uses it)


def tiers(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {tier: nonzero(money) for tier, money in report["by_tier"].items() if nonzero(money)}


def charge_events(shop: Shop, visitor_id: str) -> list[dict[str, Any]]:
    return [e for e in shop.timeline(visitor_id) if e["type"] in ("Charge Succeeded", "Charge Refunded")]


# ---- 1. one-time Checkout ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["charge_first", "session_first"])
def test_one_time_checkout_is_tier_1_whatever_arrives_first(shop: Shop, order: str) -> None:
    # Given a visitor, and a Checkout Session in payment mode that names it in its metadata
    shop.put_visitor("v-buyer", acquisition={"source": "google", "medium": "cpc"})
    session = shop.checkout("payment", shop.one_time(4900), metadata={"ripples_visitor_id": "v-buyer"})
    # When the customer pays, and Stripe's events arrive in either order
    shop.complete_checkout(session, email="buyer@example.com")
    events = shop.new_events()
    assert [event_type(e) for e in events] == ["charge.succeeded", "checkout.session.completed"]
    shop.deliver_all(events, "in_order" if order == "charge_first" else "reversed")
    # Then the money is counted once, on the charge, tier 1
    assert shop.lifetime("v-buyer") == {"usd": 4900}
    (charge,) = shop.timeline_of("v-buyer", "Charge Succeeded")
    assert (charge["amount"], charge["currency"], charge["revenue"], charge["attribution_tier"]) == (
        4900,
        "usd",
        4900,
        1,
    )
    # And the Checkout Completed event shows its amount but adds nothing
    (completed,) = shop.timeline_of("v-buyer", "Checkout Completed")
    assert (completed["amount"], completed["currency"], completed["revenue"]) == (4900, "usd", 0)
    assert completed["stripe_object_id"] == session
    # And the report counts it once, tier 1, under the visitor's source
    report = shop.revenue()
    assert nonzero(report["totals"]) == {"usd": 4900}
    assert tiers(report) == {"1": {"usd": 4900}}
    assert nonzero(report["unattributed"]["revenue"]) == {}
    (google,) = [s for s in report["by_source"] if s["source"] == "google"]
    assert (nonzero(google["revenue"]), google["payments"], google["visitors"]) == ({"usd": 4900}, 1, 1)


# ---- 3. email identified after the payment ------------------------------------------------------------


def test_a_customer_identified_later_by_email_moves_to_the_visitor(shop: Shop) -> None:
    # Given a Stripe customer with an email no visitor has yet, paying directly (no Checkout)
    customer = shop.client.v1.customers.create(params={"email": "late@example.com"})
    _, first = shop.pay(3000, customer=customer.id)
    shop.deliver_all(shop.new_events())
    # Then the charge is unattributed, kept for later
    report = shop.revenue()
    assert (nonzero(report["unattributed"]["revenue"]), report["unattributed"]["payments"]) == ({"usd": 3000}, 1)
    assert tiers(report) == {}
    # When a visitor identifies with that email (other case, spaces)
    view = shop.put_visitor("v-late", email="  Late@Example.com ")
    # Then the charge moves to it, tier 2, and nothing stays unattributed
    assert nonzero(view["lifetime_revenue"]) == {"usd": 3000}
    assert shop.lifetime("v-late") == {"usd": 3000}
    (event,) = shop.timeline_of("v-late", "Charge Succeeded")
    assert (event["stripe_object_id"], event["attribution_tier"], event["revenue"]) == (first, 2, 3000)
    report = shop.revenue()
    assert nonzero(report["unattributed"]["revenue"]) == {}
    assert tiers(report) == {"2": {"usd": 3000}}
    assert customer.id in shop.visitor("v-late")["stripe_customer_ids"]
    shop.invariant()  # the move kept totals and ledger together
    # When the same customer pays again, later
    shop.later()
    _, second = shop.pay(1200, customer=customer.id)
    shop.deliver_all(shop.new_events())
    # Then the new charge follows the remembered customer, tier 3
    assert shop.lifetime("v-late") == {"usd": 4200}
    by_charge = {e["stripe_object_id"]: e["attribution_tier"] for e in shop.timeline_of("v-late", "Charge Succeeded")}
    assert by_charge == {first: 2, second: 3}
    assert tiers(shop.revenue()) == {"2": {"usd": 3000}, "3": {"usd": 1200}}


# ---- 4. refunds out of order --------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["reversed", "in_order"])
def test_partial_then_full_refund_in_any_order_nets_to_zero(shop: Shop, order: str) -> None:
    # Given a visitor and a charge naming it in its metadata
    shop.put_visitor("v-refund")
    _, charge = shop.pay(5000, metadata={"ripples_visitor_id": "v-refund"})
    # When the merchant refunds part of it, then the rest
    shop.client.v1.refunds.create(params={"charge": charge, "amount": 1500})
    shop.client.v1.refunds.create(params={"charge": charge})
    events = shop.new_events()
    assert [event_type(e) for e in events] == ["charge.succeeded", "charge.refunded", "charge.refunded"]
    # And the events arrive newest first (charge.succeeded last), or in order
    shop.deliver_all(events, order)
    # Then the visitor nets 0, with nothing counted twice
    assert shop.lifetime("v-refund") == {}
    timeline = charge_events(shop, "v-refund")
    (succeeded,) = [e for e in timeline if e["type"] == "Charge Succeeded"]
    assert (succeeded["amount"], succeeded["revenue"], succeeded["attribution_tier"]) == (5000, 5000, 1)
    refunds = [e for e in timeline if e["type"] == "Charge Refunded"]
    assert sum(e["amount"] for e in refunds) == 5000
    assert sum(e["revenue"] for e in refunds) == -5000
    assert {e["stripe_object_id"] for e in timeline} == {charge}
    if order == "in_order":  # each booked delta is one event
        assert sorted(e["amount"] for e in refunds) == [1500, 3500]
    report = shop.revenue()
    assert nonzero(report["totals"]) == {}
    (none,) = report["by_source"]
    assert none["payments"] == 1  # a fully refunded charge still counts as a payment
    # And a redelivery of every event changes nothing
    shop.deliver_all(events)
    assert shop.lifetime("v-refund") == {}
    assert len(charge_events(shop, "v-refund")) == len(timeline)


# ---- 5. manual capture ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["as_they_happen", "reversed"])
def test_a_partial_capture_books_the_captured_amount_only(shop: Shop, order: str) -> None:
    # Given a visitor and an authorisation of 100.00 naming it (manual capture)
    shop.put_visitor("v-hold")
    pi, charge = shop.pay(10000, capture_method="manual", metadata={"ripples_visitor_id": "v-hold"})
    authorised = shop.new_events()
    assert [event_type(e) for e in authorised] == ["charge.succeeded"]
    if order == "as_they_happen":
        shop.deliver_all(authorised)
        # Then nothing is booked while the charge is uncaptured
        assert shop.lifetime("v-hold") == {}
        assert charge_events(shop, "v-hold") == []
        assert nonzero(shop.revenue()["totals"]) == {}
    # When the merchant captures 60.00 of it (the rest is released)
    shop.client.v1.payment_intents.capture(pi, params={"amount_to_capture": 6000})
    captured = shop.new_events()
    assert [event_type(e) for e in captured] == ["charge.captured"]
    if order == "as_they_happen":
        shop.deliver_all(captured)
    else:
        shop.deliver_all(captured + authorised, "reversed")  # the stale uncaptured state arrives last
    # Then the captured amount is booked, and the released remainder is not a refund
    assert shop.lifetime("v-hold") == {"usd": 6000}
    timeline = charge_events(shop, "v-hold")
    assert [(e["type"], e["stripe_object_id"], e["amount"], e["revenue"]) for e in timeline] == [
        ("Charge Succeeded", charge, 6000, 6000)
    ]
    assert nonzero(shop.revenue()["totals"]) == {"usd": 6000}


# ---- 6. currencies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "amount"), [("jpy", 5000), ("kwd", 12345)])
def test_zero_and_three_decimal_currencies_stay_in_minor_units(shop: Shop, currency: str, amount: int) -> None:
    # Given a visitor, and a Checkout in a zero-decimal (JPY) or three-decimal (KWD) currency naming it
    shop.put_visitor("v-abroad")
    session = shop.checkout(
        "payment", shop.one_time(amount, currency=currency), metadata={"ripples_visitor_id": "v-abroad"}
    )
    shop.complete_checkout(session, email="abroad@example.com")
    # When its events arrive
    shop.deliver_all(shop.new_events())
    # Then the amounts are exactly Stripe's integers, per currency
    assert shop.lifetime("v-abroad") == {currency: amount}
    (event,) = shop.timeline_of("v-abroad", "Charge Succeeded")
    assert (event["amount"], event["currency"], event["revenue"]) == (amount, currency, amount)
    report = shop.revenue()
    assert nonzero(report["totals"]) == {currency: amount}
    assert tiers(report) == {"1": {currency: amount}}
