"""The Stripe webhook receiver: signatures, errors, dedup and charge.succeeded booking (rules 1, 2, 4).

Events are real emulator events (made by paying through the SDK), signed here with the endpoint's
secret exactly as Stripe signs, and handed to the handler as API Gateway would.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest
import stripe
from botocore.stub import Stubber

from functions.stripe_webhook.app import lambda_handler
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.webhooks import sign
from shared import secrets
from shared.integrations.connect import connect
from shared.observability import logger
from shared.revenue import keys
from shared.settings import get_settings
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import raw, revenue_checks
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv
from tests.revenue_checks import assert_invariant, dynamodb_hook, ledger, scan

PROJECT = "shop-1"
ROUTE = "/webhooks/stripe/{project_id}"


@dataclass
class Connected:
    account: EmulatorAccount
    client: stripe.StripeClient  # the merchant's own (secret key) client
    webhook_secret: str


@pytest.fixture
def connected(stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount) -> Iterator[Connected]:
    """A project connected to a fresh emulator account; the ledger/total invariant is checked after
    every test that uses it (domain rule 4)."""
    control.delivery(account.id, retries=0)  # hooks.ripples.test is not reachable from here
    connect(PROJECT, account.restricted_key)
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=f"{aws.secrets_prefix}projects/{PROJECT}")[
            "SecretString"
        ]
    )["webhook_secret"]
    yield Connected(account, control.client(account.secret_key), secret)
    assert_invariant(aws.revenue_table)


def given_visitor(visitor_id: str, email: str | None = None, set_at: str = "2026-01-01T00:00:00.000000Z") -> None:
    """A visitor saved by the visitor service, identified with `email` at `set_at`."""
    at = datetime.fromisoformat(set_at.replace("Z", "+00:00"))
    service = VisitorService(DynamoVisitorStore.default(), clock=lambda: at)
    service.save(PROJECT, visitor_id, VisitorChanges(email=email) if email else VisitorChanges())


def event_of(client: stripe.StripeClient, event_type: str, object_id: str) -> bytes:
    """The raw JSON of the latest `event_type` event about `object_id`, as Stripe would send it."""
    for event in client.v1.events.list(params={"type": event_type, "limit": 100}).data:
        if event.data.object["id"] == object_id:
            return client.raw_request("get", f"/v1/events/{event.id}").body.encode()
    raise AssertionError(f"no {event_type} for {object_id}")


def deliver(
    body: bytes, secret: str, *, timestamp: int | None = None, project: str = PROJECT, header: str | None = None
) -> tuple[int, Any]:
    signature = header if header is not None else sign(body, secret, timestamp or int(time.time()))
    headers = {"Stripe-Signature": signature} if signature else {}
    event = http_event("POST", ROUTE, {"project_id": project}, body=body.decode(), headers=headers)
    response = lambda_handler(event, _Context())
    return response["statusCode"], response_json(response)


class _Context:
    function_name = "stripe-webhook"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stripe-webhook"
    aws_request_id = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def pay(
    client: stripe.StripeClient, amount: int, customer: str | None = None, currency: str = "usd", **extra: Any
) -> str:
    params: dict[str, Any] = {"amount": amount, "currency": currency, "confirm": True, "payment_method": "pm_card_visa"}
    if customer:
        params["customer"] = customer
    params.update(extra)
    pi = client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert isinstance(pi.latest_charge, str)
    return pi.latest_charge


def visitor_item(visitor_id: str) -> dict[str, Any]:
    item = raw.client().get_item(TableName=get_settings().revenue_table, Key=keys.visitor(PROJECT, visitor_id))["Item"]
    return raw.from_item(item)


@pytest.fixture
def dynamodb_calls() -> Iterator[Counter[str]]:
    """DynamoDB requests by operation, counted with botocore's event hooks."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    with dynamodb_hook("before-call.dynamodb", count):
        yield calls


# ---- booking --------------------------------------------------------------------------------


def test_email_then_customer_link_attributes_charges(
    connected: Connected, control: EmulatorControl, aws: AwsEnv, dynamodb_calls: Counter[str]
) -> None:
    # Given a visitor identified with an email and a Stripe customer with that email (other case)
    given_visitor("v1", "Buyer@Example.com")
    customer = connected.client.v1.customers.create(params={"email": "buyer@example.COM "})
    # When the customer's first charge arrives
    first = pay(connected.client, 2500, customer.id)
    status, body = deliver(event_of(connected.client, "charge.succeeded", first), connected.webhook_secret)
    # Then it is booked to the visitor by email (tier 2) and the customer is linked
    assert (status, body) == (200, {"received": True, "result": "booked"})
    assert ledger(aws.revenue_table, first)["tier"] == 2  # type: ignore[index]
    visitor = visitor_item("v1")
    assert revenue_checks.totals_of(visitor) == {"usd": 2500}
    assert revenue_checks.linked_customers_of(visitor) == (customer.id,)
    # When a second charge of the same customer arrives
    control.reset_stats(connected.account.id)
    dynamodb_calls.clear()
    # a minute later: within one second, charges are ordered by their random ids (rule 2's tie-break)
    control.advance_clock(60)
    try:
        second = pay(connected.client, 1500, customer.id)
    finally:
        control.advance_clock(-60)
    control.reset_stats(connected.account.id)
    status, body = deliver(event_of(connected.client, "charge.succeeded", second), connected.webhook_secret)
    # Then it follows the link (tier 3) with no Stripe request and at most 4 DynamoDB requests
    assert body["result"] == "booked"
    assert ledger(aws.revenue_table, second)["tier"] == 3  # type: ignore[index]
    assert revenue_checks.totals_of(visitor_item("v1")) == {"usd": 4000}
    assert control.stats(connected.account.id) == {"GET /v1/events": 1, "GET /v1/events/{id}": 1}
    assert sum(dynamodb_calls.values()) <= 4, dynamodb_calls
    assert_invariant(aws.revenue_table)


def test_the_timeline_gets_a_charge_succeeded_event(connected: Connected, aws: AwsEnv) -> None:
    given_visitor("v1", "t@example.com")
    charge = pay(connected.client, 990, receipt_email="T@example.com")
    deliver(event_of(connected.client, "charge.succeeded", charge), connected.webhook_secret)
    (event,) = [i for i in scan(aws.revenue_table) if i["sk"].startswith(keys.TIMELINE_PREFIX)]
    assert event["type"] == "Charge Succeeded"
    assert (event["amount"], event["currency"], event["revenue"]) == (990, "usd", 990)
    assert (event["stripe_object_id"], event["attribution_tier"]) == (charge, 2)
    assert event["pk"] == keys.visitor_pk(PROJECT, "v1")


def test_the_visitor_identified_first_wins(connected: Connected, aws: AwsEnv) -> None:
    given_visitor("first", "shared@example.com", set_at="2026-01-01T00:00:00.000000Z")
    given_visitor("second", "shared@example.com", set_at="2026-02-01T00:00:00.000000Z")  # head stays "first"
    charge = pay(connected.client, 700, receipt_email="shared@example.com")
    deliver(event_of(connected.client, "charge.succeeded", charge), connected.webhook_secret)
    assert revenue_checks.totals_of(visitor_item("first")) == {"usd": 700}
    assert revenue_checks.totals_of(visitor_item("second")) == {}


def test_an_unmatched_charge_is_unattributed_with_its_hints(
    connected: Connected, control: EmulatorControl, aws: AwsEnv
) -> None:
    # Given a customer whose email no visitor has
    customer = connected.client.v1.customers.create(params={"email": "stranger@example.com"})
    charge = pay(connected.client, 4200, customer.id, currency="jpy")
    _status, body = deliver(event_of(connected.client, "charge.succeeded", charge), connected.webhook_secret)
    # Then it is booked unattributed, keeping the customer and email for later
    assert body["result"] == "booked"
    entry = ledger(aws.revenue_table, charge)
    assert entry is not None
    assert entry.get("visitor_id") is None
    assert entry["customer_id"] == customer.id
    (root,) = [i for i in scan(aws.revenue_table) if i["sk"] == keys.LINK]
    assert (root["email"], root.get("visitor_id")) == ("stranger@example.com", None)
    assert revenue_checks.unattributed_of(scan(aws.revenue_table)) == {"jpy": 4200}
    # And the customer's email is remembered: the next charge needs no Stripe request
    second = pay(connected.client, 100, customer.id, currency="jpy")
    body_second = event_of(connected.client, "charge.succeeded", second)
    control.reset_stats(connected.account.id)
    deliver(body_second, connected.webhook_secret)
    assert "GET /v1/customers/{id}" not in control.stats(connected.account.id)
    assert_invariant(aws.revenue_table)


def test_duplicates_and_retries_count_once(connected: Connected, aws: AwsEnv) -> None:
    given_visitor("v1", "dup@example.com")
    charge = pay(connected.client, 1234, receipt_email="dup@example.com")
    body = event_of(connected.client, "charge.succeeded", charge)
    results = [deliver(body, connected.webhook_secret)[1]["result"] for _ in range(3)]
    assert results == ["booked", "duplicate", "duplicate"]
    assert revenue_checks.totals_of(visitor_item("v1")) == {"usd": 1234}
    # A second Event object for the same change (Stripe may create one) books nothing either
    twin = json.loads(body)
    twin["id"] = "evt_twin"
    assert deliver(json.dumps(twin).encode(), connected.webhook_secret)[1]["result"] == "already_booked"
    assert revenue_checks.totals_of(visitor_item("v1")) == {"usd": 1234}
    assert_invariant(aws.revenue_table)


def test_uncaptured_charges_book_nothing(connected: Connected, aws: AwsEnv) -> None:
    charge = pay(connected.client, 5000, capture_method="manual")
    status, body = deliver(event_of(connected.client, "charge.succeeded", charge), connected.webhook_secret)
    assert (status, body["result"]) == (200, "not_revenue")
    assert ledger(aws.revenue_table, charge) is None


def test_other_event_types_are_acknowledged(connected: Connected) -> None:
    customer = connected.client.v1.customers.create(params={"email": "x@example.com"})
    status, body = deliver(event_of(connected.client, "customer.created", customer.id), connected.webhook_secret)
    assert (status, body["result"]) == (200, "ignored")


def test_a_livemode_event_for_a_test_key_is_ignored(connected: Connected, aws: AwsEnv) -> None:
    charge = pay(connected.client, 100)
    event = json.loads(event_of(connected.client, "charge.succeeded", charge))
    event["livemode"] = True
    status, body = deliver(json.dumps(event).encode(), connected.webhook_secret)
    assert (status, body["result"]) == (200, "ignored")
    assert ledger(aws.revenue_table, charge) is None


def test_a_livemode_subscription_checkout_for_a_test_key_is_ignored_before_asking_stripe(
    connected: Connected, control: EmulatorControl
) -> None:
    # Given a subscription-mode Checkout completed (its first invoice's payments are asked of Stripe)
    price = connected.client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "P"},
        }
    )
    session = connected.client.v1.checkout.sessions.create(
        params={"mode": "subscription", "line_items": [{"price": price.id, "quantity": 1}], "customer_email": "a@b.co"}
    )
    connected.client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session.id}/complete", email="a@b.co")
    event = json.loads(event_of(connected.client, "checkout.session.completed", session.id))
    # When it arrives marked livemode for this test-mode key
    event["livemode"] = True
    control.reset_stats(connected.account.id)
    status, body = deliver(json.dumps(event).encode(), connected.webhook_secret)
    # Then it is ignored without a Stripe request (never a 503 because Stripe was asked first)
    assert (status, body["result"]) == (200, "ignored")
    assert control.stats(connected.account.id) == {}


def test_a_secrets_manager_throttle_is_503_not_404(connected: Connected, a_charge_event: bytes) -> None:
    secrets.provider().clear_cache()
    with Stubber(secrets.client()) as stubber:
        stubber.add_client_error("get_secret_value", service_error_code="ThrottlingException", http_status_code=400)
        status, body = deliver(a_charge_event, connected.webhook_secret)
    assert (status, body["error"]["code"]) == (503, "service_unavailable")


# ---- refusals: nothing read or written ---------------------------------------------------------


@pytest.fixture
def a_charge_event(connected: Connected) -> bytes:
    return event_of(connected.client, "charge.succeeded", pay(connected.client, 800))


def test_tampered_bodies_are_refused(connected: Connected, a_charge_event: bytes, aws: AwsEnv) -> None:
    header = sign(a_charge_event, connected.webhook_secret, int(time.time()))
    tampered = a_charge_event.replace(b'"amount":800', b'"amount":80000')
    assert tampered != a_charge_event
    status, body = deliver(tampered, connected.webhook_secret, header=header)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")
    assert scan(aws.revenue_table) == []


@pytest.mark.parametrize(
    "header",
    ["", "t=1,v1=deadbeef", "garbage"],
)
def test_missing_or_malformed_signatures_are_refused(connected: Connected, a_charge_event: bytes, header: str) -> None:
    status, body = deliver(a_charge_event, connected.webhook_secret, header=header)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")


def test_wrong_secret_and_stale_timestamps_are_refused(connected: Connected, a_charge_event: bytes) -> None:
    assert deliver(a_charge_event, "whsec_" + "0" * 32)[0] == 400
    stale = int(time.time()) - 301
    status, body = deliver(a_charge_event, connected.webhook_secret, timestamp=stale)
    assert (status, body["error"]["code"]) == (400, "invalid_signature")


def test_a_signed_body_that_is_not_an_event_is_invalid_payload(connected: Connected) -> None:
    for body in (b"not json", b'{"object": "charge", "id": "ch_1"}'):
        status, answer = deliver(body, connected.webhook_secret)
        assert (status, answer["error"]["code"]) == (400, "invalid_payload")


def test_unknown_projects_are_404_and_bad_ids_400(connected: Connected, a_charge_event: bytes) -> None:
    assert deliver(a_charge_event, connected.webhook_secret, project="nobody")[1]["error"]["code"] == "not_found"
    assert (
        deliver(a_charge_event, connected.webhook_secret, project="bad%20id")[1]["error"]["code"] == "invalid_request"
    )


def test_bodies_over_one_mebibyte_are_413(connected: Connected) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    status, answer = deliver(body, connected.webhook_secret)
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")


def test_logs_carry_the_event_id_and_never_a_key_secret_or_body(connected: Connected) -> None:
    # Given the structured log lines of a booked delivery and of a refused one, as Lambda would print them
    given_visitor("v1", "logs@example.com")
    charge = pay(connected.client, 321, receipt_email="logs@example.com")
    body = event_of(connected.client, "charge.succeeded", charge)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(handler)
    try:
        deliver(body, connected.webhook_secret)
        deliver(body.replace(b"321", b"999"), connected.webhook_secret, header="t=1,v1=00")
    finally:
        std_logger.removeHandler(handler)
    # Then they name the event, and show no key, secret or payload
    logs = buffer.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]
    event_id = json.loads(body)["id"]
    assert any(line.get("correlation_id") == event_id and line["message"] == "charge booked" for line in lines)
    assert connected.account.restricted_key not in logs
    assert connected.webhook_secret not in logs
    assert "billing_details" not in logs
