"""The request budget of a backfill page (issue 9): a page of 100 charges costs a few BatchGetItems
for all its reads (100 keys each) and transactions of at most 100 items, never a request per charge
or per customer (no Query, no TransactGetItems, no Stripe read when customers come expanded).

Counted with botocore's hooks on the functions' clients, as `make bench-backfill` counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from local.iam.identity import acting_as
from local.stripe_emulator.fixtures import build
from shared.revenue import engine, keys
from shared.revenue.models import CustomerRecord
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests.conftest import AwsEnv
from tests.property.harness import connect_project
from tests.revenue_checks import assert_invariant, dynamodb_hook, scan, unattributed_of

PROJECT = "proj-1"
T0 = 1_790_000_000
CUSTOMERS = 100
LINKED = 10  # customers whose email a visitor is identified with: linked by their first charge (tier 2)


def customer(i: int) -> dict[str, Any]:
    return build("customer", id=f"cus_{i:03d}", email=f"buyer{i}@shop.test", metadata={}, livemode=False)


def charge(i: int, n: int) -> dict[str, Any]:
    """The n-th charge of customer i, as a list page brings it (customer expanded)."""
    obj = build(
        "charge",
        id=f"ch_{i:03d}_{n}",
        created=T0 + n * 86_400 + i,
        amount=1000 + i,
        amount_captured=1000 + i,
        amount_refunded=0,
        captured=True,
        paid=True,
        status="succeeded",
        currency=("usd", "eur", "jpy")[i % 3],
        customer=customer(i),
        payment_intent=f"pi_{i:03d}_{n}",
        metadata={},
        receipt_email=None,
        livemode=False,
    )
    obj["billing_details"]["email"] = f"buyer{i}@shop.test"
    return obj


def no_stripe(customer_id: str) -> CustomerRecord:
    raise AssertionError(f"a Stripe read for an expanded customer: {customer_id}")


@pytest.fixture
def requests(aws: AwsEnv) -> Iterator[Counter[str]]:
    connect_project(aws, PROJECT)
    service = VisitorService(DynamoVisitorStore.default())
    for i in range(LINKED):
        service.save(PROJECT, f"v{i}", VisitorChanges(email=f"buyer{i}@shop.test"))
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    with dynamodb_hook("before-call.dynamodb", count):
        yield counts


def book_page(n: int) -> engine.PageOutcome:
    with acting_as("BackfillFunction"):
        return engine.on_charges_page(PROJECT, [charge(i, n) for i in range(CUSTOMERS)], no_stripe, T0)


def test_a_page_of_new_customers_then_one_of_stored_customers_stay_within_budget(
    aws: AwsEnv, requests: Counter[str]
) -> None:
    # Given a page of 100 new charges of 100 new customers (10 of them match a visitor's email)
    assert book_page(0).booked == CUSTOMERS
    first = dict(requests)
    # Then reading it took 5 BatchGetItems (100 ledger entries, customers, joins, email heads; the
    # owners' profiles: their source, for the rollups) and writing it about 6 items a charge, 100 to
    # a transaction (with the day's rollup items and their month's version items)
    assert set(first) <= {"BatchGetItem", "TransactWriteItems"}, first
    assert first["BatchGetItem"] <= 5, first
    assert first["TransactWriteItems"] <= 8, first

    # When the next page brings each customer's second charge (stored customers: the fast path)
    requests.clear()
    assert book_page(1).booked == CUSTOMERS
    second = dict(requests)
    assert set(second) <= {"BatchGetItem", "TransactWriteItems"}, second
    assert second["BatchGetItem"] <= 5, second
    assert second["TransactWriteItems"] <= 6, second

    # And the money is booked once, each linked customer's later charge on its link (tier 3)
    requests.clear()
    assert book_page(1).booked == 0  # the same page read again
    assert dict(requests) == {"BatchGetItem": 4}
    items = scan(aws.revenue_table)
    ledger = {i["charge_id"]: i for i in items if i["sk"] == keys.LEDGER}
    assert len(ledger) == 2 * CUSTOMERS
    for i in range(LINKED):
        assert (ledger[f"ch_{i:03d}_0"]["visitor_id"], ledger[f"ch_{i:03d}_0"]["tier"]) == (f"v{i}", 2)
        assert (ledger[f"ch_{i:03d}_1"]["visitor_id"], ledger[f"ch_{i:03d}_1"]["tier"]) == (f"v{i}", 3)
    unattributed = Counter[str]()
    for i in range(LINKED, CUSTOMERS):
        unattributed[("usd", "eur", "jpy")[i % 3]] += 2 * (1000 + i)
    assert unattributed_of(items) == dict(unattributed)
    assert_invariant(aws.revenue_table)
