"""Scenarios of who a payment belongs to when the evidence is doubtful: a visitor id this project does not
know, and two visitors sharing an email (rule 2's trust and "identified first")."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import Shop, event_object, event_type, nonzero
from .harness import shop_fixture as shop_fixture  # the `shop` fixture
from .harness import shops_fixture as shops_fixture  # the `shops` fixture (`shop` uses it)


def charge_tiers(shop: Shop, visitor_id: str) -> dict[str, Any]:
    return {e["stripe_object_id"]: e["attribution_tier"] for e in shop.timeline_of(visitor_id, "Charge Succeeded")}


# ---- 8. an unknown visitor id in the session's metadata --------------------------------------------------


@pytest.mark.parametrize(
    "order",
    # session_first: the charge, arriving after its customer-less session, must keep the session's
    # unknown visitor id as a reference (a regression of exactly that was found here).
    ["charge_first", "session_first"],
)
@pytest.mark.parametrize("email_match", [False, True], ids=["no_email_match", "email_match"])
def test_an_unknown_visitor_id_is_trusted_only_once_the_visitor_exists(
    shop: Shop, email_match: bool, order: str
) -> None:
    # Given (maybe) a visitor identified with the buyer's email
    if email_match:
        shop.put_visitor("v-mail", email="eight@example.com")
    # And a Checkout Session whose metadata names a visitor this project has never seen
    session = shop.checkout("payment", shop.one_time(2500), metadata={"ripples_visitor_id": "v-stranger"})
    shop.complete_checkout(session, email="eight@example.com")
    events = shop.new_events()
    assert [event_type(e) for e in events] == ["charge.succeeded", "checkout.session.completed"]
    # When the events arrive
    shop.deliver_all(events, "in_order" if order == "charge_first" else "reversed")
    (charge_id,) = [event_object(e)["id"] for e in events if event_type(e) == "charge.succeeded"]
    # Then the unknown id is not trusted: the charge goes by email, or stays unattributed
    report = shop.revenue()
    if email_match:
        assert shop.lifetime("v-mail") == {"usd": 2500}
        assert charge_tiers(shop, "v-mail") == {charge_id: 2}
        assert nonzero(report["unattributed"]["revenue"]) == {}
    else:
        assert nonzero(report["unattributed"]["revenue"]) == {"usd": 2500}
    shop.invariant()
    # When the tracker creates that visitor in this project
    view = shop.put_visitor("v-stranger")
    # Then the charge moves to it, tier 1, and nobody else keeps it
    assert nonzero(view["lifetime_revenue"]) == {"usd": 2500}
    assert charge_tiers(shop, "v-stranger") == {charge_id: 1}
    if email_match:
        assert shop.lifetime("v-mail") == {}
        assert charge_tiers(shop, "v-mail") == {}
    report = shop.revenue()
    assert nonzero(report["unattributed"]["revenue"]) == {}
    assert {t: nonzero(m) for t, m in report["by_tier"].items() if nonzero(m)} == {"1": {"usd": 2500}}


# ---- 9. two visitors sharing an email --------------------------------------------------------------------------


@pytest.mark.parametrize("charge_arrives", ["before_both", "between", "after_both"])
def test_the_visitor_identified_first_owns_the_customer(shop: Shop, charge_arrives: str) -> None:
    # Given a Stripe customer who pays (directly) with an email two visitors will share
    customer = shop.client.v1.customers.create(params={"email": "shared@example.com"})
    _, charge = shop.pay(1800, customer=customer.id)
    events = shop.new_events()
    # When the visitors identify with the email one after the other (other devices, other case),
    # and the charge arrives before, between or after
    if charge_arrives == "before_both":
        shop.deliver_all(events)
    shop.put_visitor("v-first", email="shared@example.com")
    if charge_arrives == "between":
        shop.deliver_all(events)
    shop.put_visitor("v-second", email="SHARED@example.com")
    if charge_arrives == "after_both":
        shop.deliver_all(events)
    # Then the one identified first owns it, tier 2
    assert shop.lifetime("v-first") == {"usd": 1800}
    assert charge_tiers(shop, "v-first") == {charge: 2}
    assert shop.lifetime("v-second") == {}
    assert charge_tiers(shop, "v-second") == {}
    # And identifying the second again, later, moves nothing
    shop.put_visitor("v-second", email="shared@example.com", name="Second device")
    assert shop.lifetime("v-first") == {"usd": 1800}
    assert shop.lifetime("v-second") == {}
    assert customer.id in shop.visitor("v-first")["stripe_customer_ids"]
    assert shop.visitor("v-second")["stripe_customer_ids"] == []
