"""Per-account latency (`POST /_emulator/latency`): an account's API requests take at least the time
set, counted from arrival, without slowing other accounts, the control API or webhook deliveries."""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.core import MAX_LATENCY_MS
from local.stripe_emulator.server import RunningEmulator
from tests.conftest import Receiver

LATENCY_MS = 300
LATENCY_S = LATENCY_MS / 1000
FAST_S = 0.15  # an unslowed request on this machine takes milliseconds


def timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


@pytest.fixture
def slow(control: EmulatorControl, account: EmulatorAccount) -> Iterator[EmulatorAccount]:
    """The `account` with LATENCY_MS set, reset afterwards."""
    control.set_latency(account.id, LATENCY_MS)
    yield account
    control.set_latency(account.id, 0)


@pytest.fixture
def other(control: EmulatorControl) -> stripe.StripeClient:
    """The SDK on another, unslowed account, its connection already open."""
    client = control.client(control.create_account().secret_key)
    client.v1.customers.list()
    return client


def control_error(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        call()
    body: dict[str, Any] = json.loads(caught.value.read())
    return caught.value.code, body


def test_requests_of_the_account_take_at_least_the_latency_and_others_stay_fast(
    control: EmulatorControl, slow: EmulatorAccount, other: stripe.StripeClient
) -> None:
    # Given an account with 300 ms of latency, read back through the control API
    assert control.latency(slow.id) == LATENCY_MS
    # When it lists customers through the official SDK, with its secret or its restricted key
    for key in (slow.secret_key, slow.restricted_key):
        client = control.client(key)
        started = time.monotonic()
        client.v1.customers.list()
        # Then each request takes at least 300 ms
        assert time.monotonic() - started >= LATENCY_S
    # And errors of the account are slowed too (an unknown customer: 404)
    started = time.monotonic()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_missing")
    assert time.monotonic() - started >= LATENCY_S
    # And another account's requests stay fast
    assert timed(lambda: other.v1.customers.list()) < FAST_S
    # And so do control calls about the slow account
    assert timed(lambda: control.stats(slow.id)) < FAST_S


def test_concurrent_requests_of_the_account_are_delayed_in_parallel_without_blocking_others(
    control: EmulatorControl, slow: EmulatorAccount, other: stripe.StripeClient
) -> None:
    # Given the slow account's SDK client, its connections warm
    client = control.client(slow.secret_key)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.v1.customers.list(), range(8)))
        # When 8 requests are made at once
        started = time.monotonic()
        durations = [pool.submit(timed, lambda: client.v1.customers.list()) for _ in range(8)]
        # Then, while they wait, another account and the control API are answered at once (no lock held)
        time.sleep(LATENCY_S / 3)
        assert not any(d.done() for d in durations)
        assert timed(lambda: other.v1.customers.list()) < FAST_S
        assert timed(lambda: control.latency(slow.id)) < FAST_S
        results = [d.result() for d in durations]
        total = time.monotonic() - started
    # And each took at least the latency, all of them together well under 8 x 300 ms
    assert min(results) >= LATENCY_S
    assert total < 8 * LATENCY_S / 2


def test_a_slow_request_waits_only_the_remainder(
    emulator: RunningEmulator, control: EmulatorControl, slow: EmulatorAccount
) -> None:
    # Given a request of the slow account that is held up 400 ms inside the emulator (its lock taken)
    client = control.client(slow.secret_key)
    client.v1.customers.list()
    held_s = 0.4
    with ThreadPoolExecutor(1) as pool, emulator.emulator.lock:
        duration = pool.submit(timed, lambda: client.v1.customers.list())
        time.sleep(held_s)
    # When it is answered, Then it took the 400 ms, not 400 ms plus 300 ms of latency
    assert held_s <= duration.result() < held_s + LATENCY_S * 2 / 3


def test_zero_turns_latency_off(control: EmulatorControl, slow: EmulatorAccount) -> None:
    # Given a slow account, When its latency is set to 0
    client = control.client(slow.secret_key)
    assert timed(lambda: client.v1.customers.list()) >= LATENCY_S
    assert control.set_latency(slow.id, 0) == 0
    # Then it reads 0 and its requests are fast again
    assert control.latency(slow.id) == 0
    assert timed(lambda: client.v1.customers.list()) < FAST_S


@pytest.mark.parametrize("ms", [-1, MAX_LATENCY_MS + 1, 1.5, "300", True, None])
def test_a_bad_value_is_a_400_and_changes_nothing(control: EmulatorControl, slow: EmulatorAccount, ms: Any) -> None:
    # When a negative, absurd or non-integer latency is set
    status, body = control_error(lambda: control.call("POST", "latency", {"account": slow.id, "ms": ms}))
    # Then it is a 400 in the control API's error shape
    assert status == 400
    assert "ms must be an integer" in body["error"]["message"]
    # And the account keeps its latency
    assert control.latency(slow.id) == LATENCY_MS
    client = control.client(slow.secret_key)
    assert timed(lambda: client.v1.customers.list()) >= LATENCY_S


def test_an_unknown_account_is_a_404(control: EmulatorControl) -> None:
    status, body = control_error(lambda: control.set_latency("acct_missing", 100))
    assert status == 404
    assert body["error"]["message"] == "no such account: acct_missing"


def test_webhook_deliveries_are_not_delayed(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    # Given an endpoint for customer.created on an account with a long latency
    stripe_client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["customer.created"]})
    control.set_latency(account.id, 1000)
    try:
        with ThreadPoolExecutor(1) as pool:
            # When a customer is created
            created = pool.submit(lambda: stripe_client.v1.customers.create(params={"email": "a@example.com"}))
            deadline = time.monotonic() + 0.9
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.01)
            # Then the event is delivered while the API call that caused it is still waiting
            delivered_while_waiting = bool(receiver.received) and not created.done()
            customer = created.result()
        assert delivered_while_waiting
        assert json.loads(receiver.received[0].body)["data"]["object"]["id"] == customer.id
    finally:
        control.set_latency(account.id, 0)
