"""End to end through the local stack: subscription revenue with the emulator delivering events
shuffled and duplicated, and late identification re-attributing revenue."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Stack
from tests.e2e.test_walking_skeleton import connect


def complete(client: Any, session_id: str, **params: Any) -> Any:
    resp = client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", **params)
    return client.deserialize(resp, api_mode="V1")


def test_subscription_with_renewals_delivered_shuffled_and_twice(stack: Stack) -> None:
    project = "e2e-subs"
    account, merchant, _ = connect(stack, project)
    # Given a visitor, and Stripe delivering every event twice, in shuffled order
    assert (
        stack.call("PUT", f"/projects/{project}/visitors/vis-s", {"acquisition": {"source": "newsletter"}}, project)[0]
        == 200
    )
    stack.control.delivery(
        account.id, order="shuffled", window=50, window_seconds=0.5, duplicate_probability=1.0, seed=3
    )
    price = merchant.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount": 1900,
            "nickname": "Pro monthly",
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    # When the visitor subscribes through Checkout (our cookie in the metadata) and renews twice
    session = merchant.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"ripples_visitor_id": "vis-s"},
            "customer_email": "subscriber@example.com",
            "success_url": "https://shop.example/thanks",
        }
    )
    completed = complete(merchant, session.id, email="subscriber@example.com")
    for _ in range(2):
        merchant.raw_request("post", f"/v1/test_helpers/subscriptions/{completed.subscription}/renew")
    attempts = stack.control.wait_for_deliveries(account.id, timeout=60)
    # Then every delivery was accepted and the three payments count once each, on the visitor
    assert {a["status"] for a in attempts} == {200}
    visitor = stack.call("GET", f"/projects/{project}/visitors/vis-s", project=project)[1]
    assert visitor["lifetime_revenue"] == {"eur": 5700}
    assert visitor["plan"]["name"] == "Pro monthly"
    assert visitor["plan"]["status"] == "active"
    assert (visitor["plan"]["amount"], visitor["plan"]["currency"], visitor["plan"]["interval"]) == (
        1900,
        "eur",
        "month",
    )
    events = stack.call("GET", f"/projects/{project}/visitors/vis-s/timeline", project=project)[1]["events"]
    charges = [e for e in events if e["type"] == "Charge Succeeded"]
    assert sorted(e["attribution_tier"] for e in charges) == [1, 3, 3]
    assert sum(e["revenue"] for e in events) == 5700
    assert {e["type"] for e in events} >= {"Checkout Completed", "Invoice Paid", "Subscription Updated"}
    # And the report splits it by source and tier
    report = stack.call("GET", f"/projects/{project}/revenue", project=project)[1]
    assert report["totals"] == {"eur": 5700}
    assert report["by_source"] == [{"source": "newsletter", "revenue": {"eur": 5700}, "payments": 3, "visitors": 1}]
    assert report["by_tier"]["1"] == {"eur": 1900}
    assert report["by_tier"]["3"] == {"eur": 3800}


def test_identifying_later_moves_pending_revenue(stack: Stack) -> None:
    project = "e2e-late"
    account, merchant, _ = connect(stack, project)
    customer = merchant.v1.customers.create(params={"email": "late@example.com"})
    merchant.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "customer": customer.id,
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    stack.control.wait_for_deliveries(account.id)
    assert stack.call("GET", f"/projects/{project}/revenue", project=project)[1]["unattributed"]["revenue"] == {
        "usd": 4200
    }
    # When a visitor identifies with the customer's email
    status, visitor = stack.call("PUT", f"/projects/{project}/visitors/vis-l", {"email": "LATE@example.com"}, project)
    # Then the pending payment is now the visitor's (tier 2), and nothing is left unattributed
    assert status == 200
    assert visitor["lifetime_revenue"] == {"usd": 4200}
    report = stack.call("GET", f"/projects/{project}/revenue", project=project)[1]
    assert report["unattributed"]["revenue"] == {}
    assert report["by_tier"]["2"] == {"usd": 4200}
