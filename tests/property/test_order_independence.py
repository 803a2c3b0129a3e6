"""Domain rule 3's property, on the engine and the data layer (moto): for generated event streams,
every permutation and duplication ends in the same ledger, totals and customer links, and the
invariant (rule 4) holds after every step.

Each example is a small world (tests/property/world.py) applied twice to emptied tables: once in
canonical order (by time), once in an order hypothesis draws, with up to 4 inputs delivered again.
Both must end in the same state (ledger, per-visitor and unattributed totals, customer links, where
customers' Checkout Completed events are placed; each charge's timeline events with its owner), and
that state must be what rule 2 gives on the whole world.

40 examples run in `make test` (~30 s); PROPERTY_EXAMPLES=1000 searches deeper (~15 min, add
`--timeout=0`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from .harness import Stack, assert_rule_2, run
from .world import Input, World, stream, worlds


@st.composite
def world_and_order(draw: st.DrawFn) -> tuple[World, list[Input], list[Input]]:
    world = draw(worlds())
    canonical = stream(world)
    again = draw(st.lists(st.sampled_from(canonical), max_size=4))  # redeliveries (same event, same PUT)
    order = draw(st.permutations([*canonical, *again]))
    return world, canonical, order


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world_and_order())
def test_every_order_and_duplication_ends_in_the_same_state(
    stack: Stack, case: tuple[World, list[Input], list[Input]]
) -> None:
    world, canonical, order = case
    note(f"canonical: {canonical}")
    note(f"permuted:  {order}")

    in_order = run(world, canonical, stack)
    shuffled = run(world, order, stack)
    note(f"canonical outcomes: {in_order.outcomes}")
    note(f"permuted outcomes:  {shuffled.outcomes}")

    # Order and duplicates change nothing.
    assert shuffled.snapshot == in_order.snapshot

    # And that state is rule 2 on all of the evidence.
    assert_rule_2(world, in_order.snapshot)
