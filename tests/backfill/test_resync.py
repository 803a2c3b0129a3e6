"""Re-sync and disconnect through the integration API, the removal and the backfill through their
queue, in-process (moto, the emulator; IAM enforced): domain rule 7, api.md.

A generated world (tests/reliability/world.py: customers, Checkout Sessions with and without
visitor ids, guest checkouts, refunds, subscriptions, visitors identified by email) is imported once;
a re-sync must end in exactly that state again (nothing counted twice, nothing lost), however it
overlaps the run before it; a disconnect without data must leave no Stripe data but the visitors.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from functions.integration_api.app import lambda_handler as integration_api
from functions.stripe_webhook.app import lambda_handler as webhook
from functions.visitor_api.app import lambda_handler as visitor_api
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared import secrets
from shared.backfill import runner
from shared.revenue import purge
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv, FakeLambdaContext, reset_caches
from tests.reliability.delivery import sign
from tests.reliability.state import Snapshot, compare, invariant_problems, read_items, snapshot
from tests.reliability.world import TEST, History, StripeEvent, generate
from tests.revenue_checks import assert_invariant

from .harness import deliver_some, drain

ROUTE = "/projects/{project_id}/integrations/stripe"
STRIPE_ATTEMPTS = 5
STRIPE_KINDS = {
    "ledger",
    "customer",
    "charge_member",
    "session_member",
    "context",
    "subscription",
    "session",
    "guest_checkout",
    "payment",
    "timeline",
    "unattributed",
}


@pytest.fixture
def world(stripe_env: None, aws: AwsEnv, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch) -> History:
    """A generated history in a fresh account; the backfill unpaced, in few slices."""
    monkeypatch.setenv("STRIPE_RATE_BUDGET", "0")
    monkeypatch.setenv("BACKFILL_SLICES_PER_PHASE", "2")
    monkeypatch.setattr(runner, "RETRY_DELAYS", (0,))
    reset_caches()
    history = generate(control, seed=7, size=TEST)
    control.delivery(history.account.id, retries=0)  # the tests deliver webhooks themselves
    return history


def api(
    method: str, project: str, *, path: str = "", query: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    event = http_event(method, ROUTE + path, {"project_id": project}, body=body, projects=[project], query=query)
    response = integration_api(event, FakeLambdaContext(function_name="integration"))
    return response["statusCode"], response_json(response)


def put_visitors(history: History, project: str) -> None:
    for put in history.puts:
        event = http_event(
            "PUT",
            "/projects/{project_id}/visitors/{visitor_id}",
            {"project_id": project, "visitor_id": put.visitor_id},
            body=put.body,
            projects=[project],
        )
        assert visitor_api(event, FakeLambdaContext(function_name="visitors"))["statusCode"] == 200


def connect(history: History, project: str) -> dict[str, Any]:
    put_visitors(history, project)
    status, body = api("POST", project, body={"api_key": history.account.restricted_key})
    assert status == 201, body
    return dict(body)


def state_of(aws: AwsEnv, project: str) -> tuple[Snapshot, list[dict[str, Any]]]:
    items = read_items(boto3.client("dynamodb"), aws.revenue_table, project)
    assert invariant_problems(items, project) == []
    return snapshot(items, project), items


def imported(aws: AwsEnv, history: History, project: str) -> Snapshot:
    """The state a plain import of the history gives (another project, same account)."""
    connect(history, project)
    drain()
    assert api("GET", project)[1]["backfill"]["status"] == "completed"
    reference, _ = state_of(aws, project)
    assert reference["ledger"], "the world books charges"
    return reference


def integration(project: str) -> dict[str, Any]:
    status, body = api("GET", project)
    assert status == 200
    return dict(body)


def test_a_resync_clears_and_imports_again_to_the_same_state(world: History, aws: AwsEnv) -> None:
    reference = imported(aws, world, "shop-a")
    # When the project is re-synced
    status, body = api("POST", "shop-a", path="/resync")
    # Then 202 with the next run queued, its data removal under way
    assert status == 202
    assert (body["backfill"]["run"], body["backfill"]["status"]) == (2, "queued")
    assert body["data_removal"]["status"] == "running"
    drain()
    # And the re-import ends where the first import did: nothing twice, nothing lost
    after, _ = state_of(aws, "shop-a")
    assert compare(reference, after) == []
    done = integration("shop-a")
    assert (done["backfill"]["run"], done["backfill"]["status"]) == (2, "completed")
    assert done["data_removal"]["status"] == "completed"
    assert done["data_removal"]["charges_removed"] == len(reference["ledger"])


def test_a_resync_during_a_running_backfill_ends_correct(world: History, aws: AwsEnv) -> None:
    reference = imported(aws, world, "shop-a")
    connect(world, "shop-b")
    deliver_some(4)  # the start and a few pages of run 1
    assert api("POST", "shop-b", path="/resync")[0] == 202
    deliver_some(3)  # run 1's pages still queued, run 2's removal under way
    assert api("POST", "shop-b", path="/resync")[0] == 202  # and again: run 3
    drain()
    after, _ = state_of(aws, "shop-b")
    assert compare(reference, after) == []
    assert integration("shop-b")["backfill"]["run"] == 3


def test_webhooks_during_a_resync_are_harmless(world: History, aws: AwsEnv) -> None:
    reference = imported(aws, world, "shop-a")
    assert api("POST", "shop-a", path="/resync")[0] == 202
    events = world.events
    deliver_some(2)  # part of the removal
    deliver(events[: len(events) // 2], "shop-a")
    deliver_some(2)
    deliver(events[len(events) // 2 :], "shop-a")
    drain()
    after, _ = state_of(aws, "shop-a")
    # Money, owners and links as the import gives them; webhooks add context events (Invoice Paid,
    # Subscription Updated) that a list import has no event for.
    for category in ("ledger", "totals", "links", "plans"):
        # (a subscription's state read from an event records that event's time; read from a list, none)
        differences = compare({category: plain_states(reference[category])}, {category: plain_states(after[category])})
        assert differences == [], "\n".join(d.render() for d in differences)


def test_a_resync_racing_webhooks_from_threads_ends_correct(world: History, aws: AwsEnv) -> None:
    reference = imported(aws, world, "shop-a")
    assert api("POST", "shop-a", path="/resync")[0] == 202
    events = world.events
    # The removal and the re-import run while three senders deliver the whole history again
    with ThreadPoolExecutor(max_workers=4) as pool:
        senders = [pool.submit(deliver, events[i::3], "shop-a") for i in range(3)]
        pool.submit(drain).result()
        for sender in senders:
            sender.result()
    drain()
    after, _ = state_of(aws, "shop-a")
    for category in ("ledger", "totals", "links", "plans"):
        differences = compare({category: plain_states(reference[category])}, {category: plain_states(after[category])})
        assert differences == [], "\n".join(d.render() for d in differences)


def plain_states(values: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "event_created"}
        return value

    return {key: plain(value) for key, value in values.items()}


def deliver(events: list[StripeEvent], project: str) -> None:
    """Each event until it is accepted, as Stripe retries a 503 (a decision that kept meeting
    concurrent ones: the removal, the import, other deliveries)."""
    secret = secrets.load(project).webhook_secret
    for event in events:
        request = http_event(
            "POST",
            "/webhooks/stripe/{project_id}",
            {"project_id": project},
            body=event.body,
            headers={"Stripe-Signature": sign(event.body, secret)},
        )
        request["body"], request["isBase64Encoded"] = event.body.decode(), False
        statuses = [webhook(request, FakeLambdaContext(function_name="webhook"))["statusCode"]]
        while statuses[-1] == 503 and len(statuses) < STRIPE_ATTEMPTS:
            statuses.append(webhook(request, FakeLambdaContext(function_name="webhook"))["statusCode"])
        assert statuses[-1] == 200, statuses


def test_disconnect_keeping_data_deletes_the_endpoint_and_the_secret(
    world: History, aws: AwsEnv, control: EmulatorControl
) -> None:
    reference = imported(aws, world, "shop-a")
    endpoint = integration("shop-a")["webhook_endpoint_id"]
    status, body = api("DELETE", "shop-a", query={"keep_data": "true"})
    assert (status, body) == (200, {"status": "disconnected", "data_removed": False})
    assert integration("shop-a")["status"] == "disconnected"
    assert endpoint not in endpoints(control, world.account)
    with pytest.raises(secrets.SecretNotFound):
        secrets.load("shop-a")
    drain()
    after, _ = state_of(aws, "shop-a")
    assert compare(reference, after) == []
    # A second disconnect, or a re-sync, has nothing to act on
    assert api("DELETE", "shop-a")[1]["error"]["code"] == "not_connected"
    assert api("POST", "shop-a", path="/resync")[1]["error"]["code"] == "not_connected"


def endpoints(control: EmulatorControl, account: EmulatorAccount) -> set[str]:
    client = control.client(account.secret_key)
    return {e.id for e in client.v1.webhook_endpoints.list(params={"limit": 100}).data}


def test_disconnect_removing_data_leaves_the_visitors_only_and_a_reconnect_imports_again(
    world: History, aws: AwsEnv
) -> None:
    reference = imported(aws, world, "shop-a")
    status, body = api("DELETE", "shop-a", query={"keep_data": "false"})
    assert (status, body) == (200, {"status": "disconnected", "data_removed": True})
    drain()
    after, items = state_of(aws, "shop-a")
    left = {i["kind"] for i in items} & STRIPE_KINDS
    assert left == set(), f"Stripe data left: {left}"
    for category in ("ledger", "totals", "links", "timelines", "context", "plans"):
        assert all(not v for v in after[category].values()), category
    assert after["visitors"] == reference["visitors"]
    assert integration("shop-a")["data_removal"]["status"] == "completed"
    # When the project connects again, the history comes back exactly
    status, body = api("POST", "shop-a", body={"api_key": world.account.restricted_key})
    assert status == 201, body
    drain()
    again, _ = state_of(aws, "shop-a")
    assert compare(reference, again) == []


def test_a_reconnect_while_data_is_being_removed_removes_it_first(world: History, aws: AwsEnv) -> None:
    reference = imported(aws, world, "shop-a")
    assert api("DELETE", "shop-a", query={"keep_data": "false"})[0] == 200
    status, body = api("POST", "shop-a", body={"api_key": world.account.restricted_key})
    assert status == 201, body
    assert body["data_removal"]["status"] == "running"
    drain()
    again, _ = state_of(aws, "shop-a")
    assert compare(reference, again) == []


def test_a_revoked_key_does_not_block_a_disconnect(world: History, aws: AwsEnv, control: EmulatorControl) -> None:
    connect(world, "shop-a")
    control.revoke_key(world.account.restricted_key)
    status, body = api("DELETE", "shop-a", query={"keep_data": "false"})
    assert (status, body) == (200, {"status": "disconnected", "data_removed": True})
    drain()
    assert integration("shop-a")["status"] == "disconnected"


def test_resync_and_disconnect_answer_not_connected_and_check_keep_data(aws: AwsEnv) -> None:
    assert api("POST", "never", path="/resync") == (
        404,
        {"error": {"code": "not_connected", "message": "No Stripe integration is connected for this project."}},
    )
    assert api("DELETE", "never")[1]["error"]["code"] == "not_connected"
    status, body = api("DELETE", "never", query={"keep_data": "maybe"})
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert json.dumps(api("GET", "never")[1]) == json.dumps({"provider": "stripe", "status": "disconnected"})


def test_a_customer_too_large_for_one_transaction_leaves_in_a_chain_keeping_the_invariant(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_RATE_BUDGET", "0")
    monkeypatch.setenv("BACKFILL_SLICES_PER_PHASE", "2")
    reset_caches()
    control.delivery(account.id, retries=0)
    control.seed(account.id, customers=1, charges_per_customer=260, refund_rate=0.2, checkout_rate=0.3)
    put = http_event(
        "PUT",
        "/projects/{project_id}/visitors/{visitor_id}",
        {"project_id": "shop-a", "visitor_id": "v-1"},
        body={"email": "customer0@example.com"},
        projects=["shop-a"],
    )
    assert visitor_api(put, FakeLambdaContext(function_name="visitors"))["statusCode"] == 200
    assert api("POST", "shop-a", body={"api_key": account.restricted_key})[0] == 201
    drain()
    booked, _ = state_of(aws, "shop-a")
    assert len(booked["ledger"]) > 200
    # Every transaction of the removal keeps rule 4 (checked after each one)
    real, commits = purge._Chain._commit, []

    def checked(chain: purge._Chain, unit: purge._Unit, *, last: bool) -> None:
        real(chain, unit, last=last)
        commits.append(last)
        if not last:  # (within the large customer's chain)
            assert_invariant(aws.revenue_table)

    monkeypatch.setattr(purge._Chain, "_commit", checked)
    while not purge.step("shop-a").done:  # (the removal's steps, as its messages run them)
        pass
    assert commits.count(False) >= 3, "the customer left in a chain of transactions"
    assert_invariant(aws.revenue_table)
    after, items = state_of(aws, "shop-a")
    assert {i["kind"] for i in items} & STRIPE_KINDS == set()
    assert after["totals"] == {} or all(not v for v in after["totals"].values())
