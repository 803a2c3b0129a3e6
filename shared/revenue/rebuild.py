"""Rebuilding a project's rollups from its ledger (issue 11): what a day's rollup items must hold,
and how what they hold differs. Plain Python, no DynamoDB: shared.revenue.rebuild_store reads and
repairs, shared.revenue.rebuilding runs the check of a day against concurrent bookings.

A rollup item is the sum of the contributions (shared.revenue.rollups.contribution) of the ledger
entries placed in it (its charge's UTC day and shard). A difference is named per attribute:
(day, shard, attribute, stored, expected); zeros and absent attributes are the same thing (an ADD
creates what it adds to, a removal leaves zeros behind).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import keys, rollups
from .records import LedgerRecord

Counts = dict[str, int]  # a rollup item's counts: attribute -> value, zeros left out


@dataclass(frozen=True)
class Difference:
    """One attribute of one rollup item that is not what the ledger says."""

    day: str
    shard: int
    attribute: str
    stored: int
    expected: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "shard": self.shard,
            "attribute": self.attribute,
            "stored": self.stored,
            "expected": self.expected,
        }


@dataclass(frozen=True)
class StoredItem:
    """A rollup item as read: its counts, and its `writes` (None: no item) that a repair checks."""

    counts: Counts
    writes: int | None
    exists: bool = True


ABSENT = StoredItem({}, None, exists=False)


def stored_item(raw: Mapping[str, Any]) -> StoredItem:
    """A rollup item read raw (shared.revenue.rollups.read: numbers as int)."""
    counts = {name: int(value) for name, value in raw.items() if rollups.is_rollup_attribute(name) and int(value)}
    writes = raw.get("writes")
    return StoredItem(counts, None if writes is None else int(writes))


def shard_of_sk(sk: str) -> tuple[str, int]:
    """(day, shard) of a rollup item's sort key `D#<YYYY-MM-DD>#<shard>`."""
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    return day, int(shard)


def expected(records: Iterable[LedgerRecord]) -> dict[int, Counts]:
    """What each shard of a day must hold, from the day's ledger entries (shard -> counts)."""
    sums: dict[int, Counter[str]] = {}
    for record in records:
        _, shard = rollups.place(record)
        sums.setdefault(shard, Counter()).update(rollups.contribution(record))
    return {shard: nonzero(counts) for shard, counts in sums.items()}


def nonzero(counts: Mapping[str, int]) -> Counts:
    return {name: value for name, value in counts.items() if value}


def change(stored: Mapping[str, int], wanted: Mapping[str, int]) -> Counter[str]:
    """What to ADD to `stored` to make it `wanted` (only the attributes that differ)."""
    found: Counter[str] = Counter()
    for name in set(stored) | set(wanted):
        delta = wanted.get(name, 0) - stored.get(name, 0)
        if delta:
            found[name] = delta
    return found


def differences(day: str, shard: int, stored: Mapping[str, int], wanted: Mapping[str, int]) -> list[Difference]:
    """Each attribute that differs, sorted by name."""
    return [
        Difference(day, shard, name, stored.get(name, 0), wanted.get(name, 0))
        for name in sorted(change(stored, wanted))
    ]
