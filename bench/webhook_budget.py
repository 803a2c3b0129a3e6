"""Request budget of the webhook: DynamoDB and Stripe requests per event type, counted, not guessed.

DynamoDB requests are counted with botocore's event hooks on the functions' own client; Stripe
requests with the emulator's per-account counters. moto runs in-process (with the transaction patch)
and the emulator in a thread, so the figures are request counts, not latencies of real services.
Run: `make bench-webhook`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ripples-bench")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "RipplesBench")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

import boto3
import stripe
from moto import mock_aws

from local.moto_patches import patch_moto_transactions
from local.stack.functions import merged_environment, read_functions
from local.stack.resources import create_resources
from local.stack.runner import local_parameters
from local.stack.template import Template, load_template
from local.stripe_emulator.control_client import EmulatorControl
from local.stripe_emulator.server import start
from local.stripe_emulator.webhooks import sign

PROJECT = "bench"


@contextmanager
def moto_stack(stripe_api_base: str) -> Iterator[None]:
    """moto with the template's tables and the functions' environment (as the tests set it up)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    patch_moto_transactions()
    with mock_aws():
        data = load_template()
        parameters = local_parameters(
            data, public_base_url="https://hooks.ripples.bench", stripe_api_base=stripe_api_base, overrides={}
        )
        template = Template(data, parameters, stack_name="bench")
        create_resources(template, boto3.client("dynamodb"), boto3.client("sqs"))
        os.environ.update(merged_environment(read_functions(template)))
        os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")  # quiet output
        yield


# The request budget (issue 7): DynamoDB requests at most, and no Stripe request, for an event about
# a customer whose facts and link are known. A first event of a customer is not budgeted (it fetches
# the customer from Stripe once), nor a session that establishes or moves a link (it re-resolves
# every charge of the customer).
BUDGET = {
    "charge of a linked customer (warm)": 3,
    "same event again (duplicate)": 1,
    "partial refund": 3,
    "checkout of a linked customer": 4,
    "renewal": 4,
}
Row = tuple[str, str, "Counter[str]", dict[str, int], float]


def over_budget(rows: list[Row]) -> list[str]:
    """Every delivery that exceeded its budget, as a readable line (empty: within budget)."""
    problems = []
    for label, event_type, ddb, stripe_calls, _ in rows:
        limit = BUDGET.get(label)
        if limit is None:
            continue
        if sum(ddb.values()) > limit:
            problems.append(f"{label} / {event_type}: {sum(ddb.values())} DynamoDB requests > {limit} ({dict(ddb)})")
        if stripe_calls:
            problems.append(f"{label} / {event_type}: Stripe requests {stripe_calls}")
    return problems


def scenarios(
    merchant: stripe.StripeClient, control: EmulatorControl, deliver: Callable[[str, dict[str, Any]], None]
) -> None:
    """Pay, refund, subscribe and renew through the emulator; deliver each event Ripples processes.
    Expects a visitor v1 identified as buyer@example.com."""
    seen: set[str] = set()
    types = {"charge.succeeded", "charge.refunded", "checkout.session.completed", "invoice.paid"}
    types |= {"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}

    def pending() -> list[dict[str, Any]]:
        listed = merchant.v1.events.list(params={"limit": 100}).data
        fresh = [e for e in reversed(listed) if e.id not in seen and e.type in types]
        seen.update(e.id for e in listed)
        return [json.loads(merchant.raw_request("get", f"/v1/events/{e.id}").body) for e in fresh]

    customer = merchant.v1.customers.create(params={"email": "buyer@example.com"})
    pay = {
        "amount": 2500,
        "currency": "usd",
        "customer": customer.id,
        "confirm": True,
        "payment_method": "pm_card_visa",
    }
    merchant.v1.payment_intents.create(params=pay)  # type: ignore[arg-type]
    for event in pending():
        deliver("first charge, new customer (email match)", event)
    control.advance_clock(60)  # a later charge: what the link was established by stays the earliest
    merchant.v1.payment_intents.create(params=pay)  # type: ignore[arg-type]
    (event,) = pending()
    deliver("charge of a linked customer (warm)", event)
    deliver("same event again (duplicate)", event)
    pi = merchant.v1.payment_intents.create(params=pay)  # type: ignore[arg-type]
    pending()
    merchant.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    for event in pending():
        deliver("partial refund", event)

    control.advance_clock(60)
    session = merchant.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": 900, "product_data": {"name": "Add-on"}},
                    "quantity": 1,
                }
            ],
            "metadata": {"ripples_visitor_id": "v1"},
        }
    )
    merchant.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session.id}/complete")
    for event in pending():
        deliver("checkout of a linked customer", event)

    price = merchant.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    session = merchant.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"ripples_visitor_id": "v1"},
            "customer_email": "sub@example.com",
        }
    )
    merchant.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session.id}/complete", email="sub@example.com")
    for event in pending():
        deliver("subscription via Checkout", event)
    completed = merchant.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(completed.subscription, str)
    control.advance_clock(60)
    merchant.raw_request("post", f"/v1/test_helpers/subscriptions/{completed.subscription}/renew")
    for event in pending():
        deliver("renewal", event)
    control.advance_clock(-180)


def main() -> None:
    emulator = start()
    control = EmulatorControl(emulator.base_url)
    with moto_stack(emulator.base_url):
        # Imported here: the functions read their configuration lazily, from the environment above.
        from functions.stripe_webhook.app import lambda_handler
        from shared import tables
        from shared.integrations.connect import connect
        from shared.visitors.models import VisitorChanges
        from shared.visitors.service import VisitorService
        from shared.visitors.store import DynamoVisitorStore

        account = control.create_account()
        control.delivery(account.id, retries=0)
        connect(PROJECT, account.restricted_key)
        secret = json.loads(
            boto3.client("secretsmanager").get_secret_value(SecretId=f"ripples-stripe/dev/projects/{PROJECT}")[
                "SecretString"
            ]
        )["webhook_secret"]
        VisitorService(DynamoVisitorStore.default()).save(PROJECT, "v1", VisitorChanges(email="buyer@example.com"))
        merchant = control.client(account.secret_key)

        calls: Counter[str] = Counter()
        for client in tables.clients():  # pynamodb's, one per table
            client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.update([model.name]))
        rows: list[Row] = []

        def deliver(label: str, event: dict[str, Any]) -> None:
            body = json.dumps(event).encode()
            calls.clear()
            control.reset_stats(account.id)
            started = time.perf_counter()
            response = lambda_handler(webhook_request(PROJECT, body, secret), BenchContext())
            elapsed = (time.perf_counter() - started) * 1000
            assert response["statusCode"] == 200, response
            rows.append((label, event["type"], Counter(calls), control.stats(account.id), elapsed))

        scenarios(merchant, control, deliver)

    emulator.stop()
    print("webhook request budget (DynamoDB requests by operation; Stripe requests by endpoint)")
    print(f"{'scenario':44} {'event type':34} {'ddb':>4} {'stripe':>6} {'ms':>7}  detail")
    for label, event_type, ddb, stripe_calls, elapsed in rows:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(ddb.items()))
        if stripe_calls:
            detail += "; " + ", ".join(f"{k} {v}" for k, v in sorted(stripe_calls.items()))
        counts = f"{sum(ddb.values()):>4} {sum(stripe_calls.values()):>6}"
        print(f"{label:44} {event_type:34} {counts} {elapsed:>7.1f}  {detail}")
    problems = over_budget(rows)
    print("within budget" if not problems else "OVER BUDGET:\n" + "\n".join(problems))
    if problems:
        raise SystemExit(1)


def webhook_request(project: str, body: bytes, secret: str) -> dict[str, Any]:
    """The API Gateway (payload 2.0) event of a signed Stripe delivery."""
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe/{project_id}",
        "rawPath": f"/webhooks/stripe/{project}",
        "rawQueryString": "",
        "headers": {"stripe-signature": sign(body, secret, int(time.time())), "content-type": "application/json"},
        "pathParameters": {"project_id": project},
        "requestContext": {"http": {"method": "POST", "path": f"/webhooks/stripe/{project}"}, "stage": "$default"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


class BenchContext:
    """The Lambda context attributes the handlers read."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


if __name__ == "__main__":
    stripe.enable_telemetry = False
    main()
