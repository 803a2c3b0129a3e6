"""Scenarios of subscriptions bought through Checkout: renewals, plan fields, trials, cancellation, and
the same stream of events delivered shuffled and twice (rule 3's order independence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from .harness import Shop, Shops, event_object, event_type, nonzero
from .harness import shop_fixture as shop_fixture  # the `shop` fixture
from .harness import shops_fixture as shops_fixture  # the `shops` fixture (`shop` uses it)

PRICE = 1500
NICKNAME = "Pro monthly"


def iso(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def charge_ids(events: list[bytes]) -> list[str]:
    return [event_object(e)["id"] for e in events if event_type(e) == "charge.succeeded"]


@dataclass
class Subscribed:
    session: str
    subscription: str
    price: str
    charges: list[str]  # the first invoice's charge, then each renewal's
    events: list[bytes]  # every processed event, oldest first


def subscribe_and_renew(shop: Shop, visitor_id: str, renewals: int = 2) -> Subscribed:
    """The merchant's side of scenario 2: a subscription bought through Checkout (metadata naming the
    visitor), then `renewals` renewals, each some time later. Nothing is delivered."""
    price = shop.monthly_price(PRICE, NICKNAME)
    session = shop.checkout(
        "subscription", [{"price": price, "quantity": 1}], metadata={"ripples_visitor_id": visitor_id}
    )
    completed = shop.complete_checkout(session, email="subscriber@example.com")
    subscription = completed["subscription"]
    events = shop.new_events()
    for _ in range(renewals):
        shop.later(86_400)
        shop.renew(subscription)
        events += shop.new_events()
    return Subscribed(session, subscription, price, charge_ids(events), events)


def cancel(shop: Shop, subscription: str) -> list[bytes]:
    shop.later(3600)
    shop.client.v1.subscriptions.cancel(subscription)
    return shop.new_events()


# ---- 2. subscription via Checkout, renewals, cancellation ---------------------------------------------------


def test_a_subscription_bought_through_checkout_renews_and_cancels(shop: Shop) -> None:
    # Given a visitor who buys a monthly plan through Checkout (metadata naming it)
    shop.put_visitor("v-sub", acquisition={"source": "newsletter"})
    bought = subscribe_and_renew(shop, "v-sub", renewals=2)
    first_set = [event_type(e) for e in bought.events[:5]]
    assert first_set == [
        "customer.subscription.created",
        "charge.succeeded",
        "invoice.paid",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    assert len(bought.charges) == 3
    # When every event arrives in order
    shop.deliver_all(bought.events)
    # Then the three paid invoices' charges are the visitor's: the first tier 1 (the session paid it),
    # the renewals tier 3 (the customer the session linked)
    assert shop.lifetime("v-sub") == {"usd": 3 * PRICE}
    tiers = {e["stripe_object_id"]: e["attribution_tier"] for e in shop.timeline_of("v-sub", "Charge Succeeded")}
    first, *renewals = bought.charges
    assert tiers == {first: 1, **dict.fromkeys(renewals, 3)}
    # And the Invoice Paid events show the money but add nothing
    invoices = shop.timeline_of("v-sub", "Invoice Paid")
    assert [(e["amount"], e["currency"], e["revenue"]) for e in invoices] == [(PRICE, "usd", 0)] * 3
    (completed,) = shop.timeline_of("v-sub", "Checkout Completed")
    assert (completed["stripe_object_id"], completed["revenue"]) == (bought.session, 0)
    assert all(e["revenue"] == 0 for e in shop.timeline_of("v-sub", "Subscription Updated"))
    # And the visitor shows the plan as Stripe has it now
    subscription = shop.client.v1.subscriptions.retrieve(bought.subscription)
    period_end = subscription["items"]["data"][0]["current_period_end"]
    visitor = shop.visitor("v-sub")
    plan = visitor["plan"]
    assert plan is not None
    assert {k: v for k, v in plan.items() if k != "current_period_end"} == {
        "name": NICKNAME,
        "status": "active",
        "price_id": bought.price,
        "amount": PRICE,
        "currency": "usd",
        "interval": "month",
        "cancel_at_period_end": False,
    }
    assert parsed(plan["current_period_end"]) == iso(period_end)
    assert visitor["stripe_customer_ids"] == [subscription.customer]
    report = shop.revenue()
    assert {t: nonzero(m) for t, m in report["by_tier"].items() if nonzero(m)} == {
        "1": {"usd": PRICE},
        "3": {"usd": 2 * PRICE},
    }
    # When the merchant cancels the subscription
    shop.deliver_all(cancel(shop, bought.subscription))
    # Then the plan is kept, canceled, and the timeline says so (revenue unchanged)
    plan = shop.visitor("v-sub")["plan"]
    assert (plan["status"], plan["name"], plan["amount"]) == ("canceled", NICKNAME, PRICE)
    (canceled,) = shop.timeline_of("v-sub", "Subscription Canceled")
    assert (canceled["stripe_object_id"], canceled["revenue"]) == (bought.subscription, 0)
    assert shop.lifetime("v-sub") == {"usd": 3 * PRICE}


# ---- 7. a free trial ----------------------------------------------------------------------------------------------


def test_a_free_trial_links_the_customer_for_its_first_paid_renewal(shop: Shop) -> None:
    # Given a visitor who starts a 14-day trial through Checkout (nothing charged)
    shop.put_visitor("v-trial")
    price = shop.monthly_price(PRICE, NICKNAME)
    session = shop.checkout(
        "subscription",
        [{"price": price, "quantity": 1}],
        metadata={"ripples_visitor_id": "v-trial"},
        subscription_data={"trial_period_days": 14},
    )
    subscription = shop.complete_checkout(session, email="trial@example.com")["subscription"]
    trial = shop.new_events()
    assert "charge.succeeded" not in [event_type(e) for e in trial]
    # When its events arrive
    shop.deliver_all(trial)
    # Then the visitor is trialing, with an Invoice Paid of 0 and no money
    visitor = shop.visitor("v-trial")
    assert nonzero(visitor["lifetime_revenue"]) == {}
    assert visitor["plan"]["status"] == "trialing"
    (invoice,) = shop.timeline_of("v-trial", "Invoice Paid")
    assert (invoice["amount"], invoice["revenue"]) == (0, 0)
    assert shop.timeline_of("v-trial", "Charge Succeeded") == []
    # When the trial ends and the first paid period is charged
    shop.later(14 * 86_400)
    shop.renew(subscription)
    renewal = shop.new_events()
    (charge,) = charge_ids(renewal)
    shop.deliver_all(renewal)
    # Then the trial's session linked the customer: the charge is the visitor's, tier 3
    assert shop.lifetime("v-trial") == {"usd": PRICE}
    (event,) = shop.timeline_of("v-trial", "Charge Succeeded")
    assert (event["stripe_object_id"], event["attribution_tier"], event["revenue"]) == (charge, 3, PRICE)
    assert shop.visitor("v-trial")["plan"]["status"] == "active"
    assert nonzero(shop.revenue()["unattributed"]["revenue"]) == {}


# ---- 10. duplicates and shuffles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_event_twice_and_shuffled_ends_as_in_order(shops: Shops, seed: int) -> None:
    # Given two projects connected to the same Stripe account, each with the same visitor
    in_order, shuffled = shops.open("shop-in-order"), shops.open("shop-shuffled")
    for shop in (in_order, shuffled):
        shop.put_visitor("v-sub", acquisition={"source": "newsletter"})
    # And scenario 2 at Stripe: a subscription through Checkout, two renewals, a cancellation
    bought = subscribe_and_renew(in_order, "v-sub", renewals=2)
    events = bought.events + cancel(in_order, bought.subscription)
    # When one project gets the events in order, the other every event twice, shuffled
    in_order.deliver_all(events)
    results = shuffled.deliver_all(events, "twice_shuffled", seed=seed)
    assert results.count("duplicate") == len(events)  # every second copy, whatever came first
    assert results.count("booked") == len(bought.charges)
    # Then both end in the same state: visitor, plan, timeline, report, ledger and customer links
    expected, actual = in_order.state(["v-sub"]), shuffled.state(["v-sub"])
    assert actual == expected
    assert nonzero(expected["visitors"]["v-sub"]["lifetime_revenue"]) == {"usd": 3 * PRICE}
    assert expected["visitors"]["v-sub"]["plan"]["status"] == "canceled"
