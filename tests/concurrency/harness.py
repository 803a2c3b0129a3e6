"""Races and crashes against the deployed handlers: a merchant in the emulator, projects on moto, and
botocore event hooks on the DynamoDB clients that pause or kill a request at a chosen call.

- `Merchant` is an emulator account acting through the official SDK; `new_events()` reads the events
  its actions produced back from the Events API as raw bodies (what Stripe would send).
- `Project` is a Ripples project connected to that account (`shared.integrations.connect.connect`):
  `deliver` signs a body with the project's webhook secret and hands it to the webhook handler as API
  Gateway would; `put` is the tracker's PUT through the visitor API handler. Both return the handler's
  response and never assert, so crash tests can see a 5xx.
- `interleave` runs one request in a thread, pauses it just before its n-th DynamoDB call of a given
  operation (after its reads, before its write), runs another request to completion in the calling
  thread, then lets the first one go on. Nothing here depends on the engine's function names: only
  on the DynamoDB operations the handlers send, hooked on every botocore client that carries them
  (pynamodb's, one per table: `tests.revenue_checks.dynamodb_hook`).
- `crash_at` raises `Crash` (not a ClientError: the Lambda dies, nothing maps it to a domain error)
  before or after the n-th DynamoDB call; `count_calls` counts the calls of a clean request.
- `Project.snapshot` is the project's RevenueTable contents, normalised so that two runs of the same
  history compare equal: no `version`, no `expires_at` of event marks, no visitor `created_at` /
  `updated_at` (wall clock), no totals of 0, and the wall-clock times emails were set replaced by
  their rank.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import stripe

from functions.stripe_webhook.app import lambda_handler as webhook_handler
from functions.visitor_api.app import lambda_handler as visitor_handler
from local.iam.identity import acting_as
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.webhooks import sign
from shared import secrets
from shared.integrations.connect import connect
from shared.revenue import keys
from tests import raw, revenue_checks
from tests.apigw import http_event, response_json
from tests.conftest import FAKE_AWS_CREDENTIALS, AwsEnv, FakeLambdaContext, aws_env, provision_template, reset_caches
from tests.scenarios.harness import new_events

VISITOR = "/projects/{project_id}/visitors/{visitor_id}"
TIMELINE = VISITOR + "/timeline"
WEBHOOK = "/webhooks/stripe/{project_id}"
PAUSE_TIMEOUT = 20.0  # seconds a paused request waits before the test gives up on it

Response = dict[str, Any]


# ---- Stripe's side ----------------------------------------------------------------------------------


def event_type(body: bytes) -> str:
    kind: str = json.loads(body)["type"]
    return kind


def event_object(body: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(body)["data"]["object"]
    return obj


def pick(events: list[bytes], kind: str, object_id: str | None = None) -> bytes:
    """The one event of `kind` (about `object_id`, when given) among `events`."""
    found = [
        e for e in events if event_type(e) == kind and (object_id is None or event_object(e).get("id") == object_id)
    ]
    assert len(found) == 1, f"{len(found)} {kind} events about {object_id}"
    return found[0]


@dataclass
class Merchant:
    """An emulator account, acting through the official SDK with its secret key."""

    control: EmulatorControl
    account: EmulatorAccount
    client: stripe.StripeClient
    seen: set[str] = field(default_factory=set)

    def later(self, seconds: int = 3600) -> None:
        """Time passes at Stripe (the emulator's clock; `open_merchant` puts it back)."""
        self.control.advance_clock(seconds)

    def customer(self, email: str | None = None, **params: Any) -> str:
        create: Any = {**({"email": email} if email else {}), **params}
        return self.client.v1.customers.create(params=create).id

    def pay(self, amount: int, customer: str | None = None, currency: str = "usd", **params: Any) -> str:
        """A direct PaymentIntent confirmed with a test card; its charge id."""
        create: Any = {
            "amount": amount,
            "currency": currency,
            "confirm": True,
            "payment_method": "pm_card_visa",
            **({"customer": customer} if customer else {}),
            **params,
        }
        pi = self.client.v1.payment_intents.create(params=create)
        assert isinstance(pi.latest_charge, str)
        return pi.latest_charge

    def refund(self, charge: str, amount: int) -> None:
        self.client.v1.refunds.create(params={"charge": charge, "amount": amount})

    @staticmethod
    def one_time(amount: int, currency: str = "usd") -> list[dict[str, Any]]:
        return [
            {
                "price_data": {"currency": currency, "unit_amount": amount, "product_data": {"name": "Course"}},
                "quantity": 1,
            }
        ]

    def monthly_price(self, amount: int, nickname: str, currency: str = "usd") -> str:
        params: Any = {
            "currency": currency,
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Ripples Pro"},
            "nickname": nickname,
        }
        return self.client.v1.prices.create(params=params).id

    def checkout(self, mode: str, line_items: list[dict[str, Any]], **params: Any) -> str:
        create: Any = {"mode": mode, "line_items": line_items, "success_url": "https://shop.example/thanks", **params}
        return self.client.v1.checkout.sessions.create(params=create).id

    def helper(self, path: str, **params: Any) -> dict[str, Any]:
        """A Stripe test helper (`POST /v1/test_helpers/...`)."""
        result: dict[str, Any] = json.loads(self.client.raw_request("post", f"/v1/test_helpers/{path}", **params).body)
        return result

    def complete(self, session_id: str, **params: Any) -> dict[str, Any]:
        """The customer pays an open Checkout Session."""
        return self.helper(f"checkout/sessions/{session_id}/complete", **params)

    def renew(self, subscription_id: str) -> dict[str, Any]:
        return self.helper(f"subscriptions/{subscription_id}/renew")

    def new_events(self) -> list[bytes]:
        """Raw bodies of the processed-type events created since the last call, oldest first."""
        return new_events(self.client, self.seen)


@contextmanager
def open_merchant(control: EmulatorControl) -> Iterator[Merchant]:
    """A fresh emulator account whose own webhook delivery is off; the emulator's clock is put back after."""
    account = control.create_account()
    control.delivery(account.id, retries=0)
    offset = control.call("POST", "clock", {"advance": 0})["offset"]
    try:
        yield Merchant(control, account, control.client(account.secret_key))
    finally:
        control.call("POST", "clock", {"offset": offset})  # the emulator outlives the test


# ---- Ripples' side ----------------------------------------------------------------------------------


def nonzero(money: dict[str, int] | None) -> dict[str, int]:
    return {currency: amount for currency, amount in (money or {}).items() if amount}


@dataclass
class Project:
    """A Ripples project connected to a merchant's account, driven through the deployed handlers."""

    id: str
    webhook_secret: str
    aws: AwsEnv
    merchant: Merchant
    webhook_endpoint_id: str

    # -- requests (never asserting: a crash test wants to see 5xx answers) --------------------------

    def deliver(self, body: bytes) -> Response:
        """Stripe delivering `body`, signed now with this project's endpoint secret."""
        headers = {"Stripe-Signature": sign(body, self.webhook_secret, int(time.time()))}
        event = http_event("POST", WEBHOOK, {"project_id": self.id}, body=body.decode(), headers=headers)
        response: Response = webhook_handler(event, FakeLambdaContext(function_name="stripe-webhook"))
        return response

    def put(self, visitor_id: str, body: dict[str, Any] | None = None) -> Response:
        """The tracker's PUT /visitors/{id} (re-attribution runs as deployed)."""
        event = http_event(
            "PUT", VISITOR, {"project_id": self.id, "visitor_id": visitor_id}, body=body or {}, projects=[self.id]
        )
        response: Response = visitor_handler(event, FakeLambdaContext(function_name="visitor-api"))
        return response

    def deliver_ok(self, body: bytes) -> str:
        response = self.deliver(body)
        payload = response_json(response)
        assert response["statusCode"] == 200, (event_type(body), payload)
        result: str = payload["result"]
        return result

    def put_ok(self, visitor_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.put(visitor_id, body)
        payload: dict[str, Any] = response_json(response)
        assert response["statusCode"] == 200, payload
        return payload

    # -- reading back -----------------------------------------------------------------------------

    def _get(self, route: str, visitor_id: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        event = http_event(
            "GET", route, {"project_id": self.id, "visitor_id": visitor_id}, projects=[self.id], query=query
        )
        response = visitor_handler(event, FakeLambdaContext(function_name="visitor-api"))
        return response["statusCode"], response_json(response)

    def visitor(self, visitor_id: str) -> dict[str, Any]:
        status, view = self._get(VISITOR, visitor_id)
        assert status == 200, view
        result: dict[str, Any] = view
        return result

    def timeline(self, visitor_id: str) -> list[dict[str, Any]]:
        """Every timeline event of the visitor, newest first (all pages)."""
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            status, page = self._get(TIMELINE, visitor_id, {"limit": "50", **({"cursor": cursor} if cursor else {})})
            assert status == 200, page
            events.extend(page["events"])
            cursor = page["next_cursor"]
            if not cursor:
                return events

    def items(self) -> list[dict[str, Any]]:
        return [raw.from_item(i) for i in self.stored()]

    def stored(self) -> list[dict[str, Any]]:
        """The project's RevenueTable items exactly as stored (attribute values)."""
        prefix = f"P#{self.id}#"
        return [i for i in scan_stored(self.aws.revenue_table) if i["pk"]["S"].startswith(prefix)]

    def load(self, stored: list[dict[str, Any]], from_project: str) -> None:
        """Write another project's `stored()` items into this one, its id replaced by this one's: the
        state that project's history left, as if this project had been through it (in another Lambda
        container: nothing of it is in this process)."""
        rows = [{"PutRequest": {"Item": _replace_project(item, from_project, self.id)}} for item in stored]
        for start in range(0, len(rows), 25):  # BatchWriteItem's limit
            pending: Any = {self.aws.revenue_table: rows[start : start + 25]}
            while pending:
                pending = raw.client().batch_write_item(RequestItems=pending).get("UnprocessedItems")

    def ledger(self) -> dict[str, tuple[str | None, int | None, int]]:
        """charge -> (owner, tier, net revenue)."""
        return {
            i["charge_id"]: (i.get("visitor_id"), i.get("tier"), i["amount"] - i["refunded"])
            for i in self.items()
            if i["sk"] == keys.LEDGER
        }

    def ledger_by_name(self, names: dict[str, str]) -> dict[str, tuple[str | None, int | None, int]]:
        """The ledger keyed by the test's names for its charges (name -> charge id), so that a
        failure reads "new: (None, None, 2000)"; a charge without a name is listed under its id."""
        by_id = {charge: name for name, charge in names.items()}
        return {by_id.get(charge, charge): entry for charge, entry in self.ledger().items()}

    def links(self) -> dict[str, str | None]:
        """customer -> the visitor it is linked to."""
        return {i["customer_id"]: i.get("visitor_id") for i in self.items() if i["sk"] == keys.LINK}

    def unattributed(self) -> dict[str, int]:
        return revenue_checks.unattributed_of(self.items())

    def summary(self, visitor_id: str) -> dict[str, Any]:
        """What a visitor shows: lifetime revenue, customers, plan, and its timeline as a sorted list of
        (type, stripe object, tier, revenue, amount)."""
        view = self.visitor(visitor_id)
        timeline = sorted(
            (e["type"], e["stripe_object_id"], e["attribution_tier"], e["revenue"], e["amount"])
            for e in self.timeline(visitor_id)
        )
        return {
            "lifetime_revenue": nonzero(view["lifetime_revenue"]),
            "stripe_customer_ids": sorted(view["stripe_customer_ids"]),
            "plan": view["plan"],
            "timeline": timeline,
        }

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The project's RevenueTable contents, normalised to compare two runs of one history."""
        return normalise(self.items(), self.id)

    def close(self) -> None:
        """Delete the project's webhook endpoint (an account holds at most 16 test endpoints)."""
        self.merchant.client.v1.webhook_endpoints.delete(self.webhook_endpoint_id)


@contextmanager
def connected(merchant: Merchant, aws: AwsEnv, project_id: str | None = None) -> Iterator[Project]:
    """`connect_project`, and the webhook endpoint deleted afterwards."""
    project = connect_project(merchant, aws, project_id)
    try:
        yield project
    finally:
        project.close()


def connect_project(merchant: Merchant, aws: AwsEnv, project_id: str | None = None) -> Project:
    """A new project connected to the merchant's account, as the integration API connects it. Its
    id is unique unless given, so per-process state (caches, the last_event_at throttle) starts fresh;
    `close()` deletes its webhook endpoint."""
    project_id = project_id or f"p-{uuid.uuid4().hex[:12]}"
    with acting_as("IntegrationApiFunction"):
        integration = connect(project_id, merchant.account.restricted_key)
    # (the process's cached client: a new boto3 client costs ~40 ms; not the functions' secret cache)
    stored = secrets.client().get_secret_value(SecretId=f"{aws.secrets_prefix}projects/{project_id}")
    secret = json.loads(stored["SecretString"])["webhook_secret"]
    assert integration.webhook_endpoint_id
    # The endpoint's URL is unreachable: tests deliver events themselves.
    merchant.client.v1.webhook_endpoints.update(integration.webhook_endpoint_id, params={"disabled": True})
    return Project(project_id, secret, aws, merchant, integration.webhook_endpoint_id)


def scan(table: str) -> list[dict[str, Any]]:
    """Every item of the table (consistent reads), with the process's cached client."""
    return [raw.from_item(i) for i in scan_stored(table)]


def scan_stored(table: str) -> list[dict[str, Any]]:
    """Every item of the table as stored (attribute values), with the process's cached client."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = raw.client().scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ---- one moto for many tests --------------------------------------------------------------------------


@dataclass
class Stack:
    """moto with the template's tables and the functions' environment (as the `aws` fixture of
    tests/conftest.py makes them); `reset()` gives the tests that share it empty tables again."""

    env: AwsEnv
    tables: dict[str, dict[str, Any]]  # table name -> its template properties

    def reset(self) -> None:
        from local.stack.resources import create_table

        client = raw.client()
        for name, properties in self.tables.items():
            client.delete_table(TableName=name)
            create_table(client, name, properties)


class _CachedClients:
    """`boto3` for tests.revenue_checks: its scans use the process's cached client (a new boto3
    client costs ~40 ms, more than the scan)."""

    @staticmethod
    def client(service: str) -> Any:
        assert service == "dynamodb"
        return raw.client()


@contextmanager
def moto_stack(stripe_api_base: str) -> Iterator[Stack]:
    """The `aws` and `stripe_env` fixtures of tests/conftest.py as one context manager, for a module
    of tests that each start from `Stack.reset()` instead of a new moto (~0.3 s each)."""
    from moto import mock_aws

    with (
        mock.patch.dict(os.environ, FAKE_AWS_CREDENTIALS),
        mock_aws(),
        mock.patch.object(revenue_checks, "boto3", _CachedClients),
    ):
        os.environ.pop("AWS_ENDPOINT_URL", None)
        environment, tables = provision_template()
        os.environ.update(environment)
        os.environ["STRIPE_API_BASE"] = stripe_api_base
        reset_caches()
        try:
            yield Stack(aws_env(environment), tables)
        finally:
            reset_caches()


# ---- normalising a table's contents ----------------------------------------------------------------

_WALL_CLOCK = frozenset({"created_at", "updated_at"})  # a visitor profile's own times


def normalise(items: list[dict[str, Any]], project_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Items keyed by (pk, sk) with the project id replaced by "<p>", without `version` (bumped by
    every retried decision), without the event marks' `expires_at` (now + 35 days), the profiles'
    `created_at`/`updated_at` and the rollup months' `generation` (random), without totals of 0 (a
    profile's `revenue` entries, the unattributed `TOTALS#<currency>` items), and with the times
    emails were set (profile `email_set_at`, email head and member `set_at`, member sort keys)
    replaced by their rank among those times."""
    stamps: set[str] = set()
    for item in items:
        if item["sk"] == keys.PROFILE and item.get("email_set_at"):
            stamps.add(item["email_set_at"])
        elif item["sk"] == keys.HEAD or item["sk"].startswith(keys.MEMBER_PREFIX):
            stamps.add(item["set_at"])
    rank = {stamp: f"<t{i}>" for i, stamp in enumerate(sorted(stamps))}

    def restamp(value: str) -> str:
        for stamp, label in rank.items():
            value = value.replace(stamp, label)
        return value

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        if item["sk"].startswith(f"{keys.TOTALS}#") and item.get("amount", 0) == 0:
            continue  # a total of 0 is no total (it is left behind when money moves away)
        values = _replace_project({k: v for k, v in item.items() if k != "version"}, project_id)
        if item["sk"] == keys.EVENT:
            values.pop("expires_at", None)
        if item.get("kind") == "rollup_month":
            values.pop("generation", None)  # random, once per month shard's first write
        if item["sk"] == keys.PROFILE:
            for name in _WALL_CLOCK:
                values.pop(name, None)
            if "revenue" in values:  # likewise per currency of a visitor's lifetime revenue
                values["revenue"] = {currency: amount for currency, amount in values["revenue"].items() if amount}
        for name in ("email_set_at", "set_at", "sk"):
            if isinstance(values.get(name), str):
                values[name] = restamp(values[name])
        out[(values["pk"], values["sk"])] = values
    return out


def _replace_project(value: Any, project_id: str, by: str = "<p>") -> Any:
    """`value` with the project id replaced wherever it occurs (keys, values, members)."""
    if isinstance(value, str):
        return value.replace(project_id, by)
    if isinstance(value, dict):
        return {_replace_project(k, project_id, by): _replace_project(v, project_id, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_project(v, project_id, by) for v in value]
    if isinstance(value, set):
        return {_replace_project(v, project_id, by) for v in value}
    return value


def differences(
    expected: dict[tuple[str, str], dict[str, Any]], actual: dict[tuple[str, str], dict[str, Any]]
) -> list[str]:
    """A readable list of what differs between two snapshots."""
    lines: list[str] = []
    for key in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(key), actual.get(key)
        if want == got:
            continue
        if got is None:
            lines.append(f"missing {key}: {want}")
        elif want is None:
            lines.append(f"extra {key}: {got}")
        else:
            for name in sorted(want.keys() | got.keys()):
                if want.get(name) != got.get(name):
                    lines.append(f"{key} {name}: expected {want.get(name)!r}, got {got.get(name)!r}")
    return lines


# ---- pausing and crashing requests at DynamoDB calls -------------------------------------------------


@dataclass
class Interleaved:
    reached: bool  # the paused request did stop at the chosen call (else it ran to the end first)
    paused_result: Any
    other_result: Any


def interleave(
    paused: Callable[[], Any],
    other: Callable[[], Any],
    *,
    operation: str = "TransactWriteItems",
    nth: int = 1,
) -> Interleaved:
    """Run `paused` in a thread until just before its `nth` DynamoDB `operation` call, run `other`
    to completion here, then let `paused` finish. Only that thread, only once, is held."""
    reached, release = threading.Event(), threading.Event()
    state: dict[str, Any] = {"thread": None, "calls": 0}

    def hold(**_: Any) -> None:
        if threading.get_ident() != state["thread"]:
            return
        state["calls"] += 1
        if state["calls"] == nth:
            reached.set()
            if not release.wait(PAUSE_TIMEOUT):
                raise TimeoutError("the paused request was never released")

    outcome: dict[str, Any] = {}

    def run() -> None:
        state["thread"] = threading.get_ident()
        try:
            outcome["result"] = paused()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="paused-request", daemon=True)
    with revenue_checks.dynamodb_hook(f"before-call.dynamodb.{operation}", hold):
        try:
            thread.start()
            deadline = time.monotonic() + PAUSE_TIMEOUT
            while not reached.wait(0.005):
                if not thread.is_alive():
                    break
                assert time.monotonic() < deadline, "the paused request neither paused nor finished"
            was_reached = reached.is_set()
            other_result = other()
        finally:
            release.set()
            thread.join(PAUSE_TIMEOUT)
    assert not thread.is_alive(), "the paused request did not finish after its release"
    if "error" in outcome:
        raise outcome["error"]
    return Interleaved(was_reached, outcome.get("result"), other_result)


class Crash(BaseException):
    """The Lambda dies here (out of time, out of memory, the container is recycled). A BaseException,
    like the signals that end a process, so that no `except Exception` in the code can survive it."""


@contextmanager
def crash_at(n: int, when: str) -> Iterator[list[str]]:
    """Raise `Crash` before (`when="before"`) or after (`"after"`: the call took effect) the n-th
    DynamoDB call made inside the block; yields the operations seen so far."""
    assert when in ("before", "after")
    seen: list[str] = []

    def die(model: Any, **_: Any) -> None:
        seen.append(model.name)
        if len(seen) == n:
            raise Crash(f"crash {when} DynamoDB call {n} ({model.name})")

    with revenue_checks.dynamodb_hook(f"{when}-call.dynamodb", die):
        yield seen


@contextmanager
def count_calls() -> Iterator[list[str]]:
    """The DynamoDB operations made inside the block, in order."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> None:
        seen.append(model.name)

    with revenue_checks.dynamodb_hook("before-call.dynamodb", count):
        yield seen


def failed(call: Callable[[], Response]) -> str:
    """Run a request that is expected to die or answer 5xx (both mean Stripe / the client retries);
    what happened, for the test id's record."""
    try:
        response = call()
    except Crash as exc:
        return str(exc)
    status = response["statusCode"]
    assert status >= 500, f"a crashed request answered {status}: {response.get('body')}"
    return f"answered {status}"
