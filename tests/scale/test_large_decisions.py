"""Decisions of any size (issue 7): a customer with 1,000 charges whose link moves.

The move is written as a chain of transactions of at most 100 items, each keeping the ledger/total
invariant (domain rule 4); a crash in the middle leaves the customer `dirty`, and the retry Stripe
makes (or any later event of the customer) finishes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.iam.identity import acting_as
from shared.revenue import engine, keys
from shared.revenue.decision import Arrivals
from shared.revenue.models import ChargeFacts, CustomerRecord
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import revenue_checks
from tests.conftest import AwsEnv
from tests.property.harness import connect_project
from tests.property.world import ChargeSpec, CustomerSpec, SessionSpec, World, charge_object, event, session_object
from tests.revenue_checks import assert_invariant, dynamodb_hook, scan

PROJECT = "proj-1"  # tests.property.harness.PROJECT
WEBHOOK = "StripeWebhookFunction"  # the decisions below run as the webhook does (its role)
T0 = 1_790_000_000
CUSTOMER = CustomerSpec("cus_big", "ann@shop.test", None)


class Crash(Exception):
    """The Lambda dying right after a transaction took effect."""


def world(charges: int) -> World:
    return World(
        visitors=(),
        customers=(CUSTOMER,),
        charges=tuple(
            ChargeSpec(f"ch_{i:04d}", CUSTOMER.id, T0 + 60 * i, 100 + i, "usd", f"pi_{i:04d}", refunds=_refunds(i))
            for i in range(charges)
        ),
        # earlier than every charge: when it arrives it becomes the customer's link (a free trial)
        sessions=(SessionSpec("cs_trial", T0 - 60, CUSTOMER.id, None, meta_visitor="v2"),),
    )


def _refunds(i: int) -> tuple[int, ...]:
    return (i % 7,) if i % 7 else ()  # most charges partly refunded: a move carries their refund events


def fetch_customer(customer_id: str) -> CustomerRecord:
    return CustomerRecord(customer_id, email=CUSTOMER.email or "")


def book_history(w: World) -> None:
    """All charges in one decision, as a backfill page would bring them: itself a chain."""
    facts = {c.id: ChargeFacts.from_stripe(charge_object(c, c.refunded, w)) for c in w.charges}
    with acting_as(WEBHOOK):
        engine._decide(PROJECT, {f"CUS#{CUSTOMER.id}"}, Arrivals(charges=facts), fetch_customer)


def deliver_session(w: World) -> str:
    session = session_object(w.sessions[0], w)
    with acting_as(WEBHOOK):
        return engine.on_session(
            PROJECT, event("evt_trial", "checkout.session.completed", T0, session), fetch_customer, lambda _: ()
        ).result


@pytest.fixture
def transactions(aws: AwsEnv) -> Iterator[list[int]]:
    """The size of every TransactWriteItems, in order."""
    sizes: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["TransactItems"]))

    with dynamodb_hook("before-parameter-build.dynamodb.TransactWriteItems", count):
        yield sizes


def given_visitors() -> None:
    service = VisitorService(DynamoVisitorStore.default())
    service.save(PROJECT, "v1", VisitorChanges(email="ann@shop.test"))
    service.save(PROJECT, "v2", VisitorChanges())


def owners(table: str) -> dict[str, tuple[str | None, int | None]]:
    return {i["charge_id"]: (i.get("visitor_id"), i.get("tier")) for i in scan(table) if i["sk"] == keys.LEDGER}


def root(table: str) -> dict[str, Any]:
    return next(i for i in scan(table) if i["sk"] == keys.LINK and i["customer_id"] == CUSTOMER.id)


def test_a_link_move_of_1000_charges_completes_in_transactions_of_at_most_100_items(
    aws: AwsEnv, transactions: list[int]
) -> None:
    # Given a customer whose 1,000 charges went to v1 by its email (tier 2, then tier 3)
    connect_project(aws, PROJECT)
    given_visitors()
    w = world(1000)
    book_history(w)
    assert set(owners(aws.revenue_table).values()) == {("v1", 2), ("v1", 3)}
    booked_in = len(transactions)
    transactions.clear()
    checked: list[int] = []

    def invariant_after_each(**_: Any) -> None:
        checked.append(1)
        assert_invariant(aws.revenue_table, in_process=True)

    # When a session earlier than all of them names v2 (the link moves: every charge with it)
    with dynamodb_hook("after-call.dynamodb.TransactWriteItems", invariant_after_each):
        assert deliver_session(w) == "resolved"

    # Then every charge is v2's, written in many transactions, none over DynamoDB's 100 items
    assert set(owners(aws.revenue_table).values()) == {("v2", 3)}
    assert booked_in > 10, "booking 1,000 charges in one decision is itself a chain"
    assert len(transactions) > 10, transactions
    assert max(transactions) <= 100
    assert len(checked) == len(transactions)
    net = sum(c.booked - c.refunded for c in w.charges)
    profile = next(i for i in scan(aws.revenue_table) if i["sk"] == keys.PROFILE and i["visitor_id"] == "v2")
    assert revenue_checks.totals_of(profile) == {"usd": net}
    assert revenue_checks.linked_customers_of(profile) == (CUSTOMER.id,)
    assert "dirty" not in root(aws.revenue_table)


def move_cut_short(aws: AwsEnv, crash_after: int = 1) -> World:
    """The customer's 200 charges booked for v1, then the session moving them to v2 crashing after
    its `crash_after`-th transaction: the customer is left marked dirty."""
    connect_project(aws, PROJECT)
    given_visitors()
    w = world(200)
    book_history(w)
    written: list[int] = []

    def crash(**_: Any) -> None:
        written.append(1)
        if len(written) == crash_after:
            raise Crash()

    with dynamodb_hook("after-call.dynamodb.TransactWriteItems", crash), pytest.raises(Crash):
        deliver_session(w)
    assert root(aws.revenue_table)["dirty"] is True
    return w


def deliver_charge(charge_event: dict[str, Any]) -> str:
    with acting_as(WEBHOOK):
        return engine.on_charge(PROJECT, charge_event, fetch_customer).result


@pytest.mark.parametrize("crash_after", [1, 3])
def test_a_move_cut_short_by_a_crash_is_finished_by_the_retry(aws: AwsEnv, crash_after: int) -> None:
    w = move_cut_short(aws, crash_after)
    # The chain stopped half way: the customer is marked, the invariant holds, the money is split
    assert_invariant(aws.revenue_table)
    assert {o for o, _ in owners(aws.revenue_table).values()} == {"v1", "v2"}
    # Stripe retries the event (it was answered 5xx): the move is finished
    assert deliver_session(w) == "resolved"
    assert set(owners(aws.revenue_table).values()) == {("v2", 3)}
    assert "dirty" not in root(aws.revenue_table)
    assert_invariant(aws.revenue_table)


def test_a_later_charge_of_a_customer_mid_move_finishes_the_move(aws: AwsEnv) -> None:
    w = move_cut_short(aws)

    # A new charge of the customer arrives before Stripe's retry: it must not take the fast path
    late = ChargeSpec("ch_late", CUSTOMER.id, T0 + 10**6, 5000, "usd", "pi_late")
    late_world = World((), (CUSTOMER,), (*w.charges, late), w.sessions)
    late_event = event("evt_late", "charge.succeeded", late.created, charge_object(late, 0, late_world))
    assert deliver_charge(late_event) == "booked"
    assert set(owners(aws.revenue_table).values()) == {("v2", 3)}
    assert "dirty" not in root(aws.revenue_table)
    assert_invariant(aws.revenue_table)


def test_a_refund_of_a_customer_mid_move_finishes_the_move_and_is_booked(aws: AwsEnv) -> None:
    w = move_cut_short(aws)

    # A refund of one of its charges arrives before Stripe's retry of the session
    charge = w.charges[0]
    refund_event = event("evt_refund", "charge.refunded", charge.created + 10, charge_object(charge, charge.booked, w))
    assert deliver_charge(refund_event) == "refund_booked"
    assert set(owners(aws.revenue_table).values()) == {("v2", 3)}
    entry = next(i for i in scan(aws.revenue_table) if i["sk"] == keys.LEDGER and i["charge_id"] == charge.id)
    assert entry["refunded"] == charge.booked
    assert "dirty" not in root(aws.revenue_table)
    assert_invariant(aws.revenue_table)
