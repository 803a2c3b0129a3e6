"""Webhook delivery: signed as Stripe signs, asynchronous, retried, and in the orders tests ask for."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from tests.conftest import Receiver


def make_endpoint(client: stripe.StripeClient, url: str, events: list[str]) -> tuple[str, str]:
    endpoint = client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": events})
    assert endpoint.secret is not None
    return endpoint.id, endpoint.secret


def pay(client: stripe.StripeClient, amount: int = 2500) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={"amount": amount, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
    )


def verified(body: bytes, headers: dict[str, str], secret: str) -> stripe.Event:
    return stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret, tolerance=300)


def originals(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in attempts if a["copy"] == "original"]


def test_events_are_delivered_signed_and_verifiable(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given an endpoint subscribed to charge.succeeded and payment_intent.succeeded
    _, secret = make_endpoint(stripe_client, receiver.url, ["charge.succeeded", "payment_intent.succeeded"])
    # When a payment succeeds
    pi = pay(stripe_client)
    control.wait_for_deliveries(account.id)
    # Then exactly the subscribed events arrive, in order, each passing Stripe's own verification
    events = [verified(r.body, r.headers, secret) for r in receiver.received]
    assert [e.type for e in events] == ["charge.succeeded", "payment_intent.succeeded"]
    charge = events[0].data.object
    assert charge["payment_intent"] == pi.id
    assert charge["amount_captured"] == 2500
    assert events[0].api_version == "2026-10-28.endive"
    assert receiver.received[0].headers["Content-Type"].startswith("application/json")
    # And the event API agrees on what was sent
    stored = stripe_client.v1.events.retrieve(events[0].id)
    assert stored.data.object["id"] == charge["id"]
    assert stored.pending_webhooks == 0


def test_a_tampered_body_or_wrong_secret_fails_verification(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given a delivered, signed event
    _, secret = make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    pay(stripe_client)
    control.wait_for_deliveries(account.id)
    (delivery,) = receiver.received
    # When its body is changed after signing, or checked with another secret
    tampered = delivery.body.replace(b'"amount": 2500', b'"amount": 250000')
    assert tampered != delivery.body
    # Then Stripe's verification refuses both
    with pytest.raises(stripe.SignatureVerificationError):
        verified(tampered, delivery.headers, secret)
    with pytest.raises(stripe.SignatureVerificationError):
        verified(delivery.body, delivery.headers, "whsec_" + "0" * 32)


def test_wildcard_endpoints_get_every_event_and_disabled_ones_none(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given one endpoint for every event and one disabled endpoint
    everything, _ = make_endpoint(stripe_client, receiver.url, ["*"])
    disabled, _ = make_endpoint(stripe_client, receiver.url, ["*"])
    stripe_client.v1.webhook_endpoints.update(disabled, params={"disabled": True})
    # When a payment succeeds
    pay(stripe_client)
    attempts = control.wait_for_deliveries(account.id)
    # Then all of its events reach the enabled endpoint only
    assert {a["endpoint"] for a in attempts} == {everything}
    assert [a["type"] for a in attempts] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.updated",
    ]


def test_a_failing_receiver_is_retried_with_backoff(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given a receiver that answers 500 twice before 200
    control.delivery(account.id, retries=3, retry_delays=[0.05, 0.1])
    _, secret = make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    receiver.statuses = [500, 503]
    # When a charge succeeds
    pay(stripe_client)
    attempts = control.wait_for_deliveries(account.id)
    # Then the same event is sent three times, the last one accepted, each signed afresh
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    bodies = {r.body for r in receiver.received}
    assert len(bodies) == 1
    for r in receiver.received:
        verified(r.body, r.headers, secret)
    event = stripe_client.v1.events.retrieve(attempts[0]["event_id"])
    assert event.pending_webhooks == 0


def test_an_unreachable_endpoint_is_given_up_after_the_retries(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given an endpoint nobody listens on
    control.delivery(account.id, retries=2, retry_delays=[0.01], timeout=1)
    make_endpoint(stripe_client, "http://127.0.0.1:9/nothing", ["charge.succeeded"])
    # When a charge succeeds
    pay(stripe_client)
    attempts = control.wait_for_deliveries(account.id)
    # Then the first try and two retries fail with a connection error, and the event stays pending
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(a["status"] is None and a["error"] for a in attempts)
    assert stripe_client.v1.events.retrieve(attempts[0]["event_id"]).pending_webhooks == 1


def test_copies_duplicates_and_a_tampered_copy(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given delivery of every event three times plus a tampered copy
    control.delivery(account.id, copies=3, tamper=True)
    _, secret = make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    # When a charge succeeds
    pay(stripe_client)
    control.wait_for_deliveries(account.id)
    # Then three identical verifiable copies and one that fails verification arrive
    good, bad = [], []
    for r in receiver.received:
        try:
            good.append(verified(r.body, r.headers, secret).id)
        except stripe.SignatureVerificationError:
            bad.append(json.loads(r.body))
    assert len(good) == 3
    assert len(set(good)) == 1
    assert len(bad) == 1
    assert bad[0]["id"] == good[0]
    assert bad[0]["data"]["object"]["amount"] != 2500


def test_duplicate_probability_one_sends_everything_twice(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    control.delivery(account.id, duplicate_probability=1.0)
    make_endpoint(stripe_client, receiver.url, ["charge.succeeded", "charge.updated"])
    pay(stripe_client)
    attempts = control.wait_for_deliveries(account.id)
    ids = [a["event_id"] for a in attempts]
    assert len(ids) == 4
    assert all(ids.count(i) == 2 for i in ids)
    assert sorted(a["copy"] for a in attempts) == ["duplicate", "duplicate", "original", "original"]


def test_shuffled_delivery_sends_every_event_once_in_another_order(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given shuffled delivery over windows of 20 events with a fixed seed
    control.delivery(account.id, order="shuffled", window=20, window_seconds=0.5, seed=7)
    make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    # When five payments succeed
    for amount in range(100, 600, 100):
        pay(stripe_client, amount)
    attempts = control.wait_for_deliveries(account.id)
    # Then each charge.succeeded arrives once, not in creation order
    created = [e.id for e in reversed(stripe_client.v1.events.list(params={"type": "charge.succeeded"}).data)]
    delivered = [a["event_id"] for a in attempts]
    assert sorted(delivered) == sorted(created)
    assert delivered != created


def test_signatures_use_the_emulator_clock_so_stale_deliveries_can_be_tested(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given the emulator's clock ten minutes behind
    _, secret = make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    control.advance_clock(-600)
    try:
        pay(stripe_client)
        control.wait_for_deliveries(account.id)
    finally:
        control.advance_clock(600)
    # Then the delivery is signed, but too old for a 300 s tolerance
    (delivery,) = receiver.received
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        verified(delivery.body, delivery.headers, secret)
    assert stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], secret, tolerance=900)


def test_event_payloads_are_snapshots_taken_when_the_event_happened(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given a charge refunded twice
    make_endpoint(stripe_client, receiver.url, ["charge.succeeded", "charge.refunded"])
    pi = pay(stripe_client, 1000)
    stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300})
    stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    control.wait_for_deliveries(account.id)
    # Then each event carries the charge as it was then: cumulative amount_refunded per refund
    states = [(r.event["type"], r.event["data"]["object"]["amount_refunded"]) for r in receiver.received]
    assert states == [("charge.succeeded", 0), ("charge.refunded", 300), ("charge.refunded", 1000)]
    last = receiver.received[-1].event["data"]
    assert last["object"]["refunded"] is True
    assert last["previous_attributes"] == {"amount_refunded": 300, "refunded": False}


def test_deleting_an_endpoint_stops_its_deliveries(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    endpoint, _ = make_endpoint(stripe_client, receiver.url, ["charge.succeeded"])
    stripe_client.v1.webhook_endpoints.delete(endpoint)
    pay(stripe_client)
    assert control.wait_for_deliveries(account.id) == []
    assert receiver.received == []
