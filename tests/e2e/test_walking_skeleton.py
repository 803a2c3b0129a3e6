"""End to end: the real local stack (`python -m local.stack`, as `make run` starts it) over HTTP.

Connect an emulator account, identify a visitor, pay as a customer with the visitor's email through
Stripe's API, let the emulator deliver its signed webhooks to the stack, and read the revenue back.
"""

from __future__ import annotations

from typing import Any

import stripe

from local.stripe_emulator.control_client import EmulatorAccount
from shared.stripe_api.events import PROCESSED_EVENT_TYPES
from tests.e2e.conftest import Stack


def connect(stack: Stack, project: str) -> tuple[EmulatorAccount, stripe.StripeClient, dict[str, Any]]:
    account = stack.control.create_account()
    status, integration = stack.call(
        "POST", f"/projects/{project}/integrations/stripe", {"api_key": account.restricted_key}, project
    )
    assert status == 201, integration
    return account, stack.control.client(account.secret_key), integration


def pay_as(client: stripe.StripeClient, email: str, amount: int) -> str:
    customer = client.v1.customers.create(params={"email": email})
    pi = client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "customer": customer.id,
            "confirm": True,
            "payment_method": "pm_card_visa",
        }
    )
    assert isinstance(pi.latest_charge, str)
    return pi.latest_charge


def test_connect_pay_and_see_the_revenue_on_the_visitor(stack: Stack) -> None:
    project = "e2e-shop"
    # Given a connected Stripe account
    account, merchant, integration = connect(stack, project)
    assert integration["status"] == "connected"
    assert integration["key_hint"] == f"rk_test_...{account.restricted_key[-4:]}"
    # Then the emulator holds our endpoint with the right url, events and version
    (endpoint,) = merchant.v1.webhook_endpoints.list().data
    assert endpoint.url == f"{stack.base_url}/webhooks/stripe/{project}"
    assert sorted(endpoint.enabled_events) == sorted(PROCESSED_EVENT_TYPES)
    assert endpoint.api_version == "2026-10-28.endive"
    # And GET shows it (its history's import moving on meanwhile)
    shown = stack.call("GET", f"/projects/{project}/integrations/stripe", project=project)[1]
    assert {k: v for k, v in shown.items() if k != "backfill"} == {
        k: v for k, v in integration.items() if k != "backfill"
    }
    assert shown["backfill"]["run"] == integration["backfill"]["run"] == 1

    # Given a visitor identified with an email
    status, visitor = stack.call(
        "PUT",
        f"/projects/{project}/visitors/vis-1",
        {"email": "Buyer@Example.com", "acquisition": {"source": "google"}},
        project,
    )
    assert status == 200, visitor
    # When a customer with that email pays
    charge = pay_as(merchant, "buyer@example.com", 2500)
    attempts = stack.control.wait_for_deliveries(account.id)
    # Then every delivery was accepted, and the visitor has the revenue and the timeline event
    assert attempts
    assert {a["status"] for a in attempts} == {200}
    status, visitor = stack.call("GET", f"/projects/{project}/visitors/vis-1", project=project)
    assert visitor["lifetime_revenue"] == {"usd": 2500}
    assert len(visitor["stripe_customer_ids"]) == 1
    status, timeline = stack.call("GET", f"/projects/{project}/visitors/vis-1/timeline", project=project)
    (event,) = timeline["events"]
    assert event["type"] == "Charge Succeeded"
    assert (event["amount"], event["currency"], event["revenue"]) == (2500, "usd", 2500)
    assert (event["stripe_object_id"], event["attribution_tier"]) == (charge, 2)
    # And the integration records when events last arrived
    assert stack.call("GET", f"/projects/{project}/integrations/stripe", project=project)[1]["last_event_at"]


def test_triple_deliveries_count_once_and_a_tampered_copy_is_refused(stack: Stack) -> None:
    project = "e2e-dups"
    account, merchant, _ = connect(stack, project)
    stack.call("PUT", f"/projects/{project}/visitors/vis-2", {"email": "twice@example.com"}, project)
    # Given the emulator delivering every event three times plus a copy altered after signing
    stack.control.delivery(account.id, copies=3, tamper=True)
    # When the customer pays
    pay_as(merchant, "twice@example.com", 1999)
    attempts = stack.control.wait_for_deliveries(account.id)
    # Then the genuine copies were accepted, the tampered ones refused with 400
    by_copy: dict[str, set[int | None]] = {}
    for attempt in attempts:
        by_copy.setdefault(attempt["copy"], set()).add(attempt["status"])
    assert by_copy["original"] == {200}
    assert by_copy["duplicate"] == {200}
    assert by_copy["tampered"] == {400}
    # And the revenue is counted once
    assert stack.call("GET", f"/projects/{project}/visitors/vis-2", project=project)[1]["lifetime_revenue"] == {
        "usd": 1999
    }
    timeline = stack.call("GET", f"/projects/{project}/visitors/vis-2/timeline", project=project)[1]
    assert [e["type"] for e in timeline["events"]] == ["Charge Succeeded"]


def test_dashboard_routes_need_a_token_for_the_project(stack: Stack) -> None:
    assert stack.call("GET", "/projects/e2e-shop/integrations/stripe")[0] == 401
    status, body = stack.call("GET", "/projects/e2e-shop/integrations/stripe", project="someone-else")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = stack.call("POST", "/webhooks/stripe/nobody", {"id": "evt_1"})
    assert (status, body["error"]["code"]) == (404, "not_found")
