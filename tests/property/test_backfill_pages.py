"""Domain rule 3's property with backfill pages: the same worlds as test_order_independence, where
runs of consecutive charge or session inputs of a drawn order arrive as list pages (as the backfill
reads them: several charges or sessions in one engine call, one decision over their scopes; a page
of charges takes the batched fast path for stored customers) instead of one webhook each. Every
grouping ends in the state the canonical webhook order gives, which is rule 2 on the whole world;
after every step the invariant holds and the state is rule 2 on what was received.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from unittest import mock

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from local.iam.identity import acting_as
from shared.revenue import engine

from .harness import Replay, Stack, assert_rule_2, run
from .world import PROJECT, Input, World, stream, worlds

T = TypeVar("T")


def _strict_attempts(what: str, attempt_once: Callable[[], T]) -> T:
    """engine._attempts without the retries: inputs are applied one at a time, so a StaleUpdate is
    a decision conflicting with itself, and fails the test."""
    return attempt_once()


@contextmanager
def strict_pages() -> Iterator[None]:
    with mock.patch.object(engine, "_attempts", _strict_attempts):
        yield


def kind(item: Input) -> str | None:
    """What page an input can be part of: charges, sessions, or none (a visitor PUT)."""
    if item.session is not None:
        return "sessions"
    return "charges" if item.charge is not None else None


def pages(order: list[Input], sizes: list[int]) -> list[list[Input]]:
    """Runs of one kind cut into pages of the drawn sizes; a page lists an object once (as Stripe's
    list does: a second state of the same charge starts the next page). Visitor PUTs stay alone."""
    grouped: list[list[Input]] = []
    for item in order:
        last = grouped[-1] if grouped else None
        size = sizes[len(grouped) % len(sizes)]
        if (
            last is not None
            and kind(item) is not None
            and kind(last[0]) == kind(item)
            and len(last) < size
            and all((i.charge, i.session) != (item.charge, item.session) for i in last)
        ):
            last.append(item)
        else:
            grouped.append([item])
    return grouped


class PageReplay(Replay):
    def apply_page(self, page: list[Input]) -> str:
        if len(page) == 1 and kind(page[0]) is None:
            return self.apply(page[0])
        objects = [i.stripe_event["data"]["object"] for i in page if i.stripe_event is not None]
        with strict_pages(), acting_as("BackfillFunction"):
            if kind(page[0]) == "charges":
                seen_at = max(i.at for i in page)
                outcome = engine.on_charges_page(PROJECT, objects, self.applier.fetch_customer, seen_at)
                result = f"page booked {outcome.booked}, refunds {outcome.refunds}"
            else:
                done = engine.on_sessions_page(
                    PROJECT, objects, self.applier.fetch_customer, self.applier.invoice_payment_intents
                )
                result = f"sessions {done}"
        self.applied.extend(page)  # received at once: checked as Replay.apply checks one input
        self.outcomes.append((f"page {[i.label for i in page]}", result))
        self.check()
        return result


@st.composite
def world_and_pages(draw: st.DrawFn) -> tuple[World, list[Input], list[list[Input]]]:
    world = draw(worlds())
    canonical = stream(world)
    again = draw(st.lists(st.sampled_from(canonical), max_size=3))  # a page read again, a webhook twice
    order = draw(st.permutations([*canonical, *again]))
    # Charges read after their customers' sessions and earlier charges were stored (a backfill
    # running behind the webhooks): the fast path for stored customers, linked or not.
    late = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    behind = [i for i, is_late in zip(order, late, strict=True) if is_late and kind(i) == "charges"]
    order = [i for i in order if i not in behind] + behind
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    return world, canonical, pages(order, sizes)


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world_and_pages())
def test_pages_in_any_order_end_in_the_state_of_the_webhooks(
    stack: Stack, case: tuple[World, list[Input], list[list[Input]]]
) -> None:
    world, canonical, grouped = case
    note(f"pages: {grouped}")
    in_order = run(world, canonical, stack)
    replay = PageReplay(world, stack)
    for page in grouped:
        replay.apply_page(page)
    note(f"outcomes: {replay.outcomes}")
    assert replay.snapshot() == in_order.snapshot
    assert_rule_2(world, in_order.snapshot)
