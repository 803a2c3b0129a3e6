"""The emulator's API surface as the official SDK sees it: lists, filters, errors, keys, idempotency,
webhook endpoints, events, the control API, and objects shaped like Stripe's own examples.

Everything here goes through `stripe.StripeClient` (`stripe_client.v1....`) or the control API.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest
import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.core import API_VERSION
from local.stripe_emulator.fixtures import INCLUDABLE, fixture_keys
from local.stripe_emulator.keys import PERMISSIONS
from local.stripe_emulator.server import RunningEmulator
from tests.conftest import Receiver

# ---- helpers ---------------------------------------------------------------------------------

E = TypeVar("E", bound=stripe.StripeError)


def body_of(obj: stripe.StripeObject) -> dict[str, Any]:
    """The raw JSON the emulator answered for `obj`."""
    assert obj.last_response is not None
    parsed: dict[str, Any] = json.loads(obj.last_response.body)
    return parsed


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A response header, whatever the case of its name."""
    return next((v for k, v in (headers or {}).items() if k.lower() == name.lower()), None)


def seed(control: EmulatorControl, account: EmulatorAccount, customers: int, per_customer: int) -> dict[str, Any]:
    """Bulk history: `customers` customers with `per_customer` succeeded charges each."""
    counts = control.seed(account.id, customers=customers, charges_per_customer=per_customer, failure_rate=0)
    assert counts["charges"] == customers * per_customer
    return counts


def pages_forward(client: stripe.StripeClient, **params: Any) -> list[list[stripe.Charge]]:
    """Every page of charges, following `starting_after` the last id of each page."""
    pages: list[list[stripe.Charge]] = []
    cursor: str | None = None
    while True:
        page = client.v1.charges.list(params={**params, **({"starting_after": cursor} if cursor else {})})
        pages.append(list(page.data))
        if not page.has_more:
            return pages
        cursor = page.data[-1].id


def all_charges(client: stripe.StripeClient, **params: Any) -> list[stripe.Charge]:
    return list(client.v1.charges.list(params={"limit": 100, **params}).auto_paging_iter())


def assert_newest_first(objects: list[Any]) -> None:
    created = [o.created for o in objects]
    assert created == sorted(created, reverse=True)


def expect_error(error_type: type[E], call: Callable[[], Any]) -> E:
    """Run `call`, which must raise `error_type`; return the error."""
    with pytest.raises(error_type) as caught:
        call()
    return caught.value


def new_customer(client: stripe.StripeClient, email: str = "buyer@example.com") -> stripe.Customer:
    return client.v1.customers.create(params={"email": email, "name": "Buyer"})


def recurring_price(client: stripe.StripeClient, amount: int = 900) -> stripe.Price:
    return client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Plan"},
            "nickname": "monthly",
        }
    )


def subscribe(client: stripe.StripeClient, price: stripe.Price, **params: Any) -> stripe.Subscription:
    customer = new_customer(client)
    return client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}], **params})


def payment_session(client: stripe.StripeClient, amount: int = 1500) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": amount, "product_data": {"name": "Tee"}},
                    "quantity": 1,
                }
            ],
            "success_url": "https://shop.example.com/thanks",
            "metadata": {"ripples_visitor_id": "v_1"},
        }
    )


def complete_session(client: stripe.StripeClient, session_id: str, email: str) -> dict[str, Any]:
    """Pay a Checkout Session as the customer would (the emulator's test helper); the session's JSON."""
    response = client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", email=email)
    completed: dict[str, Any] = json.loads(response.body)
    return completed


def paid_intent(client: stripe.StripeClient, customer: stripe.Customer | None = None) -> stripe.PaymentIntent:
    params: dict[str, Any] = {"amount": 2500, "currency": "usd", "metadata": {"order": "42"}}
    if customer is not None:
        params["customer"] = customer.id
    intent = client.v1.payment_intents.create(params=params)
    return client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})


def create_endpoint(client: stripe.StripeClient, url: str, events: list[str] | None = None) -> stripe.WebhookEndpoint:
    return client.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": events or ["charge.succeeded"], "api_version": API_VERSION}
    )


def event_types(events: Any) -> set[str]:
    return {e.type for e in events.data}


@pytest.fixture
def restricted_client(control: EmulatorControl, account: EmulatorAccount) -> stripe.StripeClient:
    """The SDK with the restricted key the product asks merchants for."""
    return control.client(account.restricted_key)


@pytest.fixture
def shifted_clock(control: EmulatorControl) -> Iterator[Callable[[int], int]]:
    """Move the session-wide emulator clock; whatever was moved is moved back after the test."""
    moved = [0]

    def advance(seconds: int) -> int:
        moved[0] += seconds
        return control.advance_clock(seconds)

    try:
        yield advance
    finally:
        if moved[0]:
            control.advance_clock(-moved[0])


# ---- pagination ------------------------------------------------------------------------------


def test_starting_after_pages_every_charge_once_with_customers_expanded(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given 260 charges of 52 customers
    seed(control, account, customers=52, per_customer=5)

    # When listed in pages of 100 with customers expanded, following starting_after
    pages = pages_forward(stripe_client, limit=100, expand=["data.customer"])

    # Then three pages hold every charge exactly once, newest first, each with its customer object
    assert [len(p) for p in pages] == [100, 100, 60]
    charges = [c for page in pages for c in page]
    assert len({c.id for c in charges}) == 260
    assert_newest_first(charges)
    assert all(isinstance(c.customer, stripe.Customer) for c in charges)
    assert all(c.customer.email == c.billing_details.email for c in charges)
    assert len({c.customer.id for c in charges}) == 52


def test_auto_paging_iter_matches_manual_pages(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given 260 charges
    seed(control, account, customers=26, per_customer=10)

    # When iterated by the SDK's auto_paging_iter with customers expanded
    charges = all_charges(stripe_client, expand=["data.customer"])

    # Then it yields the same charges in the same order as manual pages, customers expanded
    manual = [c.id for page in pages_forward(stripe_client, limit=100) for c in page]
    assert [c.id for c in charges] == manual
    assert len(set(manual)) == 260
    assert all(isinstance(c.customer, stripe.Customer) and c.customer.object == "customer" for c in charges)


def test_ending_before_pages_backwards(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given 255 charges listed newest first
    seed(control, account, customers=51, per_customer=5)
    forward = [c.id for c in all_charges(stripe_client)]

    # When paging backwards from the oldest with ending_before the first id of each page
    backward: list[str] = []
    cursor = forward[-1]
    while True:
        page = stripe_client.v1.charges.list(params={"limit": 100, "ending_before": cursor})
        backward = [c.id for c in page.data] + backward
        if not page.has_more:
            break
        cursor = page.data[0].id

    # Then the pages, newest first each, put together are every charge newer than the oldest
    assert backward == forward[:-1]

    # And the SDK's auto_paging_iter from ending_before yields them oldest first
    older_first = stripe_client.v1.charges.list(params={"limit": 100, "ending_before": forward[-1]}).auto_paging_iter()
    assert [c.id for c in older_first] == list(reversed(forward[:-1]))


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range_is_refused(stripe_client: stripe.StripeClient, limit: int) -> None:
    # Given a limit outside 1..100, When listing, Then the SDK raises InvalidRequestError on param limit
    error = expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.charges.list(params={"limit": limit}))
    assert error.http_status == 400
    assert error.param == "limit"


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_unknown_cursor_is_refused(stripe_client: stripe.StripeClient, cursor: str) -> None:
    # Given a cursor naming no charge, When listing, Then InvalidRequestError (resource_missing) names it
    error = expect_error(
        stripe.InvalidRequestError, lambda: stripe_client.v1.charges.list(params={cursor: "ch_doesnotexist"})
    )
    assert error.code == "resource_missing"
    assert "ch_doesnotexist" in str(error.user_message)


def test_limit_defaults_to_ten(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given 12 charges, When listed without limit, Then 10 come back with more to follow
    seed(control, account, customers=3, per_customer=4)
    page = stripe_client.v1.charges.list()
    assert (len(page.data), page.has_more, page.url) == (10, True, "/v1/charges")


# ---- filters ---------------------------------------------------------------------------------


def test_charge_filters(control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient) -> None:
    # Given 120 charges of 20 customers
    seed(control, account, customers=20, per_customer=6)
    everything = all_charges(stripe_client)
    some = everything[37]

    # When filtered by customer, Then exactly that customer's charges, newest first
    by_customer = all_charges(stripe_client, customer=some.customer)
    assert [c.id for c in by_customer] == [c.id for c in everything if c.customer == some.customer]
    assert len(by_customer) == 6

    # When filtered by payment intent, Then its one charge
    assert [c.id for c in all_charges(stripe_client, payment_intent=some.payment_intent)] == [some.id]

    # When filtered by created ranges, Then the bounds' strictness is Stripe's
    low, high = everything[90].created, everything[30].created
    for created, keep in [
        ({"gte": low, "lt": high}, lambda t: low <= t < high),
        ({"gt": low, "lte": high}, lambda t: low < t <= high),
        ({"lt": low}, lambda t: t < low),
        ({"gte": high}, lambda t: t >= high),
    ]:
        listed = all_charges(stripe_client, created=created)
        assert [c.id for c in listed] == [c.id for c in everything if keep(c.created)], created

    # And filters combine
    combined = all_charges(stripe_client, customer=some.customer, created={"lte": some.created})
    assert [c.id for c in combined] == [c.id for c in by_customer if c.created <= some.created]


def test_customers_by_email(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given seeded customers and a new one sharing an address with a seeded one
    seed(control, account, customers=10, per_customer=1)
    twin = new_customer(stripe_client, email="customer3@example.com")

    # When listed by email, Then both customers with the address, newest first, and no one else
    listed = stripe_client.v1.customers.list(params={"email": "customer3@example.com"}).data
    assert [c.email for c in listed] == ["customer3@example.com"] * 2
    assert listed[0].id == twin.id
    assert stripe_client.v1.customers.list(params={"email": "nobody@example.com"}).data == []

    # And after an update the customer is found by its new address only
    stripe_client.v1.customers.update(twin.id, params={"email": "moved@example.com"})
    assert [c.id for c in stripe_client.v1.customers.list(params={"email": "moved@example.com"}).data] == [twin.id]
    assert len(stripe_client.v1.customers.list(params={"email": "customer3@example.com"}).data) == 1


def test_checkout_session_filters(stripe_client: stripe.StripeClient) -> None:
    # Given two sessions of which one is paid
    paid, still_open = payment_session(stripe_client), payment_session(stripe_client)
    completed = complete_session(stripe_client, paid.id, "payer@example.com")

    # When listed by status, Then each status lists its session
    assert [s.id for s in stripe_client.v1.checkout.sessions.list(params={"status": "complete"}).data] == [paid.id]
    assert [s.id for s in stripe_client.v1.checkout.sessions.list(params={"status": "open"}).data] == [still_open.id]
    assert stripe_client.v1.checkout.sessions.list(params={"status": "expired"}).data == []

    # When listed by the payment's PaymentIntent, Then the session that made it, with its metadata
    found = stripe_client.v1.checkout.sessions.list(params={"payment_intent": completed["payment_intent"]}).data
    assert [(s.id, s.metadata["ripples_visitor_id"]) for s in found] == [(paid.id, "v_1")]
    assert found[0].customer_details.email == "payer@example.com"

    # And an invalid status is refused
    expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.checkout.sessions.list(params={"status": "x"}))


def test_subscription_status_filter(stripe_client: stripe.StripeClient) -> None:
    # Given an active, a trialing and a canceled subscription
    price = recurring_price(stripe_client)
    active = subscribe(stripe_client, price)
    trialing = subscribe(stripe_client, price, trial_period_days=7)
    canceled = subscribe(stripe_client, price)
    stripe_client.v1.subscriptions.cancel(canceled.id)
    assert (active.status, trialing.status) == ("active", "trialing")

    def listed(**params: Any) -> list[str]:
        return [s.id for s in stripe_client.v1.subscriptions.list(params=params).data]

    # When listed without status, Then canceled subscriptions are left out
    assert listed() == [trialing.id, active.id]
    # When listed by one status, Then only that status
    assert listed(status="active") == [active.id]
    assert listed(status="trialing") == [trialing.id]
    assert listed(status="canceled") == [canceled.id]
    # When listed with status=all, Then all three, newest first
    assert listed(status="all") == [canceled.id, trialing.id, active.id]
    # And by price or customer
    assert len(listed(status="all", price=price.id)) == 3
    assert listed(customer=active.customer) == [active.id]
    expect_error(stripe.InvalidRequestError, lambda: listed(status="nonsense"))


# ---- authentication and permissions ------------------------------------------------------------


def test_unknown_key_is_a_401(control: EmulatorControl) -> None:
    # Given a key the emulator never issued, When used, Then AuthenticationError "Invalid API Key provided"
    client = control.client("sk_test_" + "x" * 40)
    error = expect_error(stripe.AuthenticationError, lambda: client.v1.charges.list())
    assert error.http_status == 401
    assert "Invalid API Key provided" in str(error.user_message)
    assert "x" * 20 not in str(error.user_message)  # the key is redacted


def test_basic_auth_with_the_key_as_user_name_works_like_bearer(
    emulator: RunningEmulator, account: EmulatorAccount
) -> None:
    # Given `curl -u sk_test_...:` (HTTP basic auth, the key as user name), When charges are listed
    token = base64.b64encode(f"{account.secret_key}:".encode()).decode()
    request = urllib.request.Request(f"{emulator.base_url}/v1/charges", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request) as response:
        # Then Stripe's list comes back
        assert json.loads(response.read())["object"] == "list"
    # And a basic header without a key is a 401
    bad = urllib.request.Request(f"{emulator.base_url}/v1/charges", headers={"Authorization": "Basic !!"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad)
    assert caught.value.code == 401


@pytest.mark.parametrize(("status", "message"), [("revoked", "Invalid API Key provided"), ("expired", "Expired")])
def test_revoked_and_expired_keys_are_401(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, status: str, message: str
) -> None:
    # Given a key that worked
    key = control.create_key(account.id, ["rak_charge_read"])
    client = control.client(key)
    client.v1.charges.list()

    # When it is revoked or expires, Then the next call is a 401 with Stripe's message
    control.revoke_key(key, status=status)
    error = expect_error(stripe.AuthenticationError, lambda: client.v1.charges.list())
    assert error.http_status == 401
    assert message in str(error.user_message)
    assert f"rk_test_{'*' * 12}{key[-4:]}" in str(error.user_message)  # redacted

    # And the account's other keys still work
    stripe_client.v1.charges.list()


def test_missing_permission_is_a_403_naming_it(control: EmulatorControl, account: EmulatorAccount) -> None:
    # Given a restricted key that may only read charges
    client = control.client(control.create_key(account.id, ["rak_charge_read"]))

    # When it lists customers, Then PermissionError naming rak_customer_read and the account
    error = expect_error(stripe.PermissionError, lambda: client.v1.customers.list())
    assert error.http_status == 403
    assert "Having the 'rak_customer_read' permission would allow this request to continue" in str(error.user_message)
    assert account.id in str(error.user_message)
    assert "rk_test_" in str(error.user_message)


def test_permission_needed_by_an_expansion_is_required(control: EmulatorControl, account: EmulatorAccount) -> None:
    # Given charges and a key that reads charges but not customers
    seed(control, account, customers=2, per_customer=1)
    client = control.client(control.create_key(account.id, ["rak_charge_read"]))

    # When charges are listed, Then it works; When their customers are expanded, Then 403 rak_customer_read
    assert len(client.v1.charges.list(params={"limit": 1}).data) == 1
    error = expect_error(
        stripe.PermissionError, lambda: client.v1.charges.list(params={"limit": 1, "expand": ["data.customer"]})
    )
    assert "'rak_customer_read'" in str(error.user_message)

    # And a write permission includes the read one
    writer = control.client(control.create_key(account.id, ["rak_charge_read", "rak_customer_write"]))
    listed = writer.v1.charges.list(params={"limit": 1, "expand": ["data.customer"]})
    assert isinstance(listed.data[0].customer, stripe.Customer)


def test_expansions_are_checked_even_on_an_empty_list(control: EmulatorControl, account: EmulatorAccount) -> None:
    # Given an account without charges and a key that reads charges but not customers
    client = control.client(control.create_key(account.id, ["rak_charge_read"]))
    # When a limit=1 probe expands customers, Then it fails as it would with data: permission probes work
    error = expect_error(
        stripe.PermissionError, lambda: client.v1.charges.list(params={"limit": 1, "expand": ["data.customer"]})
    )
    assert "'rak_customer_read'" in str(error.user_message)
    # And a path that cannot be expanded is refused whatever the data
    expect_error(stripe.InvalidRequestError, lambda: client.v1.charges.list(params={"expand": ["data.nonsense"]}))
    expect_error(stripe.InvalidRequestError, lambda: client.v1.charges.list(params={"expand": ["customer"]}))


def test_product_restricted_key_covers_what_the_product_needs(
    control: EmulatorControl,
    account: EmulatorAccount,
    stripe_client: stripe.StripeClient,
    restricted_client: stripe.StripeClient,
    receiver: Receiver,
) -> None:
    # Given an account with charges, a paid Checkout Session and a subscription with its invoice
    seed(control, account, customers=3, per_customer=2)
    session = payment_session(stripe_client)
    completed = complete_session(stripe_client, session.id, "payer@example.com")
    sub = subscribe(stripe_client, recurring_price(stripe_client))
    assert isinstance(sub.latest_invoice, str)

    # When the product's restricted key reads what a backfill reads, Then every call succeeds
    charges = restricted_client.v1.charges.list(params={"limit": 100, "expand": ["data.customer"]})
    customers = [c.customer for c in charges.data if c.customer is not None]  # guest checkouts have none
    assert len(customers) == 7
    assert all(isinstance(c, stripe.Customer) for c in customers)
    found = restricted_client.v1.checkout.sessions.list(params={"payment_intent": completed["payment_intent"]})
    assert [s.id for s in found.data] == [session.id]
    assert restricted_client.v1.checkout.sessions.retrieve(session.id).status == "complete"
    assert [s.id for s in restricted_client.v1.subscriptions.list().data] == [sub.id]
    invoice = restricted_client.v1.invoices.retrieve(sub.latest_invoice, params={"expand": ["payments"]})
    assert invoice.payments is not None
    assert len(invoice.payments.data) == 1
    assert [i.id for i in restricted_client.v1.invoices.list().data] == [sub.latest_invoice]
    payments = restricted_client.v1.invoice_payments.list(params={"invoice": sub.latest_invoice}).data
    assert [p.invoice for p in payments] == [sub.latest_invoice]

    # And it manages its webhook endpoint
    endpoint = create_endpoint(restricted_client, receiver.url)
    assert restricted_client.v1.webhook_endpoints.delete(endpoint.id).deleted is True

    # But it cannot move money
    error = expect_error(
        stripe.PermissionError,
        lambda: restricted_client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"}),
    )
    assert "'rak_payment_intent_write'" in str(error.user_message)
    expect_error(
        stripe.PermissionError, lambda: restricted_client.v1.refunds.create(params={"charge": charges.data[0].id})
    )


# ---- other errors ----------------------------------------------------------------------------


def test_missing_object_is_resource_missing(stripe_client: stripe.StripeClient) -> None:
    # Given no such charge, When retrieved, Then InvalidRequestError 404 resource_missing naming it
    error = expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.charges.retrieve("ch_missing"))
    assert (error.http_status, error.code) == (404, "resource_missing")
    assert str(error.user_message) == "No such charge: 'ch_missing'"
    assert header(error.headers, "Request-Id") is not None


def test_unknown_url_is_a_404(stripe_client: stripe.StripeClient) -> None:
    # Given a path Stripe does not have, When requested, Then InvalidRequestError 404 "Unrecognized request URL"
    error = expect_error(stripe.InvalidRequestError, lambda: stripe_client.raw_request("get", "/v1/nonsense"))
    assert error.http_status == 404
    assert "Unrecognized request URL (GET: /v1/nonsense)" in str(error.user_message)


def test_rate_limit_answers_429_until_turned_off(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given rate limiting at 2 requests/s
    control.rate_limit(account.id, global_rate=2, endpoint_rate=2)
    try:
        # When requests come faster, Then one is refused with RateLimitError, code rate_limit and the reason
        error = None
        for _ in range(10):
            try:
                stripe_client.v1.charges.list()
            except stripe.RateLimitError as exc:
                error = exc
                break
        assert error is not None, "no 429 in 10 requests at 2/s"
        assert error.http_status == 429
        assert error.error is not None
        assert error.error.code == "rate_limit"
        assert header(error.headers, "Stripe-Rate-Limited-Reason") in ("global-rate", "endpoint-rate")
    finally:
        # When it is turned off, Then requests pass again
        control.rate_limit(account.id, enabled=False)
    for _ in range(10):
        stripe_client.v1.charges.list()


def test_endpoint_rate_limit_leaves_other_endpoints(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given a generous account limit but 1 request/s per endpoint
    control.rate_limit(account.id, global_rate=1000, endpoint_rate=1)
    try:
        # When one endpoint is called twice, Then the second is refused for endpoint-rate
        stripe_client.v1.charges.list()
        error = expect_error(stripe.RateLimitError, lambda: stripe_client.v1.charges.list())
        assert header(error.headers, "Stripe-Rate-Limited-Reason") == "endpoint-rate"
        # And another endpoint still answers
        stripe_client.v1.customers.list()
    finally:
        control.rate_limit(account.id, enabled=False)


def test_injected_fault_is_retried_by_the_sdk(
    control: EmulatorControl, account: EmulatorAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one injected 500 on GET /v1/charges and an SDK client that retries twice (with short backoff)
    monkeypatch.setattr(stripe._http_client.HTTPClient, "INITIAL_DELAY", 0.01)
    seed(control, account, customers=1, per_customer=3)
    control.fault(account.id, "GET /v1/charges", status=500, count=1)
    control.reset_stats(account.id)
    client = control.client(account.secret_key, max_network_retries=2)

    # When charges are listed, Then the retry succeeds after two attempts
    assert len(client.v1.charges.list().data) == 3
    assert control.stats(account.id) == {"GET /v1/charges": 2}


def test_injected_fault_without_retries_raises_api_error(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given one injected 500 and a client that does not retry
    control.fault(account.id, "GET /v1/charges", status=500, count=1)

    # When charges are listed, Then APIError; the next call succeeds
    error = expect_error(stripe.APIError, lambda: stripe_client.v1.charges.list())
    assert error.http_status == 500
    stripe_client.v1.charges.list()


# ---- idempotency and headers -------------------------------------------------------------------


def test_idempotent_replay(stripe_client: stripe.StripeClient) -> None:
    # Given a customer created with an Idempotency-Key
    params = {"email": "once@example.com", "metadata": {"n": "1"}}
    first = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "key-1"})
    assert first.last_response is not None
    assert header(first.last_response.headers, "Idempotent-Replayed") is None

    # When the same request is sent again with the key
    again = stripe_client.v1.customers.create(params=params, options={"idempotency_key": "key-1"})

    # Then the same customer is replayed, marked as such, and only one exists
    assert again.id == first.id
    assert again.last_response is not None
    assert header(again.last_response.headers, "Idempotent-Replayed") == "true"
    assert len(stripe_client.v1.customers.list(params={"email": "once@example.com"}).data) == 1

    # And a payment replayed by its key charges once
    pi_params = {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    paid = [stripe_client.v1.payment_intents.create(params=pi_params, options={"idempotency_key": "pay"}) for _ in "ab"]
    assert paid[0].id == paid[1].id
    assert len(stripe_client.v1.charges.list(params={"payment_intent": paid[0].id}).data) == 1


def test_idempotency_key_reused_with_other_params(stripe_client: stripe.StripeClient) -> None:
    # Given a key used for one customer
    stripe_client.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": "key-2"})

    # When reused with different parameters, Then IdempotencyError naming the key, and nothing is created
    error = expect_error(
        stripe.IdempotencyError,
        lambda: stripe_client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "key-2"}
        ),
    )
    assert "key-2" in str(error.user_message)
    assert stripe_client.v1.customers.list(params={"email": "b@example.com"}).data == []


def test_metadata_round_trips_through_the_wire(stripe_client: stripe.StripeClient) -> None:
    # Given metadata with ordinary keys, digit keys and values needing encoding
    metadata = {"ripples_visitor_id": "v_1", "0": "zero", "12": "twelve", "note": "a&b=c [d]"}

    # When sent on create and then updated (an empty value deletes a key)
    customer = stripe_client.v1.customers.create(params={"metadata": metadata})
    updated = stripe_client.v1.customers.update(customer.id, params={"metadata": {"0": "", "new": "1"}})

    # Then it comes back as sent, then merged
    assert customer.metadata is not None
    assert customer.metadata.to_dict() == metadata
    assert updated.metadata is not None
    assert updated.metadata.to_dict() == {"ripples_visitor_id": "v_1", "12": "twelve", "note": "a&b=c [d]", "new": "1"}


def test_stripe_version_is_echoed(control: EmulatorControl, account: EmulatorAccount) -> None:
    # Given clients pinned to the SDK's version and to an older one
    for version in (API_VERSION, "2025-03-31.basil"):
        client = stripe.StripeClient(
            account.secret_key, base_addresses={"api": control.base_url}, stripe_version=version
        )

        # When they call, Then each response names the version it was made with
        listed = client.v1.charges.list()
        assert listed.last_response is not None
        assert header(listed.last_response.headers, "Stripe-Version") == version
        error = expect_error(stripe.InvalidRequestError, lambda c=client: c.v1.charges.retrieve("ch_missing"))
        assert header(error.headers, "Stripe-Version") == version


# ---- webhook endpoints -------------------------------------------------------------------------


def test_webhook_endpoint_lifecycle(stripe_client: stripe.StripeClient, receiver: Receiver) -> None:
    # Given an endpoint just created, Then only the create call shows its secret
    created = create_endpoint(stripe_client, receiver.url, ["charge.succeeded", "charge.refunded"])
    assert created.secret is not None
    assert created.secret.startswith("whsec_")
    assert (created.status, created.api_version, created.livemode) == ("enabled", API_VERSION, False)
    retrieved = stripe_client.v1.webhook_endpoints.retrieve(created.id)
    listed = stripe_client.v1.webhook_endpoints.list().data
    assert "secret" not in body_of(retrieved)
    assert [e.id for e in listed] == [created.id]
    assert "secret" not in body_of(stripe_client.v1.webhook_endpoints.list())["data"][0]

    # When url and events are updated, Then they change
    updated = stripe_client.v1.webhook_endpoints.update(
        created.id, params={"url": receiver.url + "?v=2", "enabled_events": ["checkout.session.completed"]}
    )
    assert (updated.url, updated.enabled_events) == (receiver.url + "?v=2", ["checkout.session.completed"])
    assert "secret" not in body_of(updated)

    # When disabled and enabled again, Then the status follows
    assert stripe_client.v1.webhook_endpoints.update(created.id, params={"disabled": True}).status == "disabled"
    assert stripe_client.v1.webhook_endpoints.update(created.id, params={"disabled": False}).status == "enabled"

    # When deleted, Then deleted=true and it is gone
    deleted = stripe_client.v1.webhook_endpoints.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    error = expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.webhook_endpoints.retrieve(created.id))
    assert error.code == "resource_missing"
    assert stripe_client.v1.webhook_endpoints.list().data == []


def test_at_most_16_webhook_endpoints(stripe_client: stripe.StripeClient, receiver: Receiver) -> None:
    # Given 16 endpoints
    endpoints = [create_endpoint(stripe_client, f"{receiver.url}?n={n}") for n in range(16)]

    # When a 17th is created, Then InvalidRequestError mentioning the maximum of 16
    error = expect_error(stripe.InvalidRequestError, lambda: create_endpoint(stripe_client, receiver.url))
    assert "maximum of 16" in str(error.user_message)
    assert len(list(stripe_client.v1.webhook_endpoints.list(params={"limit": 100}).auto_paging_iter())) == 16

    # And once one is deleted, another can be created
    stripe_client.v1.webhook_endpoints.delete(endpoints[0].id)
    create_endpoint(stripe_client, receiver.url)


def test_webhook_endpoint_validation(stripe_client: stripe.StripeClient, receiver: Receiver) -> None:
    # Given bad parameters, When creating, Then each is refused with InvalidRequestError naming the param
    for params, param in [
        ({"url": receiver.url, "enabled_events": ["no.such_event"]}, "enabled_events"),
        ({"url": "ftp://example.com/hook", "enabled_events": ["*"]}, "url"),
        ({"url": receiver.url}, "enabled_events"),
    ]:
        error = expect_error(
            stripe.InvalidRequestError, lambda p=params: stripe_client.v1.webhook_endpoints.create(params=p)
        )
        assert error.param == param


def test_live_mode_requires_https_endpoints(control: EmulatorControl) -> None:
    # Given a live-mode account
    live = control.client(control.create_account(livemode=True).secret_key)

    # When an http:// endpoint is created, Then it is refused; https is accepted, in live mode
    error = expect_error(stripe.InvalidRequestError, lambda: create_endpoint(live, "http://hooks.example.com/stripe"))
    assert error.param == "url"
    endpoint = create_endpoint(live, "https://hooks.example.com/stripe")
    assert endpoint.livemode is True
    live.v1.webhook_endpoints.delete(endpoint.id)


def test_live_and_test_modes_are_apart(control: EmulatorControl) -> None:
    # Given a live account, its live secret key and a test-mode key of the same account
    account = control.create_account(livemode=True)
    live = control.client(account.secret_key)
    test = control.client(control.create_key(account.id, sorted(PERMISSIONS)))

    # When objects are created with the live key, Then they are live
    customer = new_customer(live)
    intent = paid_intent(live, customer)
    charge = live.v1.charges.retrieve(str(intent.latest_charge))
    session = payment_session(live)
    assert (customer.livemode, intent.livemode, charge.livemode, session.livemode) == (True, True, True, True)
    assert session.id.startswith("cs_live_")
    assert {e.livemode for e in live.v1.events.list().data} == {True}

    # And the test key sees none of them
    assert test.v1.customers.list().data == []
    assert test.v1.charges.list().data == []
    assert test.v1.events.list().data == []
    error = expect_error(stripe.InvalidRequestError, lambda: test.v1.customers.retrieve(customer.id))
    assert error.code == "resource_missing"

    # And what the test key creates is test data the live key does not see
    test_customer = new_customer(test)
    assert test_customer.livemode is False
    assert [c.id for c in live.v1.customers.list().data] == [customer.id]


# ---- events ----------------------------------------------------------------------------------


def test_events_list_retrieve_and_filters(stripe_client: stripe.StripeClient) -> None:
    # Given a customer created and updated, and a payment
    customer = new_customer(stripe_client)
    stripe_client.v1.customers.update(customer.id, params={"name": "Renamed"})
    paid_intent(stripe_client, customer)

    # When events are listed, Then newest first, including each kind
    events = stripe_client.v1.events.list(params={"limit": 100})
    assert_newest_first(events.data)
    assert {"customer.created", "customer.updated", "payment_intent.created", "charge.succeeded"} <= event_types(events)

    # When filtered by type, types or a wildcard, Then only those
    created = stripe_client.v1.events.list(params={"type": "customer.created"})
    assert event_types(created) == {"customer.created"}
    assert created.data[0].data.object["id"] == customer.id
    both = stripe_client.v1.events.list(params={"types": ["customer.created", "customer.updated"]})
    assert event_types(both) == {"customer.created", "customer.updated"}
    assert len(both.data) == 2
    assert event_types(stripe_client.v1.events.list(params={"type": "charge.*"})) == {
        "charge.succeeded",
        "charge.updated",
    }

    # When retrieved by id, Then the same event, with previous attributes of an update
    updated = stripe_client.v1.events.list(params={"type": "customer.updated"}).data[0]
    again = stripe_client.v1.events.retrieve(updated.id)
    assert (again.id, again.type, again.api_version) == (updated.id, "customer.updated", API_VERSION)
    assert again.data.previous_attributes is not None
    assert again.data.previous_attributes.to_dict() == {"name": "Buyer"}


def test_events_older_than_30_days_are_not_listed(
    stripe_client: stripe.StripeClient, shifted_clock: Callable[[int], int]
) -> None:
    # Given an event from now
    customer = new_customer(stripe_client)
    event = stripe_client.v1.events.list(params={"type": "customer.created"}).data[0]

    # When 31 days pass, Then it is neither listed nor retrievable
    shifted_clock(31 * 86_400)
    assert stripe_client.v1.events.list().data == []
    error = expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.events.retrieve(event.id))
    assert error.code == "resource_missing"

    # But the customer it was about is still there, and new events are listed
    assert stripe_client.v1.customers.retrieve(customer.id).id == customer.id
    new_customer(stripe_client, email="later@example.com")
    assert event_types(stripe_client.v1.events.list()) == {"customer.created"}
    assert len(stripe_client.v1.events.list().data) == 1


# ---- control API -------------------------------------------------------------------------------


def test_stats_count_requests_by_endpoint_template(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given counters reset
    seed(control, account, customers=1, per_customer=2)
    control.reset_stats(account.id)
    assert control.stats(account.id) == {}

    # When the SDK lists charges, retrieves two (one missing) and asks for an unknown URL
    charges = stripe_client.v1.charges.list()
    stripe_client.v1.charges.retrieve(charges.data[0].id)
    expect_error(stripe.InvalidRequestError, lambda: stripe_client.v1.charges.retrieve("ch_missing"))
    expect_error(stripe.InvalidRequestError, lambda: stripe_client.raw_request("get", "/v1/nonsense"))
    stripe_client.v1.customers.create(params={"email": "x@example.com"})

    # Then requests are counted per METHOD and path template, and only Stripe's routes count
    assert control.stats(account.id) == {
        "GET /v1/charges": 1,
        "GET /v1/charges/{id}": 2,
        "POST /v1/customers": 1,
    }

    # And reset empties them
    control.reset_stats(account.id)
    assert control.stats(account.id) == {}


# ---- object shapes -----------------------------------------------------------------------------


def assert_stripe_keys(resource: str, data: Mapping[str, Any], extra: frozenset[str] = frozenset()) -> None:
    """`data` has the fields of Stripe's example `resource`: only includable ones may be absent (and are,
    unless expanded), and only those in `extra` may be added."""
    expected = fixture_keys(resource)
    includable = INCLUDABLE.get(resource, frozenset())
    keys = set(data)
    assert sorted(expected - keys - includable) == [], f"{resource} lacks fields"
    assert sorted(keys - expected - extra) == [], f"{resource} has fields Stripe's has not"
    assert sorted(includable & keys - extra) == [], f"{resource} shows includable fields unexpanded"


def test_objects_have_stripes_fields(stripe_client: stripe.StripeClient, receiver: Receiver) -> None:
    # Given objects made through real flows: a paid and refunded payment, a Checkout payment,
    # a subscription with its invoice, and a webhook endpoint
    customer = new_customer(stripe_client)
    intent = paid_intent(stripe_client, customer)
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    refund = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 500})
    charge_with_refunds = stripe_client.v1.charges.retrieve(charge.id, params={"expand": ["refunds"]})
    session = payment_session(stripe_client)
    completed = complete_session(stripe_client, session.id, "payer@example.com")
    price = recurring_price(stripe_client)
    product = stripe_client.v1.products.retrieve(str(price.product))
    sub = subscribe(stripe_client, price)
    sub_session = stripe_client.v1.checkout.sessions.create(
        params={"mode": "subscription", "line_items": [{"price": price.id, "quantity": 2}]}
    )
    completed_sub_session = complete_session(stripe_client, sub_session.id, "subscriber@example.com")
    invoice = stripe_client.v1.invoices.retrieve(str(sub.latest_invoice))
    invoice_with_payments = stripe_client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    invoice_payment = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    endpoint = create_endpoint(stripe_client, receiver.url)
    deleted = stripe_client.v1.webhook_endpoints.delete(create_endpoint(stripe_client, receiver.url + "?gone=1").id)

    # Then each has exactly the fields of Stripe's example
    assert_stripe_keys("customer", body_of(customer))
    assert_stripe_keys("payment_intent", body_of(intent))
    assert_stripe_keys("charge", body_of(charge))
    assert_stripe_keys("charge", body_of(charge_with_refunds), extra=frozenset({"refunds"}))
    assert [r["id"] for r in body_of(charge_with_refunds)["refunds"]["data"]] == [refund.id]
    assert_stripe_keys("refund", body_of(refund))
    for session_json in (body_of(session), completed, body_of(sub_session), completed_sub_session):
        assert_stripe_keys("checkout.session", session_json)
    assert_stripe_keys("price", body_of(price))
    assert_stripe_keys("product", body_of(product))
    sub_json = body_of(sub)
    assert_stripe_keys("subscription", sub_json)
    for item in sub_json["items"]["data"]:
        assert_stripe_keys("subscription_item", item)
        assert_stripe_keys("price", item["price"])
        assert_stripe_keys("plan", item["plan"])
    assert_stripe_keys("invoice", body_of(invoice))
    for line in body_of(invoice)["lines"]["data"]:
        assert_stripe_keys("line_item", line)
    payments_json = body_of(invoice_with_payments)
    assert_stripe_keys("invoice", payments_json, extra=frozenset({"payments"}))
    for payment in payments_json["payments"]["data"]:
        assert_stripe_keys("invoice_payment", payment)
    assert_stripe_keys("invoice_payment", body_of(stripe_client.v1.invoice_payments.retrieve(invoice_payment.id)))
    assert_stripe_keys("webhook_endpoint", body_of(endpoint), extra=frozenset({"secret"}))
    assert_stripe_keys("webhook_endpoint", body_of(stripe_client.v1.webhook_endpoints.retrieve(endpoint.id)))
    assert_stripe_keys("deleted_webhook_endpoint", body_of(deleted))

    # And so does every event and the object it carries
    events = list(stripe_client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    assert len(events) > 20
    for event in events:
        event_json = event.to_dict()
        assert_stripe_keys("event", event_json)
        obj = event_json["data"]["object"]
        assert_stripe_keys(obj["object"], obj)


def test_seeded_objects_have_stripes_fields(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given seeded history with refunds and Checkout Sessions
    control.seed(account.id, customers=3, charges_per_customer=3, failure_rate=0.3, refund_rate=1, checkout_rate=1)

    # When each kind is listed, Then every object has exactly the fields of Stripe's example
    for resource, listed in [
        ("customer", stripe_client.v1.customers.list(params={"limit": 100})),
        ("charge", stripe_client.v1.charges.list(params={"limit": 100})),
        ("payment_intent", stripe_client.v1.payment_intents.list(params={"limit": 100})),
        ("refund", stripe_client.v1.refunds.list(params={"limit": 100})),
        ("checkout.session", stripe_client.v1.checkout.sessions.list(params={"limit": 100})),
    ]:
        data = body_of(listed)["data"]
        assert data, resource
        for obj in data:
            assert_stripe_keys(resource, obj)
