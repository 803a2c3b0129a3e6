"""The rollup-based report's pure parts (shared.reports.revenue): the window cut into whole UTC days
and edges, and the fold of rollup items and ledger entries. No AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.reports import cache
from shared.reports.revenue import LedgerRow, Split, Tally, Window, split

DAY = 86_400
T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())  # a midnight


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (Window(), Split((), (None, None))),
        (Window(T0, T0 + 3 * DAY), Split((), ("2026-11-01", "2026-11-03"))),
        (
            Window(T0 + 5, T0 + 3 * DAY + 7),
            Split((Window(T0 + 5, T0 + DAY), Window(T0 + 3 * DAY, T0 + 3 * DAY + 7)), ("2026-11-02", "2026-11-03")),
        ),
        (Window(T0 + 5, None), Split((Window(T0 + 5, T0 + DAY),), ("2026-11-02", None))),
        (Window(None, T0 + 7), Split((Window(T0, T0 + 7),), (None, "2026-10-31"))),
        (Window(T0 + 5, T0 + 9), Split((Window(T0 + 5, T0 + 9),))),  # inside one day: the index alone
        (Window(T0 - 60, T0 + 60), Split((Window(T0 - 60, T0 + 60),))),  # two partial days, no whole one
        (Window(T0, T0 + 60), Split((Window(T0, T0 + 60),))),
        (Window(T0 + 5, T0 + DAY), Split((Window(T0 + 5, T0 + DAY),))),  # no whole day inside
        (Window(T0 + 5, T0 + 2 * DAY), Split((Window(T0 + 5, T0 + DAY),), ("2026-11-02", "2026-11-02"))),
        (Window(None, 30), Split((Window(None, 30),))),  # 1970's first day: nothing before it
        (Window(T0, T0), Split()),
        (Window(T0 + 9, T0), Split()),
    ],
)
def test_a_window_is_cut_into_whole_days_and_edges(window: Window, expected: Split) -> None:
    assert split(window) == expected


def test_rollup_counters_fold_into_the_report() -> None:
    tally = Tally()
    (day,) = cache.summarise(
        [
            {
                "pk": "P#p#ROLLUP",
                "sk": "D#2026-11-01#0",
                "kind": "rollup",
                "day": "2026-11-01",
                "writes": 7,
                "r|partner|acme|usd": 1500,  # a source may hold "|"
                "n|partner|acme": 2,
                "v|partner|acme|v1": 2,
                "t|1|usd": 1500,
                "r|google|usd": 0,  # an entry moved away: counters left at 0
                "n|google": 0,
                "v|google|v2": 0,
                "r| |eur": 300,  # a blank source is "(none)"
                "n| ": 1,
                "v| |v3": 1,
                "t|2|eur": 300,
                "u|usd": 700,
                "un": 1,
            }
        ]
    ).values()
    tally.add_day(day)
    tally.add_row(LedgerRow("ch_9", T0, "eur", 100, 0, "v3", 3, source=None))
    tally.add_row(LedgerRow("ch_8", T0, "usd", 50, 50, "v1", 1, source="partner|acme"))

    assert tally.body() == {
        "totals": {"eur": 400, "usd": 2200},
        "by_source": [
            {"source": "(none)", "revenue": {"eur": 400}, "payments": 2, "visitors": 1},
            {"source": "partner|acme", "revenue": {"usd": 1500}, "payments": 3, "visitors": 1},
        ],
        "unattributed": {"revenue": {"usd": 700}, "payments": 1},
        "by_tier": {"1": {"usd": 1500}, "2": {"eur": 300}, "3": {"eur": 100}},
    }
