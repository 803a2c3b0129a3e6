"""A backfill page racing the webhooks on its customers (issue 9): the page's transactions that meet a
concurrent write fail alone, the others are written, and the page decides again only what is left.
Money is booked once and the ledger/total invariant holds after every transaction (domain rules 1, 4).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from unittest import mock

from local.iam.identity import acting_as
from shared.observability import Metric
from shared.revenue import engine, keys
from tests.conftest import AwsEnv
from tests.property.harness import connect_project
from tests.property.world import event
from tests.revenue_checks import assert_invariant, dynamodb_hook, scan, unattributed_of

from .test_page_budget import CUSTOMERS, PROJECT, T0, charge, no_stripe


def test_a_webhook_booking_a_charge_of_the_page_meanwhile_costs_the_page_one_retry(aws: AwsEnv) -> None:
    # Given the customers stored by a first page, and a second page read from Stripe
    connect_project(aws, PROJECT)
    with acting_as("BackfillFunction"):
        engine.on_charges_page(PROJECT, [charge(i, 0) for i in range(CUSTOMERS)], no_stripe, T0)
    page = [charge(i, 1) for i in range(CUSTOMERS)]
    raced: list[str] = []
    written: Counter[str] = Counter()

    def webhook_first(**_: Any) -> None:
        """Before the page's first transaction: the webhook of the charge of the customer it starts with."""
        if raced:
            return
        raced.append(page[0]["id"])
        with acting_as("StripeWebhookFunction"):
            booked = engine.on_charge(PROJECT, event("evt_raced", "charge.succeeded", T0, page[0]), no_stripe)
        assert booked.result == "booked"

    def invariant_after_each(**_: Any) -> None:
        written["transactions"] += 1
        assert_invariant(aws.revenue_table, in_process=True)

    booked_metric: list[Metric] = []
    # When the page is booked while the webhook writes one of its charges first
    with (
        mock.patch.object(engine, "count", lambda metric, value=1: booked_metric.extend([metric] * value)),
        dynamodb_hook("before-call.dynamodb.TransactWriteItems", webhook_first),
        dynamodb_hook("after-call.dynamodb.TransactWriteItems", invariant_after_each),
        acting_as("BackfillFunction"),
    ):
        outcome = engine.on_charges_page(PROJECT, page, no_stripe, T0)

    # Then the page's other transactions were written despite the first failing: its retry booked
    # only the rest of that one; every charge is booked once, and the invariant held throughout
    assert raced
    assert 0 < outcome.booked < CUSTOMERS // 4, outcome
    items = scan(aws.revenue_table)
    ledger = [i for i in items if i["sk"] == keys.LEDGER]
    assert len(ledger) == 2 * CUSTOMERS
    expected: Counter[str] = Counter()
    for i in range(CUSTOMERS):
        expected[("usd", "eur", "jpy")[i % 3]] += 2 * (1000 + i)
    assert unattributed_of(items) == dict(expected)
    assert_invariant(aws.revenue_table)
    assert written["transactions"] <= 10, written
    # and the ChargesBooked metric counted each charge once: the page's written transactions too
    assert booked_metric.count(Metric.CHARGES_BOOKED) == CUSTOMERS
