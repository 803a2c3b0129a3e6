"""What a sweep reads: from the high-water mark less the overlap to now, in windows (pure)."""

from __future__ import annotations

from shared.reconcile.windows import FIRST_LOOKBACK_SECONDS, OVERLAP_SECONDS, WINDOW_SECONDS, Window, plan

NOW = 1_800_000_000
HOUR = 3600


def test_a_sweep_reads_from_the_last_mark_less_the_overlap_to_now() -> None:
    assert plan(NOW - HOUR, NOW - 30 * 86_400, NOW) == [Window(NOW - HOUR - OVERLAP_SECONDS, None)]


def test_a_first_sweep_starts_at_the_connection_but_looks_back_a_bounded_time() -> None:
    assert plan(None, NOW - HOUR, NOW) == [Window(NOW - HOUR - OVERLAP_SECONDS, None)]
    windows = plan(None, NOW - 365 * 86_400, NOW)
    assert windows[0].gte == NOW - FIRST_LOOKBACK_SECONDS - OVERLAP_SECONDS
    assert windows[-1].lt is None


def test_a_long_gap_is_cut_into_contiguous_windows_each_raising_the_mark() -> None:
    windows = plan(NOW - 3 * WINDOW_SECONDS, 0, NOW)
    start = NOW - 3 * WINDOW_SECONDS - OVERLAP_SECONDS
    assert windows == [
        Window(start, start + WINDOW_SECONDS),
        Window(start + WINDOW_SECONDS, start + 2 * WINDOW_SECONDS),
        Window(start + 2 * WINDOW_SECONDS, start + 3 * WINDOW_SECONDS),
        Window(start + 3 * WINDOW_SECONDS, None),
    ]
    assert [w.reached(NOW) for w in windows] == [w.lt for w in windows[:-1]] + [NOW]
