"""Rule 2 (tiers 2 and 3) and rule 1's amounts, as pure functions over Stripe's charge shape."""

from __future__ import annotations

from typing import Any

import pytest

from local.stripe_emulator import fixtures
from shared.revenue.attribution import attribute, candidate_emails
from shared.revenue.models import UNATTRIBUTED, Attribution, ChargeFacts, CustomerRecord


def charge(**overrides: Any) -> ChargeFacts:
    """A charge built from Stripe's example object, as a webhook would carry it."""
    data = fixtures.build("charge", id="ch_1", amount=2000, amount_captured=2000, captured=True, status="succeeded")
    billing_email = overrides.pop("billing_email", None)
    data.update(overrides)
    data["billing_details"]["email"] = billing_email
    return ChargeFacts.from_stripe(data)


def test_a_linked_customer_wins_over_any_email() -> None:
    customer = CustomerRecord("cus_1", email="a@example.com", visitor_id="linked", tier=2)
    assert attribute(charge(customer="cus_1"), customer, {"a@example.com": "other"}) == Attribution("linked", 3)


def test_emails_are_tried_in_rule_order_customer_billing_receipt() -> None:
    customer = CustomerRecord("cus_1", email=" First@Example.com ")
    c = charge(customer="cus_1", billing_email="second@example.com", receipt_email="third@example.com")
    assert candidate_emails(c, customer) == ["first@example.com", "second@example.com", "third@example.com"]
    heads = {"second@example.com": "v2", "third@example.com": "v3"}
    assert attribute(c, customer, heads) == Attribution("v2", 2)
    assert attribute(c, customer, {"first@example.com": "v1", **heads}) == Attribution("v1", 2)


def test_no_match_is_unattributed() -> None:
    assert attribute(charge(receipt_email="x@example.com"), None, {}) == UNATTRIBUTED
    assert attribute(charge(), CustomerRecord("cus_1", email=""), {"": "v"}) == UNATTRIBUTED


def test_repeated_emails_are_tried_once() -> None:
    c = charge(billing_email="Same@example.com", receipt_email="same@EXAMPLE.com")
    assert candidate_emails(c, None) == ["same@example.com"]


@pytest.mark.parametrize(
    ("fields", "books", "refunded"),
    [
        ({}, True, 0),
        ({"captured": False, "amount_captured": 0}, False, 0),
        ({"status": "pending"}, False, 0),
        ({"status": "failed", "captured": False, "amount_captured": 0}, False, 0),
        ({"amount_refunded": 500}, True, 500),
        # partial capture of 1500: the released 500 shows in amount_refunded and is not a refund
        ({"amount_captured": 1500, "amount_refunded": 500}, True, 0),
        ({"amount_captured": 1500, "amount_refunded": 800}, True, 300),
    ],
)
def test_what_a_charge_books(fields: dict[str, Any], books: bool, refunded: int) -> None:
    c = charge(**fields)
    assert c.books_revenue is books
    assert c.refunded == refunded


def test_expanded_customers_and_currency_case() -> None:
    c = charge(customer={"id": "cus_9", "object": "customer"}, currency="JPY")
    assert (c.customer_id, c.currency) == ("cus_9", "jpy")
    with pytest.raises(ValueError, match="currency"):
        charge(currency="us$")
