"""Billing flows driven through the official SDK: subscriptions via Checkout, invoices, renewals, changes.

A paid invoice links invoice -> invoice_payment -> payment_intent -> charge, as in API versions since
basil (`invoice.charge`, `invoice.payment_intent` and `invoice.subscription` are gone).
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

# ---- helpers ---------------------------------------------------------------------------------


def recurring_price(
    client: stripe.StripeClient, amount: int = 2000, currency: str = "usd", interval: str = "month", **params: Any
) -> stripe.Price:
    """A product and a recurring price for it, created through the SDK."""
    product = client.v1.products.create(params={"name": f"Plan {amount}"})
    return client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": interval},
            **params,
        }
    )


def subscription_session(client: stripe.StripeClient, price: stripe.Price, **params: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "success_url": "https://shop.example/thanks",
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"ripples_visitor_id": "v_sub"},
            **params,
        }
    )


def complete(client: stripe.StripeClient, session_id: str, **params: Any) -> Any:
    """The customer pays on Checkout's page (test helper)."""
    resp = client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", **params)
    return client.deserialize(resp, api_mode="V1")


def subscribe_via_checkout(
    client: stripe.StripeClient, price: stripe.Price, **params: Any
) -> tuple[Any, stripe.Subscription]:
    """A completed subscription-mode session and the subscription it created."""
    session = subscription_session(client, price, **params)
    completed = complete(client, session.id, email="subscriber@example.com")
    return completed, client.v1.subscriptions.retrieve(completed.subscription)


def subscribe(client: stripe.StripeClient, price: stripe.Price, **params: Any) -> stripe.Subscription:
    """A subscription created directly for a new customer, its first invoice paid by card."""
    customer = client.v1.customers.create(params={"email": "direct@example.com"})
    return client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}], **params})


def renew(client: stripe.StripeClient, sub_id: str, **params: Any) -> Any:
    """End the current period now (test helper): the next invoice is created and paid."""
    resp = client.raw_request("post", f"/v1/test_helpers/subscriptions/{sub_id}/renew", **params)
    return client.deserialize(resp, api_mode="V1")


def invoices_of(client: stripe.StripeClient, sub_id: str) -> list[stripe.Invoice]:
    """The subscription's invoices, oldest first."""
    listed = client.v1.invoices.list(params={"subscription": sub_id, "limit": 100})
    return list(reversed(listed.data))


def paying_charge(client: stripe.StripeClient, invoice_id: str) -> stripe.Charge:
    """Follow invoice -> invoice_payment -> payment_intent -> charge."""
    invoice = client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})
    assert invoice.payments is not None
    (invoice_payment,) = invoice.payments.data
    assert invoice_payment.status == "paid"
    assert invoice_payment.payment.type == "payment_intent"
    pi_id = invoice_payment.payment.payment_intent
    assert isinstance(pi_id, str)
    pi = client.v1.payment_intents.retrieve(pi_id)
    assert isinstance(pi.latest_charge, str)
    return client.v1.charges.retrieve(pi.latest_charge)


def events(client: stripe.StripeClient, event_type: str | None = None) -> list[stripe.Event]:
    """The account's events, oldest first (the API lists newest first)."""
    params: dict[str, Any] = {"limit": 100}
    if event_type is not None:
        params["type"] = event_type
    return list(reversed(client.v1.events.list(params=params).data))


def is_subsequence(expected: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(item in remaining for item in expected)


def period(sub: stripe.Subscription) -> tuple[int, int]:
    item = sub.items.data[0]
    return item.current_period_start, item.current_period_end


# ---- subscriptions via Checkout --------------------------------------------------------------


def test_checkout_subscription_creates_customer_active_subscription_and_paid_invoice(
    stripe_client: stripe.StripeClient,
) -> None:
    # Given a monthly price
    price = recurring_price(stripe_client, 2900, nickname="Pro")

    # When a customer subscribes through Checkout
    session, sub = subscribe_via_checkout(stripe_client, price, client_reference_id="ref-sub")

    # Then the session is complete and paid, with a new customer, the subscription and its invoice
    assert session.status == "complete"
    assert session.payment_status == "paid"
    assert session.mode == "subscription"
    assert session.client_reference_id == "ref-sub"
    assert session.metadata.to_dict() == {"ripples_visitor_id": "v_sub"}
    assert session.payment_intent is None
    customer = stripe_client.v1.customers.retrieve(session.customer)
    assert customer.email == "subscriber@example.com"
    assert sub.status == "active"
    assert sub.customer == customer.id
    assert sub.latest_invoice == session.invoice
    assert sub.items.data[0].price.id == price.id
    assert sub.items.data[0].price.nickname == "Pro"
    assert sub.transfer_data is None
    # ... the invoice is paid, and names its subscription through parent.subscription_details
    invoice = stripe_client.v1.invoices.retrieve(session.invoice)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == invoice.amount_due == 2900
    assert invoice.amount_remaining == 0
    assert invoice.amount_overpaid == 0
    assert invoice.customer == customer.id
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    assert "payments" not in invoice
    # ... and the money is reached through invoice -> invoice_payment -> payment_intent -> charge
    charge = paying_charge(stripe_client, invoice.id)
    assert charge.status == "succeeded"
    assert charge.amount == charge.amount_captured == 2900
    assert charge.customer == customer.id
    assert charge.balance_transaction is not None
    # ... and the session is found by its subscription
    found = stripe_client.v1.checkout.sessions.list(params={"subscription": sub.id}).data
    assert [s.id for s in found] == [session.id]


def test_invoice_payments_list_by_invoice_and_by_payment_intent(stripe_client: stripe.StripeClient) -> None:
    # Given a subscription paid through Checkout
    session, _ = subscribe_via_checkout(stripe_client, recurring_price(stripe_client))
    invoice = stripe_client.v1.invoices.retrieve(session.invoice, params={"expand": ["payments"]})
    assert invoice.payments is not None
    expected = invoice.payments.data[0]
    pi_id = expected.payment.payment_intent

    # When listing invoice payments by invoice, and by payment intent
    by_invoice = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
    by_pi = stripe_client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": pi_id}}
    ).data

    # Then both find the one invoice payment, paid in full
    assert [p.id for p in by_invoice] == [expected.id]
    assert [p.id for p in by_pi] == [expected.id]
    assert by_pi[0].invoice == invoice.id
    assert by_pi[0].amount_paid == by_pi[0].amount_requested == invoice.amount_paid
    assert by_pi[0].status_transitions.paid_at is not None
    assert stripe_client.v1.invoice_payments.retrieve(expected.id).payment.payment_intent == pi_id


def test_checkout_subscription_data_metadata_reaches_subscription_and_invoice(
    stripe_client: stripe.StripeClient,
) -> None:
    # Given/When a subscription bought through Checkout with subscription_data.metadata
    session, sub = subscribe_via_checkout(
        stripe_client, recurring_price(stripe_client), subscription_data={"metadata": {"ripples_visitor_id": "v_7"}}
    )

    # Then the subscription and its invoice carry that metadata, the session keeps its own
    assert sub.metadata.to_dict() == {"ripples_visitor_id": "v_7"}
    assert session.metadata.to_dict() == {"ripples_visitor_id": "v_sub"}
    invoice = stripe_client.v1.invoices.retrieve(session.invoice)
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.metadata is not None
    assert invoice.parent.subscription_details.metadata.to_dict() == {"ripples_visitor_id": "v_7"}


def test_checkout_subscription_event_order(stripe_client: stripe.StripeClient) -> None:
    # Given a price
    price = recurring_price(stripe_client)

    # When a customer subscribes through Checkout
    session, sub = subscribe_via_checkout(stripe_client, price)

    # Then the events of a subscription via Checkout arrive in the order the README lists
    all_events = events(stripe_client)
    types = [e.type for e in all_events]
    assert is_subsequence(
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "charge.succeeded",
            "invoice.paid",
            "customer.subscription.updated",
            "checkout.session.completed",
            "charge.updated",
        ],
        types,
    ), types
    by_type = {e.type: e.data.object for e in all_events}
    assert by_type["customer.subscription.created"]["status"] == "incomplete"
    assert by_type["customer.subscription.updated"]["status"] == "active"
    assert by_type["checkout.session.completed"]["subscription"] == sub.id
    assert by_type["checkout.session.completed"]["invoice"] == session.invoice
    assert types[-1] == "charge.updated"
    assert "checkout.session.async_payment_succeeded" not in types


def test_checkout_subscription_with_trial_pays_nothing(stripe_client: stripe.StripeClient) -> None:
    # Given a price
    price = recurring_price(stripe_client, 5000)

    # When a customer starts a 14-day trial through Checkout
    session, sub = subscribe_via_checkout(stripe_client, price, subscription_data={"trial_period_days": 14})

    # Then the subscription is trialing and its $0 invoice is paid without any charge
    assert session.status == "complete"
    assert session.payment_status == "no_payment_required"
    assert session.amount_total == 0
    assert sub.status == "trialing"
    assert sub.trial_end is not None
    assert sub.trial_start is not None
    assert sub.trial_end - sub.trial_start == 14 * 86_400
    assert sub.billing_cycle_anchor == sub.trial_end
    assert period(sub) == (sub.trial_start, sub.trial_end)
    invoice = stripe_client.v1.invoices.retrieve(session.invoice, params={"expand": ["payments"]})
    assert invoice.status == "paid"
    assert invoice.amount_due == invoice.amount_paid == 0
    assert invoice.payments is not None
    assert invoice.payments.data == []
    assert stripe_client.v1.charges.list(params={"customer": sub.customer}).data == []
    assert [e.type for e in events(stripe_client) if e.type.startswith("charge.")] == []


def test_a_declined_card_on_a_subscription_checkout_creates_nothing(stripe_client: stripe.StripeClient) -> None:
    # Given an open subscription-mode session
    session = subscription_session(stripe_client, recurring_price(stripe_client))
    # When the customer's card is declined
    with pytest.raises(stripe.CardError):
        complete(stripe_client, session.id, email="declined@example.com", payment_method="pm_card_chargeDeclined")
    # Then the session stays open and no customer, subscription or invoice exists
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert stripe_client.v1.customers.list(params={"email": "declined@example.com"}).data == []
    assert stripe_client.v1.subscriptions.list(params={"status": "all"}).data == []
    assert stripe_client.v1.invoices.list().data == []


def test_trial_end_bills_the_first_paid_period(stripe_client: stripe.StripeClient) -> None:
    # Given a trialing subscription
    _, sub = subscribe_via_checkout(
        stripe_client, recurring_price(stripe_client, 5000), subscription_data={"trial_period_days": 7}
    )

    # When the trial ends
    renewed = renew(stripe_client, sub.id)

    # Then the subscription is active and the first paid period is charged in full
    assert renewed.status == "active"
    assert period(renewed)[0] == sub.trial_end
    invoice = stripe_client.v1.invoices.retrieve(renewed.latest_invoice)
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.amount_paid == 5000
    assert paying_charge(stripe_client, invoice.id).amount == 5000
    trial_update = events(stripe_client, "customer.subscription.updated")[0]
    assert trial_update.data.previous_attributes["status"] == "trialing"
    assert len(invoices_of(stripe_client, sub.id)) == 2


# ---- renewals --------------------------------------------------------------------------------


def test_renewal_bills_a_new_invoice_with_a_new_charge(stripe_client: stripe.StripeClient) -> None:
    # Given an active monthly subscription
    session, sub = subscribe_via_checkout(stripe_client, recurring_price(stripe_client, 1200))
    first_start, first_end = period(sub)
    first_charge = paying_charge(stripe_client, session.invoice)
    seen = len(events(stripe_client))

    # When its period ends
    renewed = renew(stripe_client, sub.id)

    # Then the period advanced and a new subscription_cycle invoice was paid by a new charge
    assert renewed.status == "active"
    assert first_start < first_end
    new_start, new_end = period(renewed)
    assert new_start == first_end
    assert new_end > new_start
    assert renewed.latest_invoice != session.invoice
    invoice = stripe_client.v1.invoices.retrieve(renewed.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.amount_paid == 1200
    assert (invoice.period_start, invoice.period_end) == period(renewed)
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    charge = paying_charge(stripe_client, invoice.id)
    assert charge.id != first_charge.id
    assert charge.status == "succeeded"
    assert charge.amount == 1200
    assert charge.customer == sub.customer
    renewal_types = [e.type for e in events(stripe_client)[seen:]]
    assert is_subsequence(
        ["customer.subscription.updated", "invoice.created", "invoice.finalized", "charge.succeeded", "invoice.paid"],
        renewal_types,
    ), renewal_types


def test_two_renewals_make_three_invoices(stripe_client: stripe.StripeClient) -> None:
    # Given a subscription created directly
    sub = subscribe(stripe_client, recurring_price(stripe_client, 700))

    # When two periods end
    renew(stripe_client, sub.id)
    renewed = renew(stripe_client, sub.id)

    # Then there are three paid invoices, each paid by its own charge
    invoices = invoices_of(stripe_client, sub.id)
    assert [i.billing_reason for i in invoices] == ["subscription_create", "subscription_cycle", "subscription_cycle"]
    assert {i.status for i in invoices} == {"paid"}
    assert invoices[-1].id == renewed.latest_invoice
    assert [i.period_end for i in invoices[:-1]] == [i.period_start for i in invoices[1:]]
    charges = {paying_charge(stripe_client, i.id).id for i in invoices}
    assert len(charges) == 3
    assert len(stripe_client.v1.charges.list(params={"customer": sub.customer}).data) == 3


def test_declined_renewal_fails_the_invoice_and_makes_the_subscription_past_due(
    stripe_client: stripe.StripeClient,
) -> None:
    # Given an active subscription
    sub = subscribe(stripe_client, recurring_price(stripe_client, 900))

    # When the renewal is paid with a card that is declined
    renewed = renew(stripe_client, sub.id, payment_method="pm_card_chargeDeclined")

    # Then the subscription is past due and its latest invoice is open, with a payment_failed event
    assert renewed.status == "past_due"
    invoice = stripe_client.v1.invoices.retrieve(renewed.latest_invoice)
    assert invoice.status == "open"
    assert invoice.amount_paid == 0
    assert invoice.amount_remaining == 900
    assert invoice.attempted is True
    failed = events(stripe_client, "invoice.payment_failed")
    assert [e.data.object["id"] for e in failed] == [invoice.id]
    assert [e.data.object["status"] for e in events(stripe_client, "charge.failed")] == ["failed"]
    last_update = events(stripe_client, "customer.subscription.updated")[-1]
    assert last_update.data.object["status"] == "past_due"
    assert last_update.data.previous_attributes.to_dict() == {"status": "active"}
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_paid_renewal_brings_a_past_due_subscription_back_to_active(stripe_client: stripe.StripeClient) -> None:
    # Given a subscription made past due by a declined renewal
    sub = subscribe(stripe_client, recurring_price(stripe_client, 900))
    renew(stripe_client, sub.id, payment_method="pm_card_chargeDeclined")

    # When the next renewal is paid
    renewed = renew(stripe_client, sub.id)

    # Then its latest invoice is paid and it is active again
    assert stripe_client.v1.invoices.retrieve(renewed.latest_invoice).status == "paid"
    assert renewed.status == "active"
    last_update = events(stripe_client, "customer.subscription.updated")[-1]
    assert last_update.data.object["status"] == "active"
    assert last_update.data.previous_attributes.to_dict() == {"status": "past_due"}


# ---- subscriptions: create, update, cancel, list ---------------------------------------------


def test_subscription_created_directly_is_active_with_a_paid_invoice(stripe_client: stripe.StripeClient) -> None:
    # Given/When a subscription is created directly for a customer
    price = recurring_price(stripe_client, 1500, interval="year")
    sub = subscribe(stripe_client, price, metadata={"source": "api"})

    # Then it is active, billed for a year, and its first invoice is paid
    assert sub.status == "active"
    assert sub.metadata.to_dict() == {"source": "api"}
    start, end = period(sub)
    assert start == sub.start_date == sub.billing_cycle_anchor
    assert end - start >= 365 * 86_400
    assert sub.items.data[0].price.recurring is not None
    assert sub.items.data[0].price.recurring.interval == "year"
    invoice = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.amount_paid == 1500
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.metadata is not None
    assert invoice.parent.subscription_details.metadata.to_dict() == {"source": "api"}
    assert paying_charge(stripe_client, invoice.id).amount == 1500


def test_subscription_price_change_reports_previous_attributes(stripe_client: stripe.StripeClient) -> None:
    # Given a subscription on a basic price
    basic = recurring_price(stripe_client, 1000, nickname="Basic")
    premium = recurring_price(stripe_client, 3000, nickname="Premium")
    sub = subscribe(stripe_client, basic)
    item_id = sub.items.data[0].id

    # When it moves to the premium price
    updated = stripe_client.v1.subscriptions.update(sub.id, params={"items": [{"id": item_id, "price": premium.id}]})

    # Then the item keeps its id and carries the new price
    assert [(i.id, i.price.id) for i in updated.items.data] == [(item_id, premium.id)]
    assert stripe_client.v1.subscriptions.retrieve(sub.id).items.data[0].price.nickname == "Premium"
    # ... and customer.subscription.updated names the old price in previous_attributes
    event = events(stripe_client, "customer.subscription.updated")[-1]
    assert event.data.object["id"] == sub.id
    assert event.data.object["items"]["data"][0]["price"]["id"] == premium.id
    previous = event.data.previous_attributes
    assert previous is not None
    assert previous["items"]["data"][0]["price"]["id"] == basic.id


def test_subscription_cancel_emits_deleted(stripe_client: stripe.StripeClient) -> None:
    # Given an active subscription
    sub = subscribe(stripe_client, recurring_price(stripe_client))

    # When it is canceled
    canceled = stripe_client.v1.subscriptions.cancel(sub.id)

    # Then it is canceled now and customer.subscription.deleted carries it
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    assert canceled.ended_at is not None
    deleted = events(stripe_client, "customer.subscription.deleted")
    assert [(e.data.object["id"], e.data.object["status"]) for e in deleted] == [(sub.id, "canceled")]
    # ... and it can be neither canceled nor renewed again
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError):
        renew(stripe_client, sub.id)


def test_subscription_list_hides_canceled_unless_asked(stripe_client: stripe.StripeClient) -> None:
    # Given one active and one canceled subscription
    price = recurring_price(stripe_client)
    active = subscribe(stripe_client, price)
    canceled = subscribe(stripe_client, price)
    stripe_client.v1.subscriptions.cancel(canceled.id)

    # When listing by default, with status=all and with status=canceled
    default = stripe_client.v1.subscriptions.list().data
    everything = stripe_client.v1.subscriptions.list(params={"status": "all"}).data
    only_canceled = stripe_client.v1.subscriptions.list(params={"status": "canceled"}).data
    ended = stripe_client.v1.subscriptions.list(params={"status": "ended"}).data
    only_active = stripe_client.v1.subscriptions.list(params={"status": "active"}).data

    # Then canceled subscriptions show only when asked for
    assert [s.id for s in default] == [active.id]
    assert [s.id for s in everything] == [canceled.id, active.id]
    assert [s.id for s in only_canceled] == [canceled.id]
    assert [s.id for s in ended] == [canceled.id]
    assert [s.id for s in only_active] == [active.id]
    by_customer = stripe_client.v1.subscriptions.list(params={"customer": active.customer}).data
    assert [s.id for s in by_customer] == [active.id]


# ---- currencies ------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "amount"), [("jpy", 980), ("kwd", 4500)])
def test_subscription_minor_unit_amounts_round_trip(
    stripe_client: stripe.StripeClient, currency: str, amount: int
) -> None:
    # Given/When a subscription priced in a zero- or three-decimal currency is bought through Checkout
    price = recurring_price(stripe_client, amount, currency)
    session, sub = subscribe_via_checkout(stripe_client, price)

    # Then each amount is the integer the price was created with
    assert (price.unit_amount, price.currency) == (amount, currency)
    assert (session.amount_total, session.currency) == (amount, currency)
    assert sub.currency == currency
    invoice = stripe_client.v1.invoices.retrieve(session.invoice)
    assert (invoice.amount_paid, invoice.currency) == (amount, currency)
    charge = paying_charge(stripe_client, invoice.id)
    assert (charge.amount, charge.currency) == (amount, currency)
