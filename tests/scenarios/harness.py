"""A merchant's shop connected to Ripples, driven the way production drives it.

A `Shop` is one project connected (through `shared.integrations.connect.connect`) to an emulator
account. The merchant acts through the official SDK with the account's secret key; the tracker and the
dashboard go through the deployed handlers (visitor API, reports API); Stripe's events are read back
from the emulator's Events API as raw bodies and delivered, signed with the endpoint's secret, to the
webhook handler in whatever order a scenario chooses. The emulator's own webhook delivery is off: the
endpoint's URL is not reachable from the tests, and the scenario decides what arrives when.

After every scenario the ledger/total invariant (domain rule 4) is asserted by the fixtures.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import stripe

from functions.reports_api.app import lambda_handler as reports_handler
from functions.stripe_webhook.app import lambda_handler as webhook_handler
from functions.visitor_api.app import lambda_handler as visitor_handler
from local.iam.identity import acting_as
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.webhooks import sign
from shared.integrations.connect import connect
from shared.revenue import keys
from shared.stripe_api.events import PROCESSED_EVENT_TYPES
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv, FakeLambdaContext
from tests.revenue_checks import assert_invariant, assert_sources_current, scan

VISITOR = "/projects/{project_id}/visitors/{visitor_id}"
TIMELINE = VISITOR + "/timeline"
REVENUE = "/projects/{project_id}/revenue"
WEBHOOK = "/webhooks/stripe/{project_id}"

Order = str | Callable[[list[bytes]], list[bytes]]


def event_type(body: bytes) -> str:
    kind: str = json.loads(body)["type"]
    return kind


def event_object(body: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(body)["data"]["object"]
    return obj


def nonzero(money: dict[str, int] | None) -> dict[str, int]:
    """A money map without its zero currencies (api.md: a currency whose total is 0 may be omitted)."""
    return {currency: amount for currency, amount in (money or {}).items() if amount}


@dataclass
class Shop:
    project: str
    account: EmulatorAccount
    client: stripe.StripeClient  # the merchant's own SDK client (secret key)
    webhook_secret: str
    aws: AwsEnv
    control: EmulatorControl
    seen: set[str] = field(default_factory=set)

    # ---- the tracker and the dashboard ---------------------------------------------------------

    def _call(
        self,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        method: str,
        route: str,
        params: dict[str, str],
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        event = http_event(method, route, params, body=body, projects=[self.project], query=query)
        response = handler(event, FakeLambdaContext())
        return response["statusCode"], response_json(response)

    def put_visitor(self, visitor_id: str, **body: Any) -> dict[str, Any]:
        """PUT /visitors/{id} as the tracker calls it (re-attribution runs as deployed)."""
        status, view = self._call(
            visitor_handler, "PUT", VISITOR, {"project_id": self.project, "visitor_id": visitor_id}, body=body
        )
        assert status == 200, view
        result: dict[str, Any] = view
        return result

    def visitor(self, visitor_id: str) -> dict[str, Any]:
        status, view = self._call(
            visitor_handler, "GET", VISITOR, {"project_id": self.project, "visitor_id": visitor_id}
        )
        assert status == 200, view
        result: dict[str, Any] = view
        return result

    def lifetime(self, visitor_id: str) -> dict[str, int]:
        return nonzero(self.visitor(visitor_id)["lifetime_revenue"])

    def timeline(self, visitor_id: str) -> list[dict[str, Any]]:
        """Every timeline event of the visitor, newest first (all pages)."""
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": "50", **({"cursor": cursor} if cursor else {})}
            status, page = self._call(
                visitor_handler,
                "GET",
                TIMELINE,
                {"project_id": self.project, "visitor_id": visitor_id},
                query=query,
            )
            assert status == 200, page
            events.extend(page["events"])
            cursor = page["next_cursor"]
            if not cursor:
                return events

    def timeline_of(self, visitor_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.timeline(visitor_id) if e["type"] == kind]

    def revenue(self, **query: str) -> dict[str, Any]:
        status, report = self.call_reports(**query)
        assert status == 200, report
        return report

    def call_reports(self, **query: str) -> tuple[int, dict[str, Any]]:
        """GET /projects/{id}/revenue: its status and body."""
        status, report = self._call(reports_handler, "GET", REVENUE, {"project_id": self.project}, query=query or None)
        result: dict[str, Any] = report
        return status, result

    # ---- the merchant (Stripe) -----------------------------------------------------------------

    def later(self, seconds: int = 3600) -> None:
        """Time passes at Stripe (the emulator's clock; the `shops` fixture puts it back)."""
        self.control.advance_clock(seconds)

    def helper(self, path: str, **params: Any) -> dict[str, Any]:
        """A Stripe test helper (`POST /v1/test_helpers/...`), through the SDK's raw_request."""
        response = self.client.raw_request("post", f"/v1/test_helpers/{path}", **params)
        result: dict[str, Any] = json.loads(response.body)
        return result

    def complete_checkout(self, session_id: str, **params: Any) -> dict[str, Any]:
        return self.helper(f"checkout/sessions/{session_id}/complete", **params)

    def renew(self, subscription_id: str) -> dict[str, Any]:
        return self.helper(f"subscriptions/{subscription_id}/renew")

    def checkout(self, mode: str, line_items: list[dict[str, Any]], **params: Any) -> str:
        """A Checkout Session the merchant creates (metadata, client_reference_id, ... in `params`)."""
        create: Any = {"mode": mode, "line_items": line_items, "success_url": "https://shop.example/thanks", **params}
        return self.client.v1.checkout.sessions.create(params=create).id

    def one_time(self, amount: int, currency: str = "usd", name: str = "Course") -> list[dict[str, Any]]:
        """Line items of a one-time price."""
        price_data = {"currency": currency, "unit_amount": amount, "product_data": {"name": name}}
        return [{"price_data": price_data, "quantity": 1}]

    def monthly_price(self, amount: int, nickname: str, currency: str = "usd") -> str:
        price = self.client.v1.prices.create(
            params={
                "currency": currency,
                "unit_amount": amount,
                "recurring": {"interval": "month"},
                "product_data": {"name": "Ripples Pro"},
                "nickname": nickname,
            }
        )
        return price.id

    def pay(self, amount: int, currency: str = "usd", **params: Any) -> tuple[str, str]:
        """A direct PaymentIntent, confirmed with a test card: (payment intent id, charge id)."""
        create: Any = {
            "amount": amount,
            "currency": currency,
            "confirm": True,
            "payment_method": "pm_card_visa",
            **params,
        }
        pi = self.client.v1.payment_intents.create(params=create)
        assert isinstance(pi.latest_charge, str)
        return pi.id, pi.latest_charge

    # ---- Stripe's events -----------------------------------------------------------------------

    def new_events(self) -> list[bytes]:
        """Raw bodies of the processed-type events created since the last call, oldest first."""
        return new_events(self.client, self.seen)

    def deliver(self, body: bytes) -> str:
        """Stripe delivering one event: signed with this endpoint's secret, to the webhook handler."""
        headers = {"Stripe-Signature": sign(body, self.webhook_secret, int(time.time()))}
        event = http_event("POST", WEBHOOK, {"project_id": self.project}, body=body.decode(), headers=headers)
        response = webhook_handler(event, FakeLambdaContext(function_name="stripe-webhook"))
        payload = response_json(response)
        assert response["statusCode"] == 200, (event_type(body), payload)
        result: str = payload["result"]
        return result

    def start_senders(
        self, bodies: Sequence[bytes], senders: int = 2
    ) -> tuple[list[threading.Thread], list[BaseException]]:
        """`senders` threads delivering `bodies` between them (round robin), started; what any of
        them raised is collected in the list returned (join the threads, then check it)."""
        errors: list[BaseException] = []

        def deliver(share: Sequence[bytes]) -> None:
            try:
                for body in share:
                    self.deliver(body)
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(bodies[n::senders],)) for n in range(senders)]
        for thread in threads:
            thread.start()
        return threads, errors

    def deliver_all(self, bodies: Sequence[bytes], order: Order = "in_order", seed: int = 7) -> list[str]:
        """Deliver `bodies` in `order`: "in_order", "reversed", "shuffled" (seeded), "twice_shuffled"
        (every event twice, shuffled), or a function of the list."""
        return [self.deliver(body) for body in arrange(list(bodies), order, seed)]

    # ---- reading the end state back ------------------------------------------------------------

    def invariant(self) -> None:
        assert_invariant(self.aws.revenue_table)
        assert_sources_current(self.aws.revenue_table)

    def state(self, visitor_ids: Sequence[str]) -> dict[str, Any]:
        """What a merchant can see, plus the ledger and customer links: for comparing two runs."""
        prefix = f"P#{self.project}#"
        ledger: dict[str, tuple[Any, ...]] = {}
        links: dict[str, tuple[Any, ...]] = {}
        for item in scan(self.aws.revenue_table):
            if not item["pk"].startswith(prefix):
                continue
            if item["sk"] == keys.LEDGER:
                ledger[item["charge_id"]] = (
                    item.get("visitor_id"),
                    item.get("tier"),
                    item["amount"],
                    item["refunded"],
                    item["currency"],
                )
            elif item["sk"] == keys.LINK:
                links[item["customer_id"]] = (item.get("visitor_id"), item.get("tier"))
        return {
            "visitors": {v: self.visitor(v) for v in visitor_ids},
            "timelines": {v: self.timeline(v) for v in visitor_ids},
            "revenue": self.revenue(),
            "ledger": ledger,
            "links": links,
        }


def arrange(bodies: list[bytes], order: Order, seed: int = 7) -> list[bytes]:
    if callable(order):
        return order(bodies)
    if order == "in_order":
        return bodies
    if order == "reversed":
        return bodies[::-1]
    if order == "shuffled":
        shuffled = list(bodies)
        random.Random(seed).shuffle(shuffled)
        return shuffled
    if order == "twice_shuffled":
        doubled = bodies * 2
        random.Random(seed).shuffle(doubled)
        return doubled
    raise ValueError(f"unknown order: {order}")


# ---- fixtures -------------------------------------------------------------------------------------


@dataclass
class Shops:
    """Connects projects to one emulator account (each project gets its own webhook endpoint)."""

    control: EmulatorControl
    account: EmulatorAccount
    aws: AwsEnv
    opened: list[Shop] = field(default_factory=list)

    def open(self, project: str) -> Shop:
        with acting_as("IntegrationApiFunction"):
            integration = connect(project, self.account.restricted_key)
        secret = json.loads(
            boto3.client("secretsmanager").get_secret_value(SecretId=f"{self.aws.secrets_prefix}projects/{project}")[
                "SecretString"
            ]
        )["webhook_secret"]
        client = self.control.client(self.account.secret_key)
        # Delivery off: the endpoint's URL is unreachable; scenarios deliver events themselves.
        assert integration.webhook_endpoint_id
        client.v1.webhook_endpoints.update(integration.webhook_endpoint_id, params={"disabled": True})
        shop = Shop(project, self.account, client, secret, self.aws, self.control)
        if self.opened:  # shops of one account see the same events: start where the first one is
            shop.seen = set(self.opened[0].seen)
        self.opened.append(shop)
        return shop


@pytest.fixture(name="shops")
def shops_fixture(stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount) -> Iterator[Shops]:
    control.delivery(account.id, retries=0)
    offset = control.call("POST", "clock", {"advance": 0})["offset"]
    shops = Shops(control, account, aws)
    try:
        yield shops
    finally:
        control.call("POST", "clock", {"offset": offset})  # the emulator outlives the test
    assert_invariant(aws.revenue_table)
    assert_sources_current(aws.revenue_table)


@pytest.fixture(name="shop")
def shop_fixture(shops: Shops) -> Shop:
    """One project connected to a fresh emulator account; the invariant is asserted afterwards."""
    return shops.open("shop-1")


def new_events(client: stripe.StripeClient, seen: set[str]) -> list[bytes]:
    """Raw bodies of the processed-type events not in `seen` (which it extends), oldest first."""
    fresh: list[str] = []
    params: Any = {"types": list(PROCESSED_EVENT_TYPES), "limit": 100}
    while True:
        page = client.v1.events.list(params=params)
        caught_up = False
        for event in page.data:  # newest first: stop at the first one already handed out
            if event.id in seen:
                caught_up = True
                break
            fresh.append(event.id)
        if caught_up or not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    fresh.reverse()
    seen.update(fresh)
    return [client.raw_request("get", f"/v1/events/{event_id}").body.encode() for event_id in fresh]
