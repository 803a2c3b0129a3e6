"""The revenue report (api.md, Reports) as pure functions: no AWS, unit-testable.

Two sources of the same numbers. `Tally` folds ledger entries (each carries its owner's
acquisition source) and days of rollups (shared.reports.cache.DaySummary: the same contributions
summed per UTC day) into totals, the unattributed bucket, per-tier maps and, per source, the money,
the payments and the hashes of its paying visitors; `split` cuts a window into the whole UTC days the
rollups answer and the partial days at its edges that the ledger answers. `summarise` and `report`
are the older ledger-plus-profiles path (sources given per visitor), kept for its unit tests.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidRequest
from .cache import DaySummary, distinct_count, visitor_hash

NO_SOURCE = "(none)"
TIERS = ("1", "2", "3")
DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A "+hh:mm" offset sent unencoded in a query string arrives as " hh:mm" ("+" decodes to a space).
_PLUS_DECODED_AS_SPACE = re.compile(r"(T[0-9:.,]+) ([0-9]{2}(?::?[0-9]{2})?)$")


# ---- the time window ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Ledger entries whose Stripe `created` (epoch seconds) is in [start, end); None: unbounded."""

    start: int | None = None
    end: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.end is not None and self.end <= (self.start or 0)

    def contains(self, created: int) -> bool:
        return (self.start is None or created >= self.start) and (self.end is None or created < self.end)


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time (a time without offset is UTC); InvalidRequest when unparsable."""
    text = _PLUS_DECODED_AS_SPACE.sub(r"\1+\2", value.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time, e.g. 2026-11-01T00:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _first_second_at_or_after(moment: datetime) -> int:
    """The smallest whole epoch second >= moment (Stripe's `created` is whole seconds), exactly."""
    elapsed = moment - _EPOCH
    seconds = elapsed.days * 86_400 + elapsed.seconds
    return seconds + 1 if elapsed.microseconds else seconds


def parse_window(from_: str | None, to: str | None) -> Window:
    """`?from=&to=` as a window of whole seconds; absent bounds are open (all time)."""
    start = _first_second_at_or_after(parse_time(from_, "from")) if from_ is not None else None
    end = _first_second_at_or_after(parse_time(to, "to")) if to is not None else None
    # Stripe's `created` is never before 1970: a bound before it is no bound (start) or nothing (end).
    if start is not None and start <= 0:
        start = None
    if end is not None and end <= 0:
        end = 0
    return Window(start, end)


def day_of(second: int) -> str:
    """The UTC day of an epoch second, as the rollups name it (YYYY-MM-DD)."""
    return (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Split:
    """A window cut where the rollups can answer it: whole UTC days [first_day, last_day] (None: that
    side unbounded), and the parts of days at its edges, which only the ledger can answer."""

    edges: tuple[Window, ...] = ()  # at most two windows of less than a day each (or one of < 2 days)
    days: tuple[str | None, str | None] | None = None  # None: no whole day in the window

    @property
    def is_empty(self) -> bool:
        return not self.edges and self.days is None


def split(window: Window) -> Split:
    """The whole UTC days inside the window, and what is left at its edges.

    A `from` that is not a midnight leaves the rest of its day to the ledger, as does a `to` that is
    not one for the start of its day. A window with no whole day inside (at most the ends of two
    adjacent days) is the ledger's alone, in one query.
    """
    if window.is_empty:
        return Split()
    start, end = window.start, window.end
    # The first midnight at or after start, the last midnight at or before end.
    first = None if start is None else -(-start // DAY) * DAY
    last = None if end is None else end // DAY * DAY
    if last is not None and last <= 0:  # no charge is created before 1970: nothing for the days
        return Split((Window(start, end),))
    if first is not None and last is not None and first >= last:  # no whole day inside
        return Split((window,))
    edges = []
    if start is not None and first is not None and start < first:
        edges.append(Window(start, first))
    if end is not None and last is not None and last < end:
        edges.append(Window(last, end))
    days = (day_of(first) if first is not None else None, day_of(last - DAY) if last is not None else None)
    return Split(tuple(edges), days)


# ---- aggregation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    """What the report needs of one ledger entry (amounts in the currency's minor unit)."""

    charge_id: str
    created: int
    currency: str
    amount: int  # booked: amount_captured
    refunded: int  # booked refunds
    visitor_id: str | None  # None: unattributed
    tier: int | None
    source: str | None = None  # the owner's acquisition.source as the entry records it

    @property
    def net(self) -> int:
        return self.amount - self.refunded


@dataclass
class Bucket:
    """Net revenue per currency and the number of payments that fed it."""

    revenue: dict[str, int] = field(default_factory=dict)
    payments: int = 0

    def add(self, row: LedgerRow) -> None:
        _add(self.revenue, row.currency, row.net)
        self.payments += 1

    def merge(self, other: Bucket) -> None:
        for currency, amount in other.revenue.items():
            _add(self.revenue, currency, amount)
        self.payments += other.payments


@dataclass
class LedgerSummary:
    totals: dict[str, int] = field(default_factory=dict)
    unattributed: Bucket = field(default_factory=Bucket)
    by_tier: dict[str, dict[str, int]] = field(default_factory=lambda: {tier: {} for tier in TIERS})
    by_visitor: dict[str, Bucket] = field(default_factory=dict)

    def add(self, row: LedgerRow) -> None:
        _add(self.totals, row.currency, row.net)
        if row.visitor_id is None:
            self.unattributed.add(row)
            return
        self.by_visitor.setdefault(row.visitor_id, Bucket()).add(row)
        tier = str(row.tier) if row.tier is not None else None
        if tier in self.by_tier:
            _add(self.by_tier[tier], row.currency, row.net)

    @property
    def visitors(self) -> list[str]:
        """The distinct owners of the selected entries, sorted."""
        return sorted(self.by_visitor)


def summarise(rows: Iterable[LedgerRow]) -> LedgerSummary:
    summary = LedgerSummary()
    for row in rows:
        summary.add(row)
    return summary


def source_name(source: str | None) -> str:
    """The report's name for an acquisition source: "(none)" when the visitor has none (or a blank one)."""
    return source if source is not None and source.strip() else NO_SOURCE


def report(summary: LedgerSummary, sources: Mapping[str, str | None]) -> dict[str, Any]:
    """The response body of GET /projects/{project_id}/revenue.

    `sources` maps each owning visitor to its `acquisition.source` (missing or None: "(none)").
    Currencies whose amount is 0 are left out of every map.
    """
    by_source: dict[str, Bucket] = {}
    owners: dict[str, int] = {}
    for visitor_id, bucket in summary.by_visitor.items():
        name = source_name(sources.get(visitor_id))
        by_source.setdefault(name, Bucket()).merge(bucket)
        owners[name] = owners.get(name, 0) + 1  # by_visitor is keyed by visitor: each counts once
    return {
        "totals": _nonzero(summary.totals),
        "by_source": [
            {
                "source": name,
                "revenue": _nonzero(by_source[name].revenue),
                "payments": by_source[name].payments,
                "visitors": owners[name],
            }
            for name in sorted(by_source)
        ],
        "unattributed": {
            "revenue": _nonzero(summary.unattributed.revenue),
            "payments": summary.unattributed.payments,
        },
        "by_tier": {tier: _nonzero(summary.by_tier[tier]) for tier in TIERS},
    }


def revenue_report(rows: Iterable[LedgerRow], sources: Mapping[str, str | None]) -> dict[str, Any]:
    """`report(summarise(rows), sources)`: the report of these entries."""
    return report(summarise(rows), sources)


# ---- the report from ledger entries and rollups ------------------------------------------------


@dataclass
class Tally:
    """The report's numbers, folded from ledger entries (each with its source) and from days of
    rollups (shared.reports.cache.DaySummary: the same contributions, summed per day). Distinct
    visitors are kept per source as hashes of their ids (shared.reports.cache: exact up to
    KMV_SIZE of them, then a sketch); memory grows with the owning visitors of the window."""

    totals: dict[str, int] = field(default_factory=dict)
    unattributed: Bucket = field(default_factory=Bucket)
    by_tier: dict[str, dict[str, int]] = field(default_factory=lambda: {tier: {} for tier in TIERS})
    by_source: dict[str, Bucket] = field(default_factory=dict)
    owners: dict[str, set[int]] = field(default_factory=dict)  # source -> hashes of paying visitors

    def add_row(self, row: LedgerRow) -> None:
        """One ledger entry: its net revenue and one payment, under its recorded source."""
        _add(self.totals, row.currency, row.net)
        if row.visitor_id is None:
            self.unattributed.add(row)
            return
        name = source_name(row.source)
        self._source(name).add(row)
        self.owners.setdefault(name, set()).add(visitor_hash(row.visitor_id))
        tier = str(row.tier) if row.tier is not None else None
        if tier in self.by_tier:
            _add(self.by_tier[tier], row.currency, row.net)

    def add_days(self, days: Iterable[DaySummary]) -> None:
        """Days of rollups, their counts summed first (a year of days holds ~60,000 of them: each
        name is then parsed once, not once a day)."""
        counts: Counter[str] = Counter()
        visitors: dict[str, set[int]] = {}
        for day in days:
            counts.update(day.counts)
            for source, hashes in day.visitors.items():
                visitors.setdefault(source, set()).update(hashes)
        self.add_day(DaySummary("", counts, {source: list(hashes) for source, hashes in visitors.items()}))

    def add_day(self, day: DaySummary) -> None:
        """One day of rollups: counts `r|<source>|<currency>`, `n|<source>`, `t|<tier>|<currency>`,
        `u|<currency>` and `un` (a source may hold `|`, a tier or currency never does: names split
        from the right), and the hashes of each source's paying visitors."""
        for name, value in day.counts.items():
            if name == "un":
                self.unattributed.payments += value
                continue
            kind, rest = name[:2], name[2:]
            if kind == "r|":
                source, currency = rest.rsplit("|", 1)
                _add(self._source(source_name(source)).revenue, currency, value)
                _add(self.totals, currency, value)
            elif kind == "n|":
                self._source(source_name(rest)).payments += value
            elif kind == "t|":
                tier, currency = rest.split("|", 1)
                if tier in self.by_tier:
                    _add(self.by_tier[tier], currency, value)
            elif kind == "u|":
                _add(self.unattributed.revenue, rest, value)
                _add(self.totals, rest, value)
        for source, hashes in day.visitors.items():
            self.owners.setdefault(source_name(source), set()).update(hashes)

    def _source(self, name: str) -> Bucket:
        return self.by_source.setdefault(name, Bucket())

    def visitors(self, name: str) -> int:
        """Distinct visitors of the source: those with at least one payment in the window."""
        return distinct_count(self.owners.get(name, set()))

    def body(self) -> dict[str, Any]:
        """The response body of GET /projects/{project_id}/revenue (api.md). A source is listed when
        it has a payment in the window (rollups keep zeros where an entry left a source: not listed)."""
        listed = sorted(name for name, bucket in self.by_source.items() if bucket.payments or self.owners.get(name))
        return {
            "totals": _nonzero(self.totals),
            "by_source": [
                {
                    "source": name,
                    "revenue": _nonzero(self.by_source[name].revenue),
                    "payments": self.by_source[name].payments,
                    "visitors": self.visitors(name),
                }
                for name in listed
            ],
            "unattributed": {
                "revenue": _nonzero(self.unattributed.revenue),
                "payments": self.unattributed.payments,
            },
            "by_tier": {tier: _nonzero(self.by_tier[tier]) for tier in TIERS},
        }


def _add(totals: dict[str, int], currency: str, amount: int) -> None:
    totals[currency] = totals.get(currency, 0) + amount


def _nonzero(totals: Mapping[str, int]) -> dict[str, int]:
    return {currency: amount for currency, amount in sorted(totals.items()) if amount != 0}
