"""Payment flows driven through the official SDK: customers, payment intents, charges, refunds, Checkout.

Every call goes through `stripe.StripeClient` exactly as the integration makes it; only the clock is
moved through the emulator's control API.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from local.stripe_emulator.control_client import EmulatorControl

# ---- helpers ---------------------------------------------------------------------------------


def pay(client: stripe.StripeClient, amount: int = 1000, currency: str = "usd", **params: Any) -> stripe.PaymentIntent:
    """A PaymentIntent confirmed at once with a card that succeeds (unless `payment_method` says otherwise)."""
    params = {"payment_method": "pm_card_visa", **params}
    return client.v1.payment_intents.create(params={"amount": amount, "currency": currency, "confirm": True, **params})


def charge_of(client: stripe.StripeClient, pi: stripe.PaymentIntent) -> stripe.Charge:
    assert isinstance(pi.latest_charge, str)
    return client.v1.charges.retrieve(pi.latest_charge)


def refund(client: stripe.StripeClient, **params: Any) -> stripe.Refund:
    return client.v1.refunds.create(params=params)


def events(client: stripe.StripeClient, event_type: str | None = None) -> list[stripe.Event]:
    """The account's events, oldest first (the API lists newest first)."""
    params: dict[str, Any] = {"limit": 100}
    if event_type is not None:
        params["type"] = event_type
    return list(reversed(client.v1.events.list(params=params).data))


def event_types(client: stripe.StripeClient) -> list[str]:
    return [event.type for event in events(client)]


def objects_of(client: stripe.StripeClient, event_type: str, object_id: str) -> list[dict[str, Any]]:
    """The `data.object` payloads (as plain dicts) of the `event_type` events about `object_id`, oldest first."""
    payloads = [event.data.object for event in events(client, event_type)]
    return [obj.to_dict() for obj in payloads if obj["id"] == object_id]


def payment_session(client: stripe.StripeClient, amount: int = 2500, **params: Any) -> stripe.checkout.Session:
    """A payment-mode Checkout Session for one `price_data` line item, as Ripples' merchants create it."""
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://shop.example/thanks",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {"currency": "usd", "unit_amount": amount, "product_data": {"name": "T-shirt"}},
                }
            ],
            **params,
        }
    )


def complete(client: stripe.StripeClient, session_id: str, action: str = "complete", **params: Any) -> Any:
    """The customer pays on Checkout's page (test helper): `complete` or `async_payment_succeed`."""
    resp = client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session_id}/{action}", **params)
    return client.deserialize(resp, api_mode="V1")


def is_subsequence(expected: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(item in remaining for item in expected)


# ---- customers -------------------------------------------------------------------------------


def test_customer_create_retrieve_and_update_merges_metadata(stripe_client: stripe.StripeClient) -> None:
    # Given a customer with two metadata keys
    created = stripe_client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"plan": "pro", "source": "ads"}}
    )

    # When metadata is updated: one key changed, one added, one emptied
    updated = stripe_client.v1.customers.update(
        created.id, params={"name": "Ada Lovelace", "metadata": {"plan": "team", "seats": "3", "source": ""}}
    )

    # Then keys merge, the emptied key is gone, and a retrieve shows the same state
    assert updated.name == "Ada Lovelace"
    assert updated.metadata.to_dict() == {"plan": "team", "seats": "3"}
    fetched = stripe_client.v1.customers.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.email == "ada@example.com"
    assert fetched.metadata.to_dict() == {"plan": "team", "seats": "3"}
    update_events = objects_of(stripe_client, "customer.updated", created.id)
    assert len(update_events) == 1


def test_customer_list_filters_by_email(stripe_client: stripe.StripeClient) -> None:
    # Given three customers, two sharing an email
    first = stripe_client.v1.customers.create(params={"email": "shared@example.com"})
    stripe_client.v1.customers.create(params={"email": "other@example.com"})
    second = stripe_client.v1.customers.create(params={"email": "shared@example.com"})

    # When listing by that email
    listed = stripe_client.v1.customers.list(params={"email": "shared@example.com"})

    # Then exactly those two come back, newest first
    assert [c.id for c in listed.data] == [second.id, first.id]
    assert listed.has_more is False


def test_customer_retrieve_unknown_is_invalid_request(stripe_client: stripe.StripeClient) -> None:
    # Given/When retrieving a customer that does not exist / Then Stripe's 404 error is raised
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.customers.retrieve("cus_doesnotexist")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"


# ---- payment intents -------------------------------------------------------------------------


def test_confirmed_payment_intent_succeeds_with_captured_charge(stripe_client: stripe.StripeClient) -> None:
    # Given a customer
    customer = stripe_client.v1.customers.create(params={"email": "buyer@example.com"})

    # When a PaymentIntent is created and confirmed with a card that succeeds
    pi = pay(stripe_client, 4200, customer=customer.id, metadata={"order": "42"})

    # Then it succeeded with a succeeded, captured charge whose balance transaction is filled afterwards
    assert pi.status == "succeeded"
    assert pi.amount_received == 4200
    charge = charge_of(stripe_client, pi)
    assert charge.status == "succeeded"
    assert charge.paid is True
    assert charge.captured is True
    assert charge.amount == charge.amount_captured == 4200
    assert charge.amount_refunded == 0
    assert charge.refunded is False
    assert charge.customer == customer.id
    assert charge.payment_intent == pi.id
    assert charge.currency == "usd"
    assert charge.metadata.to_dict() == {"order": "42"}
    assert isinstance(charge.balance_transaction, str)
    assert charge.balance_transaction.startswith("txn_")
    # ... and the charge.succeeded event came before the balance transaction (charge.updated)
    succeeded = objects_of(stripe_client, "charge.succeeded", charge.id)
    updated = events(stripe_client, "charge.updated")
    assert succeeded[0]["balance_transaction"] is None
    assert updated[-1].data.object["balance_transaction"] == charge.balance_transaction
    assert updated[-1].data.previous_attributes.to_dict() == {"balance_transaction": None}


def test_declined_card_raises_card_error_and_leaves_failed_charge(stripe_client: stripe.StripeClient) -> None:
    # Given/When a PaymentIntent is confirmed with a card that is declined
    with pytest.raises(stripe.CardError) as raised:
        pay(stripe_client, 1500, payment_method="pm_card_chargeDeclined")

    # Then the error is card_declined and names the payment intent
    error = raised.value
    assert error.code == "card_declined"
    assert error.http_status == 402
    assert error.error is not None
    pi_id = error.error.payment_intent["id"]
    assert error.error.payment_intent["status"] == "requires_payment_method"
    # ... and a failed charge is listed for that payment intent
    charges = stripe_client.v1.charges.list(params={"payment_intent": pi_id}).data
    assert len(charges) == 1
    failed = charges[0]
    assert failed.status == "failed"
    assert failed.paid is False
    assert failed.captured is False
    assert failed.amount_captured == 0
    assert failed.failure_code == "card_declined"
    assert failed.balance_transaction is None
    pi = stripe_client.v1.payment_intents.retrieve(pi_id)
    assert pi.latest_charge == failed.id
    assert pi.last_payment_error is not None
    assert pi.last_payment_error.code == "card_declined"
    assert [e.type for e in events(stripe_client)][-2:] == ["charge.failed", "payment_intent.payment_failed"]


def test_payment_intent_confirmed_later(stripe_client: stripe.StripeClient) -> None:
    # Given a PaymentIntent created without a payment method
    pi = stripe_client.v1.payment_intents.create(params={"amount": 800, "currency": "eur"})
    assert pi.status == "requires_payment_method"
    assert pi.latest_charge is None

    # When it is confirmed with a card
    confirmed = stripe_client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_mastercard"})

    # Then it succeeded with a captured charge paid by that card brand
    assert confirmed.status == "succeeded"
    charge = charge_of(stripe_client, confirmed)
    assert charge.amount_captured == 800
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.brand == "mastercard"
    assert stripe_client.v1.payment_intents.list().data[0].id == pi.id


def test_manual_capture_captures_the_full_amount(stripe_client: stripe.StripeClient) -> None:
    # Given an authorised, uncaptured payment
    pi = pay(stripe_client, 3000, capture_method="manual")
    assert pi.status == "requires_capture"
    assert pi.amount_capturable == 3000
    authorised = charge_of(stripe_client, pi)
    assert authorised.status == "succeeded"
    assert authorised.captured is False
    assert authorised.amount_captured == 0
    assert authorised.balance_transaction is None

    # When it is captured in full
    captured_pi = stripe_client.v1.payment_intents.capture(pi.id)

    # Then the payment succeeded and the charge is captured, with nothing released
    assert captured_pi.status == "succeeded"
    assert captured_pi.amount_received == 3000
    assert captured_pi.amount_capturable == 0
    charge = charge_of(stripe_client, captured_pi)
    assert charge.captured is True
    assert charge.amount_captured == 3000
    assert charge.amount_refunded == 0
    assert charge.refunded is False
    assert charge.balance_transaction is not None
    # ... and charge.succeeded (uncaptured) was followed by charge.captured
    assert objects_of(stripe_client, "charge.succeeded", charge.id)[0]["captured"] is False
    captured_events = events(stripe_client, "charge.captured")
    assert len(captured_events) == 1
    assert captured_events[0].data.object["id"] == charge.id
    assert captured_events[0].data.object["captured"] is True
    assert captured_events[0].data.object["amount_captured"] == 3000


def test_canceling_an_authorisation_releases_it_as_refunded(stripe_client: stripe.StripeClient) -> None:
    # Given an authorised, uncaptured payment
    pi = pay(stripe_client, 1800, capture_method="manual")
    # When it is canceled instead of captured
    canceled = stripe_client.v1.payment_intents.cancel(pi.id)
    # Then nothing was ever captured and the whole authorisation shows as refunded
    assert canceled.status == "canceled"
    charge = charge_of(stripe_client, canceled)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (False, 0, 1800, True)
    (refunded_event,) = events(stripe_client, "charge.refunded")
    assert refunded_event.data.object["amount_refunded"] == 1800
    assert refunded_event.data.previous_attributes.to_dict() == {"amount_refunded": 0, "refunded": False}


def test_partial_capture_releases_the_remainder_as_refunded(stripe_client: stripe.StripeClient) -> None:
    # Given an authorised payment of 10.00
    pi = pay(stripe_client, 1000, capture_method="manual")

    # When only 6.00 is captured
    captured_pi = stripe_client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 600})

    # Then 6.00 is received, and the released 4.00 shows as refunded on the charge
    assert captured_pi.status == "succeeded"
    assert captured_pi.amount_received == 600
    charge = charge_of(stripe_client, captured_pi)
    assert charge.amount == 1000
    assert charge.amount_captured == 600
    assert charge.amount_refunded == 400
    assert charge.refunded is False
    captured_event = objects_of(stripe_client, "charge.captured", charge.id)
    assert [(c["amount_captured"], c["amount_refunded"]) for c in captured_event] == [(600, 400)]
    # ... and only the captured part can still be refunded
    with pytest.raises(stripe.InvalidRequestError):
        refund(stripe_client, charge=charge.id, amount=601)
    refund(stripe_client, charge=charge.id)
    assert charge_of(stripe_client, captured_pi).amount_refunded == 1000
    assert charge_of(stripe_client, captured_pi).refunded is True


def test_capture_of_an_automatic_payment_is_refused(stripe_client: stripe.StripeClient) -> None:
    # Given a payment that was captured automatically
    pi = pay(stripe_client)

    # When/Then capturing it again fails
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.payment_intents.capture(pi.id)
    assert raised.value.code == "payment_intent_unexpected_state"


# ---- charges ---------------------------------------------------------------------------------


def test_charges_list_filters_by_customer_payment_intent_and_created(
    stripe_client: stripe.StripeClient, control: EmulatorControl
) -> None:
    # Given two charges of one customer, one of another, the last one created 100 s later
    alice = stripe_client.v1.customers.create(params={"email": "alice@example.com"})
    bob = stripe_client.v1.customers.create(params={"email": "bob@example.com"})
    a1 = charge_of(stripe_client, pay(stripe_client, 100, customer=alice.id))
    b1 = charge_of(stripe_client, pay(stripe_client, 200, customer=bob.id))
    control.advance_clock(100)
    a2_pi = pay(stripe_client, 300, customer=alice.id)
    a2 = charge_of(stripe_client, a2_pi)

    # When listing with each filter
    by_customer = stripe_client.v1.charges.list(params={"customer": alice.id}).data
    by_pi = stripe_client.v1.charges.list(params={"payment_intent": a2_pi.id}).data
    since = stripe_client.v1.charges.list(params={"created": {"gte": a2.created}}).data
    before = stripe_client.v1.charges.list(params={"created": {"lt": a2.created}}).data

    # Then each returns the matching charges, newest first
    assert [c.id for c in by_customer] == [a2.id, a1.id]
    assert [c.id for c in by_pi] == [a2.id]
    assert [c.id for c in since] == [a2.id]
    assert [c.id for c in before] == [b1.id, a1.id]
    assert stripe_client.v1.charges.retrieve(b1.id).amount == 200


def test_charges_list_pages_with_starting_after(stripe_client: stripe.StripeClient) -> None:
    # Given three charges
    ids = [charge_of(stripe_client, pay(stripe_client, amount)).id for amount in (100, 200, 300)]

    # When paging two at a time
    first = stripe_client.v1.charges.list(params={"limit": 2})
    second = stripe_client.v1.charges.list(params={"limit": 2, "starting_after": first.data[-1].id})

    # Then the pages cover all three, newest first, without overlap
    assert [c.id for c in first.data] == ids[:0:-1]
    assert first.has_more is True
    assert [c.id for c in second.data] == [ids[0]]
    assert second.has_more is False


# ---- refunds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["charge", "payment_intent"])
def test_partial_then_full_refund_accumulates(stripe_client: stripe.StripeClient, target: str) -> None:
    # Given a succeeded payment of 50.00
    pi = pay(stripe_client, 5000)
    charge_id = charge_of(stripe_client, pi).id
    by = {"charge": charge_id} if target == "charge" else {"payment_intent": pi.id}

    # When 20.00 is refunded
    first = refund(stripe_client, amount=2000, **by)

    # Then the charge is partially refunded
    partial = stripe_client.v1.charges.retrieve(charge_id)
    assert first.status == "succeeded"
    assert first.amount == 2000
    assert first.charge == charge_id
    assert first.payment_intent == pi.id
    assert partial.amount_refunded == 2000
    assert partial.refunded is False

    # When the rest is refunded (no amount: whatever remains)
    second = refund(stripe_client, **by)

    # Then the charge is fully refunded, cumulatively
    full = stripe_client.v1.charges.retrieve(charge_id)
    assert second.amount == 3000
    assert full.amount_refunded == 5000
    assert full.refunded is True
    # ... each refund produced a charge.refunded event with the cumulative amount
    refunded_events = objects_of(stripe_client, "charge.refunded", charge_id)
    assert [(c["amount_refunded"], c["refunded"]) for c in refunded_events] == [(2000, False), (5000, True)]
    # ... and refund.created carries each Refund
    created = [e.data.object["id"] for e in events(stripe_client, "refund.created")]
    assert created == [first.id, second.id]
    listed = stripe_client.v1.refunds.list(params={"charge": charge_id}).data
    assert [r.id for r in listed] == [second.id, first.id]
    # ... and nothing more can be refunded
    with pytest.raises(stripe.InvalidRequestError) as raised:
        refund(stripe_client, amount=1, **by)
    assert raised.value.code == "charge_already_refunded"


def test_over_refund_is_refused(stripe_client: stripe.StripeClient) -> None:
    # Given a payment of 10.00 with 7.00 refunded
    charge_id = charge_of(stripe_client, pay(stripe_client, 1000)).id
    refund(stripe_client, charge=charge_id, amount=700)

    # When refunding 3.01 more / Then the refund is refused and nothing changes
    with pytest.raises(stripe.InvalidRequestError) as raised:
        refund(stripe_client, charge=charge_id, amount=301)
    assert raised.value.code == "amount_too_large"
    assert raised.value.param == "amount"
    charge = stripe_client.v1.charges.retrieve(charge_id)
    assert charge.amount_refunded == 700
    assert len(stripe_client.v1.refunds.list(params={"charge": charge_id}).data) == 1


def test_charge_refunds_are_included_only_when_expanded(stripe_client: stripe.StripeClient) -> None:
    # Given a charge with one refund
    charge_id = charge_of(stripe_client, pay(stripe_client, 1000)).id
    re = refund(stripe_client, charge=charge_id, amount=250)

    # When retrieving it plainly and with expand=["refunds"]
    plain = stripe_client.v1.charges.retrieve(charge_id)
    expanded = stripe_client.v1.charges.retrieve(charge_id, params={"expand": ["refunds"]})

    # Then only the expanded one carries the refunds list
    assert "refunds" not in plain
    assert expanded.refunds is not None
    assert [r.id for r in expanded.refunds.data] == [re.id]
    assert expanded.refunds.data[0].amount == 250
    # ... and a charge.refunded payload has no refunds list either
    assert "refunds" not in objects_of(stripe_client, "charge.refunded", charge_id)[0]


# ---- Checkout, payment mode ------------------------------------------------------------------


def test_checkout_payment_completes_with_a_paid_payment_intent(stripe_client: stripe.StripeClient) -> None:
    # Given an open payment-mode session tagged with the Ripples visitor id
    session = payment_session(
        stripe_client,
        2500,
        metadata={"ripples_visitor_id": "v_123"},
        client_reference_id="ref-9",
        customer_email="shopper@example.com",
    )
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.payment_intent is None

    # When the customer pays
    completed = complete(stripe_client, session.id, email="shopper@example.com")

    # Then the session is complete and paid, linked to a succeeded payment intent
    assert completed.status == "complete"
    assert completed.payment_status == "paid"
    assert completed.amount_total == 2500
    assert completed.metadata.to_dict() == {"ripples_visitor_id": "v_123"}
    assert completed.client_reference_id == "ref-9"
    assert completed.customer_details.email == "shopper@example.com"
    pi_id = completed.payment_intent
    assert isinstance(pi_id, str)
    pi = stripe_client.v1.payment_intents.retrieve(pi_id)
    assert pi.status == "succeeded"
    assert pi.amount == 2500
    charge = charge_of(stripe_client, pi)
    assert charge.status == "succeeded"
    assert charge.billing_details.email == "shopper@example.com"
    # ... Checkout metadata is not copied to the payment intent or charge
    assert pi.metadata.to_dict() == {}
    assert charge.metadata.to_dict() == {}
    # ... the session is found from its payment intent and retrieves in the same state
    found = stripe_client.v1.checkout.sessions.list(params={"payment_intent": pi_id}).data
    assert [s.id for s in found] == [session.id]
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_checkout_payment_event_order(stripe_client: stripe.StripeClient) -> None:
    # Given an open payment-mode session
    session = payment_session(stripe_client, metadata={"ripples_visitor_id": "v_1"})

    # When the customer pays
    complete(stripe_client, session.id, email="x@example.com")

    # Then the events are those of a one-time Checkout payment, in the order Stripe usually sends them
    payment_events = [t for t in event_types(stripe_client) if not t.startswith(("product.", "price."))]
    assert payment_events == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
        "charge.updated",
    ]
    # ... and events.list itself answers newest first
    newest_first = stripe_client.v1.events.list(params={"limit": 2}).data
    assert [e.type for e in newest_first] == ["charge.updated", "checkout.session.completed"]
    assert newest_first[0].created >= newest_first[1].created
    completed_event = events(stripe_client, "checkout.session.completed")[0]
    assert completed_event.data.object["metadata"].to_dict() == {"ripples_visitor_id": "v_1"}
    assert completed_event.data.object["payment_status"] == "paid"


def test_checkout_payment_intent_data_metadata_reaches_payment_intent_and_charge(
    stripe_client: stripe.StripeClient,
) -> None:
    # Given a session whose merchant copies the visitor id into payment_intent_data.metadata
    session = payment_session(
        stripe_client,
        metadata={"ripples_visitor_id": "v_5"},
        payment_intent_data={"metadata": {"ripples_visitor_id": "v_5"}},
    )

    # When the customer pays
    completed = complete(stripe_client, session.id)

    # Then the payment intent and its charge carry that metadata
    pi = stripe_client.v1.payment_intents.retrieve(completed.payment_intent)
    assert pi.metadata.to_dict() == {"ripples_visitor_id": "v_5"}
    assert charge_of(stripe_client, pi).metadata.to_dict() == {"ripples_visitor_id": "v_5"}


def test_checkout_session_cannot_complete_twice(stripe_client: stripe.StripeClient) -> None:
    # Given a completed session
    session = payment_session(stripe_client)
    complete(stripe_client, session.id)

    # When/Then completing it again is refused
    with pytest.raises(stripe.InvalidRequestError):
        complete(stripe_client, session.id)


def test_checkout_delayed_payment_completes_unpaid_then_succeeds(stripe_client: stripe.StripeClient) -> None:
    # Given a session paid with a delayed payment method
    session = payment_session(stripe_client, 1800, metadata={"ripples_visitor_id": "v_9"})
    completed = complete(stripe_client, session.id, email="late@example.com", delayed="true")

    # Then it is complete but unpaid, with a processing payment intent and a pending charge
    assert completed.status == "complete"
    assert completed.payment_status == "unpaid"
    pi = stripe_client.v1.payment_intents.retrieve(completed.payment_intent)
    assert pi.status == "processing"
    pending = charge_of(stripe_client, pi)
    assert pending.status == "pending"
    assert pending.balance_transaction is None

    # When the payment settles
    settled = complete(stripe_client, session.id, "async_payment_succeed")

    # Then the session is paid, the charge succeeded, and async_payment_succeeded was sent
    assert settled.payment_status == "paid"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    charge = stripe_client.v1.charges.retrieve(pending.id)
    assert charge.status == "succeeded"
    assert charge.captured is True
    assert charge.amount_captured == 1800
    assert charge.balance_transaction is not None
    types = event_types(stripe_client)
    assert is_subsequence(
        [
            "payment_intent.created",
            "charge.pending",
            "payment_intent.processing",
            "checkout.session.completed",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.async_payment_succeeded",
            "charge.updated",
        ],
        types,
    )
    async_event = events(stripe_client, "checkout.session.async_payment_succeeded")
    assert [(e.data.object["id"], e.data.object["payment_status"]) for e in async_event] == [(session.id, "paid")]


# ---- currencies ------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "amount"), [("jpy", 5000), ("kwd", 12345), ("usd", 1999)])
def test_minor_unit_amounts_round_trip_unchanged(
    stripe_client: stripe.StripeClient, currency: str, amount: int
) -> None:
    # Given/When a payment and a Checkout payment in a zero-, three- or two-decimal currency
    pi = pay(stripe_client, amount, currency.upper())
    product = stripe_client.v1.products.create(params={"name": "Widget"})
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {"quantity": 2, "price_data": {"currency": currency, "unit_amount": amount, "product": product.id}}
            ],
        }
    )
    completed = complete(stripe_client, session.id)

    # Then every amount is the integer sent, in the lowercase currency
    charge = charge_of(stripe_client, pi)
    assert (pi.amount, pi.currency) == (amount, currency)
    assert (charge.amount, charge.amount_captured, charge.currency) == (amount, amount, currency)
    assert (session.amount_total, session.currency) == (2 * amount, currency)
    checkout_pi = stripe_client.v1.payment_intents.retrieve(completed.payment_intent)
    assert (checkout_pi.amount, checkout_pi.currency) == (2 * amount, currency)
    refund(stripe_client, charge=charge.id, amount=amount - 1)
    assert stripe_client.v1.charges.retrieve(charge.id).amount_refunded == amount - 1
