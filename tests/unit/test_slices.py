"""A run's slices (shared.backfill.slices): planned ranges, and how a dense one splits."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from shared.backfill.slices import CHILD_BASE, HISTORY_STARTS, MAX_CHILDREN, SliceMessage, plan, split

NOW = 1_800_000_000
DAY = 86_400


def test_the_planned_slices_of_a_phase_cover_history_without_overlap() -> None:
    for phase in ("checkout_sessions", "charges", "subscriptions"):
        ranges = sorted((s.gte, s.lt or NOW + 1) for s in plan("p", 1, NOW, 16) if s.phase == phase)
        assert ranges[0][0] == HISTORY_STARTS
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


@given(
    gte=st.integers(HISTORY_STARTS, NOW - 2 * DAY),
    oldest_offset=st.integers(1, 400 * DAY),
    page_span=st.integers(0, 30 * DAY),
    index=st.integers(0, 15),
)
def test_a_split_hands_the_rest_of_the_range_to_contiguous_children(
    gte: int, oldest_offset: int, page_span: int, index: int
) -> None:
    oldest = min(NOW - DAY, gte + oldest_offset)
    message = SliceMessage(project_id="p", run=1, phase="charges", index=index, gte=gte, lt=None, slices=48)
    children = split(message, oldest + page_span, oldest)
    if not children:
        return
    # (the slice keeps [oldest, its end): together they cover its range once)
    assert 2 <= len(children) <= MAX_CHILDREN
    assert children[0].gte == gte
    assert children[-1].lt == oldest
    assert all(a.lt == b.gte for a, b in itertools.pairwise(children))
    assert all(c.gte < (c.lt or 0) for c in children)
    assert len({c.index for c in children}) == len(children)
    assert all(c.index >= CHILD_BASE and split(c, oldest + page_span, c.gte + 1) == [] for c in children)


def test_a_sparse_slice_does_not_split() -> None:
    message = SliceMessage(project_id="p", run=1, phase="charges", index=0, gte=NOW - 10 * DAY, lt=None, slices=48)
    # the first page spans 6 of the range's 10 days: the rest is under 4 pages at that density
    assert split(message, NOW, NOW - 6 * DAY) == []
    # it spans one day: the other nine hold about 9 pages, so 4 children of about 2
    assert len(split(message, NOW, NOW - DAY)) == 4
