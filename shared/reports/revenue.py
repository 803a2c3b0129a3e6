"""The revenue report (api.md, Reports) as pure functions: no AWS, unit-testable.

The ledger is read once, streaming: `summarise` folds the selected entries into totals, the
unattributed bucket, per-tier maps and one bucket per owning visitor (memory grows with visitors,
not with payments); `report` then groups the visitors by their acquisition source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRequest

NO_SOURCE = "(none)"
TIERS = ("1", "2", "3")
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


def _add(totals: dict[str, int], currency: str, amount: int) -> None:
    totals[currency] = totals.get(currency, 0) + amount


def _nonzero(totals: Mapping[str, int]) -> dict[str, int]:
    return {currency: amount for currency, amount in sorted(totals.items()) if amount != 0}
