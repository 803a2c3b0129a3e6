"""The revenue report (shared.reports.revenue) as pure functions: aggregation and the time window, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.errors import InvalidRequest
from shared.reports.revenue import LedgerRow, Window, parse_window, revenue_report, summarise

T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
EMPTY = {
    "totals": {},
    "by_source": [],
    "unattributed": {"revenue": {}, "payments": 0},
    "by_tier": {"1": {}, "2": {}, "3": {}},
}


def row(
    charge_id: str,
    amount: int,
    *,
    refunded: int = 0,
    currency: str = "usd",
    visitor: str | None = None,
    tier: int | None = None,
    created: int = T0,
) -> LedgerRow:
    return LedgerRow(charge_id, created, currency, amount, refunded, visitor, tier if visitor else None)


# ---- aggregation -----------------------------------------------------------------------------------


def test_no_entries_is_an_empty_report_with_every_tier() -> None:
    assert revenue_report([], {}) == EMPTY


def test_each_entry_counts_with_its_net_revenue() -> None:
    rows = [row("ch_1", 2500, refunded=400, visitor="v1", tier=1), row("ch_2", 1000, visitor="v1", tier=1)]

    report = revenue_report(rows, {"v1": "google"})

    assert report["totals"] == {"usd": 3100}
    assert report["by_source"] == [{"source": "google", "revenue": {"usd": 3100}, "payments": 2, "visitors": 1}]
    assert report["by_tier"]["1"] == {"usd": 3100}


def test_a_fully_refunded_payment_counts_in_payments_and_its_zero_revenue_is_omitted() -> None:
    rows = [row("ch_1", 3000, refunded=3000, visitor="v1", tier=2), row("ch_2", 700, refunded=700)]

    report = revenue_report(rows, {"v1": "google"})

    assert report == {
        "totals": {},
        "by_source": [{"source": "google", "revenue": {}, "payments": 1, "visitors": 1}],
        "unattributed": {"revenue": {}, "payments": 1},
        "by_tier": {"1": {}, "2": {}, "3": {}},
    }


def test_sources_are_sorted_and_a_visitor_without_one_is_none() -> None:
    rows = [
        row("ch_1", 100, visitor="v_twitter", tier=1),
        row("ch_2", 200, visitor="v_nothing", tier=2),
        row("ch_3", 300, visitor="v_blank", tier=2),
        row("ch_4", 400, visitor="v_unknown", tier=3),  # no profile found: no source either
        row("ch_5", 500, visitor="v_google", tier=1),
    ]
    sources = {"v_twitter": "twitter", "v_nothing": None, "v_blank": "  ", "v_google": "google"}

    by_source = revenue_report(rows, sources)["by_source"]

    assert [s["source"] for s in by_source] == ["(none)", "google", "twitter"]
    assert by_source[0] == {"source": "(none)", "revenue": {"usd": 900}, "payments": 3, "visitors": 3}


def test_visitors_are_counted_distinctly_per_source() -> None:
    rows = [
        row("ch_1", 100, visitor="v1", tier=1),
        row("ch_2", 100, visitor="v1", tier=3),
        row("ch_3", 100, visitor="v1", tier=3),
        row("ch_4", 100, visitor="v2", tier=2),
        row("ch_5", 100, visitor="v3", tier=1),
        row("ch_6", 100, visitor="v3", tier=1, refunded=100),
    ]

    by_source = revenue_report(rows, {"v1": "google", "v2": "google", "v3": "bing"})["by_source"]

    assert by_source == [
        {"source": "bing", "revenue": {"usd": 100}, "payments": 2, "visitors": 1},
        {"source": "google", "revenue": {"usd": 400}, "payments": 4, "visitors": 2},
    ]


def test_unattributed_entries_count_in_totals_and_unattributed_only() -> None:
    rows = [row("ch_1", 700), row("ch_2", 300, refunded=100), row("ch_3", 1000, visitor="v1", tier=2)]

    report = revenue_report(rows, {"v1": "google"})

    assert report["unattributed"] == {"revenue": {"usd": 900}, "payments": 2}
    assert report["totals"] == {"usd": 1900}
    assert report["by_tier"] == {"1": {}, "2": {"usd": 1000}, "3": {}}
    assert sum(s["payments"] for s in report["by_source"]) == 1


def test_by_tier_splits_attributed_revenue_by_the_entry_tier() -> None:
    rows = [
        row("ch_1", 2500, visitor="v1", tier=1),
        row("ch_2", 1000, visitor="v1", tier=3, refunded=400),
        row("ch_3", 5000, visitor="v2", tier=2, currency="jpy"),
        row("ch_4", 900, visitor="v2", tier=1, currency="eur"),
    ]

    assert revenue_report(rows, {})["by_tier"] == {
        "1": {"usd": 2500, "eur": 900},
        "2": {"jpy": 5000},
        "3": {"usd": 600},
    }


def test_currencies_stay_separate_in_minor_units() -> None:
    rows = [
        row("ch_1", 5000, currency="jpy", visitor="v1", tier=1),  # ¥5,000: zero-decimal, never divided
        row("ch_2", 1999, currency="usd", visitor="v1", tier=1),
        row("ch_3", 12345, currency="kwd", visitor="v2", tier=2),  # three decimals
        row("ch_4", 300, currency="jpy"),
        row("ch_5", 500, currency="eur", visitor="v2", tier=2, refunded=500),
    ]

    report = revenue_report(rows, {"v1": "google", "v2": "google"})

    assert report["totals"] == {"jpy": 5300, "kwd": 12345, "usd": 1999}  # eur nets to 0: omitted
    assert report["by_source"][0]["revenue"] == {"jpy": 5000, "kwd": 12345, "usd": 1999}
    assert report["unattributed"]["revenue"] == {"jpy": 300}
    assert report["by_tier"] == {"1": {"jpy": 5000, "usd": 1999}, "2": {"kwd": 12345}, "3": {}}


def test_a_currency_netting_to_zero_in_one_map_stays_in_the_others() -> None:
    rows = [
        row("ch_1", 1000, visitor="v1", tier=1, refunded=1000),
        row("ch_2", 1000, visitor="v2", tier=1),
    ]

    report = revenue_report(rows, {"v1": "bing", "v2": "google"})

    assert report["by_source"][0] == {"source": "bing", "revenue": {}, "payments": 1, "visitors": 1}
    assert report["by_source"][1]["revenue"] == {"usd": 1000}
    assert report["totals"] == report["by_tier"]["1"] == {"usd": 1000}


def test_source_totals_and_unattributed_add_up_to_the_totals() -> None:
    rows = [
        row(f"ch_{i}", 100 * i, refunded=10 * (i % 3), currency=("usd", "eur", "jpy")[i % 3], visitor=v, tier=t)
        for i, (v, t) in enumerate([("v1", 1), (None, None), ("v2", 2), ("v3", 3), (None, None), ("v1", 3)] * 5)
    ]

    report = revenue_report(rows, {"v1": "google", "v2": None, "v3": "google"})

    added: dict[str, int] = dict(report["unattributed"]["revenue"])
    for source in report["by_source"]:
        for currency, amount in source["revenue"].items():
            added[currency] = added.get(currency, 0) + amount
    assert added == report["totals"]
    assert sum(s["payments"] for s in report["by_source"]) + report["unattributed"]["payments"] == len(rows)


def test_summary_lists_the_distinct_owners_to_look_up() -> None:
    rows = [row("ch_1", 1, visitor="v2", tier=1), row("ch_2", 1), row("ch_3", 1, visitor="v1", tier=1)]
    rows.append(row("ch_4", 1, visitor="v2", tier=3))

    assert summarise(rows).visitors == ["v1", "v2"]


# ---- the window ------------------------------------------------------------------------------------


def test_no_bounds_is_all_time() -> None:
    window = parse_window(None, None)

    assert window == Window(None, None)
    assert window.contains(0)
    assert window.contains(T0)


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-11-01T00:00:00Z", T0),
        ("2026-11-01T00:00:00+00:00", T0),
        ("2026-11-01T01:00:00+01:00", T0),
        ("2026-11-01T01:00:00 01:00", T0),  # "+01:00" sent unencoded: the "+" arrives as a space
        ("2026-10-31T19:00:00-05:00", T0),
        ("2026-11-01T00:00:00", T0),  # no offset: UTC
        ("2026-11-01", T0),
        ("2026-11-01T00:00:00.000Z", T0),
        ("2026-11-01T00:00:00.000001Z", T0 + 1),  # created is whole seconds: the first one in range
        ("2026-11-01T00:00:59.999999Z", T0 + 60),
    ],
)
def test_bounds_are_iso_8601_times(value: str, epoch: int) -> None:
    assert parse_window(value, value) == Window(epoch, epoch)


def test_the_window_is_half_open() -> None:
    window = parse_window("2026-11-01T00:00:00Z", "2026-11-01T00:01:40Z")

    assert window == Window(T0, T0 + 100)
    assert [window.contains(t) for t in (T0 - 1, T0, T0 + 99, T0 + 100)] == [False, True, True, False]


def test_a_fractional_from_excludes_the_second_it_is_in() -> None:
    window = parse_window("2026-11-01T00:00:00.5Z", None)

    assert not window.contains(T0)
    assert window.contains(T0 + 1)


@pytest.mark.parametrize(
    ("from_", "to"),
    [("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"), ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z")],
)
def test_to_not_after_from_selects_nothing(from_: str, to: str) -> None:
    window = parse_window(from_, to)

    assert window.is_empty
    assert not window.contains(T0)


def test_bounds_before_1970_are_clamped() -> None:
    assert parse_window("1969-12-31T00:00:00Z", None) == Window(None, None)
    assert parse_window(None, "0001-01-01T00:00:00+01:00").is_empty
    assert parse_window(None, "1970-01-01T00:00:00Z").is_empty


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2026-13-01", "2026-11-01T25:00:00Z", "1795000000", "2026-11-01T00:00:00+25:00", "x,y"]
)
@pytest.mark.parametrize("name", ["from", "to"])
def test_unparsable_bounds_are_invalid_requests(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=name):
        parse_window(value, None) if name == "from" else parse_window(None, value)
