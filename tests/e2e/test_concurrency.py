"""Parallel, duplicated, shuffled webhook deliveries end in the state one-at-a-time delivery gives.

Over the real local stack (a subprocess of its own, like tests/e2e/, with a known moto port so the
final state can be read from DynamoDB directly): for each seed a world is generated in the Stripe
emulator (visitors identified and anonymous, customers with and without matching emails, Checkout in
payment and subscription mode with and without `ripples_visitor_id`, direct charges, guest checkouts,
manual captures, refunds, renewals, subscription updates and cancellations, link moves, email
changes; see tests/reliability/world.py). Projects connected afterwards receive the whole history as
signed webhooks: one project each event once, in order, from one sender; another every event three
times, shuffled, from 16 senders with Stripe-like retries on 5xx, the visitor PUTs among them in
their order. The final ledger, totals, links, timelines, context events and plans must be equal, and
every project must hold the ledger/total invariant (domain rule 4). The first seed also runs the
serial delivery twice: the reference itself must be deterministic.

`make reliability` runs a larger sweep (bench/reliability.py); docs/reliability.md explains both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.reliability.harness import run_world
from tests.reliability.stack import LocalStack, local_stack
from tests.reliability.world import TEST, StripeEvent

SEEDS = (11, 12, 13)


def booked_charges(events: list[StripeEvent]) -> set[str]:
    """Charges that some event shows captured and succeeded: what rule 1 books."""
    booked = set()
    for event in events:
        obj = json.loads(event.body)["data"]["object"]
        if event.type.startswith("charge.") and obj["captured"] and obj["status"] == "succeeded":
            booked.add(obj["id"])
    return booked


@pytest.fixture(scope="module")
def reliability_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Our own `python -m local.stack`: the e2e `stack` fixture does not expose moto (MOTO_PORT)."""
    with local_stack(tmp_path_factory.mktemp("reliability-stack")) as stack:
        yield stack


@pytest.mark.parametrize("seed", SEEDS)
def test_parallel_duplicated_shuffled_delivery_ends_as_serial_delivery(
    reliability_stack: LocalStack, seed: int
) -> None:
    report = run_world(reliability_stack, seed, TEST, threads=(16,), copies=3, serial_twice=seed == SEEDS[0])
    problems = report.problems()
    parallel = report.parallel[0]
    # The harness reads what it delivered: the serial run booked exactly the captured charges
    assert set(report.serial.state["ledger"]) == booked_charges(report.history.events), report.render()
    # Every event was delivered three times and acknowledged; the visitor PUTs once each
    assert parallel.stats.webhooks == 3 * len(report.history.events), report.render()
    assert parallel.stats.sent == parallel.stats.webhooks + len(report.history.puts)
    # And the end state is the serial run's, invariant held everywhere
    assert not problems, "\n".join([report.render(), *problems, f"stack log: {reliability_stack.log_path}"])
