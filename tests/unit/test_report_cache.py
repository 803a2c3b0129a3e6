"""The report's cache of a month (shared.reports.cache) and the months it is read by
(shared.reports.days): the encoding, its parts, and distinct visitors from hashes. No AWS."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.reports import cache
from shared.reports.days import _next, _runs

names = st.text(alphabet="abc|-_ ", min_size=1, max_size=6)
day_summaries = st.builds(
    cache.DaySummary,
    st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-31"]),
    st.dictionaries(names.map(lambda n: "r|" + n + "|usd"), st.integers(-(2**62), 2**62).filter(bool)).map(Counter),
    st.dictionaries(names, st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=30).map(sorted)),
    st.text(alphabet="0123:abc,", max_size=12),
)


@given(st.lists(day_summaries, max_size=3))
def test_a_month_decodes_to_what_was_encoded(days: list[cache.DaySummary]) -> None:
    month = {day.day: day for day in days}
    assert cache.decode(cache.encode(month)) == month


def test_a_large_month_is_cut_into_parts_that_join_back() -> None:
    rng = random.Random(3)
    month = {
        f"2026-01-{d:02d}": cache.DaySummary(
            f"2026-01-{d:02d}",
            Counter({"n|google": 3}),
            {"google": sorted({rng.randrange(2**64) for _ in range(4000)})},
        )
        for d in range(1, 31)
    }
    data = cache.encode(month)
    parts = cache.split_parts(data)
    assert len(parts) == -(-len(data) // cache.PART_BYTES) > 1
    assert all(len(part) <= cache.PART_BYTES for part in parts)
    assert cache.decode(b"".join(parts)) == month


def test_distinct_visitors_are_exact_up_to_the_sketch_size() -> None:
    hashes = {cache.visitor_hash(f"v{n}") for n in range(cache.KMV_SIZE)}
    assert len(hashes) == cache.KMV_SIZE  # no collision among them
    assert cache.distinct_count(hashes) == cache.KMV_SIZE
    assert cache.distinct_count(set()) == 0


@pytest.mark.parametrize("visitors", [5_000, 40_000, 250_000])
def test_above_the_sketch_size_the_estimate_is_within_five_percent(visitors: int) -> None:
    # Days of a source, each with its visitors' smallest hashes kept (as a cache keeps them),
    # merged as the report merges them: the estimate is the sketch's, within its bound.
    rng = random.Random(visitors)
    days = [[f"v{rng.randrange(visitors)}" for _ in range(visitors // 10)] for _ in range(30)]
    everyone = {visitor for day in days for visitor in day}
    merged: set[int] = set()
    for day in days:
        merged.update(cache.smallest(cache.visitor_hash(v) for v in day))
    estimate = cache.distinct_count(merged)
    assert abs(estimate - len(everyone)) <= 0.05 * len(everyone), (estimate, len(everyone))


def test_the_smallest_hashes_of_parts_merge_into_the_smallest_of_the_whole() -> None:
    rng = random.Random(5)
    parts = [[rng.randrange(2**64) for _ in range(3000)] for _ in range(4)]
    merged = set().union(*(cache.smallest(part) for part in parts))
    whole = [h for part in parts for h in part]
    assert sorted(merged)[: cache.KMV_SIZE] == cache.smallest(whole)


def test_months_are_read_in_runs_of_consecutive_months() -> None:
    assert _next("2025-12") == "2026-01"
    assert _next("2026-01") == "2026-02"
    assert _runs(["2025-11", "2025-12", "2026-01", "2026-03", "2026-05", "2026-06"]) == [
        ["2025-11", "2025-12", "2026-01"],
        ["2026-03"],
        ["2026-05", "2026-06"],
    ]
    assert _runs([]) == []


def test_a_day_item_is_summarised_without_zeros_and_with_its_visitors_hashed() -> None:
    (day,) = cache.summarise(
        [
            {"day": "2026-01-02", "writes": 3, "r|google|usd": 500, "n|google": 1, "v|google|v1": 1, "v|google|v2": 0},
            {"day": "2026-01-02", "writes": 1, "r|google|usd": -500, "n|google": 0, "u|eur": 7, "un": 1},
        ]
    ).values()
    assert day.counts == Counter({"n|google": 1, "u|eur": 7, "un": 1})
    assert day.visitors == {"google": [cache.visitor_hash("v1")]}


def test_a_cache_that_is_not_whole_or_of_another_encoding_is_stale_not_an_error() -> None:
    month = {"2026-01-02": cache.DaySummary("2026-01-02", Counter({"un": 1}), {"google": [1, 2, 3]})}
    data = cache.encode(month)
    assert cache.decode(data[:-8]) is None  # a hash short
    assert cache.decode(data[:10]) is None  # a header cut
    assert cache.decode(b"") is None
    assert cache.decode(b"\x05\x00\x00\x00garbage") is None
