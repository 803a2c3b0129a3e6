"""A run's slices (shared.backfill.slices): planned ranges, and how a dense one splits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.backfill.slices import FANOUT, HISTORY_STARTS, SliceMessage, heads, plan, split

NOW = 1_800_000_000
DAY = 86_400


def test_the_planned_slices_of_a_phase_cover_history_without_overlap() -> None:
    for phase in ("checkout_sessions", "charges", "subscriptions"):
        ranges = sorted((s.gte, s.lt or NOW + 1) for s in plan("p", 1, NOW, 16) if s.phase == phase)
        assert ranges[0][0] == HISTORY_STARTS
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


@given(
    gte=st.integers(HISTORY_STARTS, NOW - 2 * DAY),
    oldest_offset=st.integers(1, 4000 * DAY),
    page_span=st.integers(1, 30 * DAY),
    index=st.integers(0, 7),
    depth=st.integers(0, 12),
    heads=st.integers(1, 12),
)
def test_a_split_hands_the_rest_of_the_range_to_contiguous_children(
    gte: int, oldest_offset: int, page_span: int, index: int, depth: int, heads: int
) -> None:
    oldest = min(NOW - DAY, gte + oldest_offset)
    message = SliceMessage(project_id="p", run=1, phase="charges", index=index, gte=gte, lt=None, slices=3, depth=depth)
    children = split(message, oldest + page_span, oldest, heads)
    if not children:
        return
    # (the slice keeps (oldest, its end): together they cover its range once)
    assert 2 <= len(children) <= min(heads, FANOUT)
    assert children[0].lt == oldest + 1
    assert children[-1].gte == gte
    assert all(a.gte == b.lt for a, b in itertools.pairwise(children))
    assert all(c.gte < (c.lt or 0) for c in children)
    assert all(c.depth == depth + 1 for c in children)
    first = (index + 1) * FANOUT
    assert [c.index for c in children] == list(range(first, first + len(children)))


def test_child_indexes_never_meet_across_levels() -> None:
    seen: set[int] = set(range(FANOUT))  # planned slices
    frontier = list(range(FANOUT))
    for _ in range(4):
        frontier = [(i + 1) * FANOUT + j for i in frontier for j in range(FANOUT)]
        assert seen.isdisjoint(frontier)
        assert len(set(frontier)) == len(frontier)
        seen.update(frontier)


def test_a_slice_splits_only_when_its_first_page_shows_much_more_to_read() -> None:
    message = SliceMessage(project_id="p", run=1, phase="charges", index=0, gte=NOW - 100 * DAY, lt=None, slices=3)
    # the first page spans 3 of the range's 100 days: about 33 pages left, under two children's worth
    assert split(message, NOW, NOW - 3 * DAY, heads=8) == []
    # it spans one day: about 99 pages left, so 4 children of about 25
    assert len(split(message, NOW, NOW - DAY, heads=8)) == 4
    # one head (the budget keeps one slice busy, or one consumer): no split
    assert split(message, NOW, NOW - DAY, heads=1) == []
    # all 100 objects in one second: nothing to learn about density, the slice pages on
    assert split(message, NOW, NOW, heads=8) == []


def test_history_of_unknown_length_goes_to_a_last_child_that_splits_again() -> None:
    root = plan("p", 1, NOW, 1)[1]  # the charges phase's one slice: all of history
    children = split(root, NOW, NOW - DAY, heads=4)
    assert [(c.lt - c.gte) // DAY for c in children[:-1] if c.lt] == [25, 25, 25]
    assert children[-1].gte == HISTORY_STARTS
    # the last child's own first page: children twice as long at the next level
    grandchildren = split(children[-1], children[-1].lt or 0, (children[-1].lt or 0) - DAY, heads=4)
    assert [(c.lt - c.gte) // DAY for c in grandchildren[:-1] if c.lt] == [50, 50, 50]


@pytest.mark.parametrize(
    ("rate", "read_seconds", "expected"),
    [(0.0, 0.5, 8), (5.0, 0.5, 4), (10.0, 0.5, 6), (10.0, 1.0, 8), (5.0, 0.01, 2), (1.0, 0.0, 1)],
)
def test_heads_keep_the_budget_busy_at_stripes_latency(rate: float, read_seconds: float, expected: int) -> None:
    assert heads(rate, read_seconds, 8) == expected
