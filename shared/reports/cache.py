"""The report's cache of a month's rollups: the month's day items folded into one summary per day,
stored as a few binary items under the month's version (shared.revenue.rollups.month_versions).

Reading a year of day items costs thousands of items, most of them per-visitor counts. A month's
cache holds, per day, the day's money, payments and tiers (its shards summed, exactly) and, per
source, the 64-bit hashes of the visitors who paid that day (`visitor_hash`): a few hundred bytes
where the day items hold kilobytes. A day of it is valid while the day's version is the one it was
read at (`DaySummary.basis`: every shard's generation and writes of that day; the whole month's
`basis` answers for all its days at once): a transaction that changes a day's items bumps its
version in the same commit, so a stale day is never used, and only the days that changed are read
again.

Distinct visitors (api.md `visitors`) are counted from the hashes: exact while a source has at most
`KMV_SIZE` distinct paying visitors in the window (up to a collision of two 64-bit hashes: below
1e-12 at that size); above it, estimated from the `KMV_SIZE` smallest hashes (a k-minimum-values
sketch, mergeable over days and months): relative standard error 1/sqrt(k-2), about 1.6 %.
Money and payments are always exact.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KMV_SIZE = 4096
PART_BYTES = 350_000  # of a cache item's data: DynamoDB items hold at most 400 KB
_VERSION = 2  # of the encoding; a cache in another is stale


def visitor_hash(visitor_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(visitor_id.encode(), digest_size=8).digest(), "little")


def smallest(hashes: Iterable[int]) -> list[int]:
    """The KMV_SIZE smallest of distinct hashes, sorted: all that a sketch needs to keep."""
    distinct = set(hashes)
    return sorted(distinct) if len(distinct) <= KMV_SIZE else heapq.nsmallest(KMV_SIZE, distinct)


def distinct_count(hashes: set[int]) -> int:
    """Distinct visitors of a set of hashes built from KMV_SIZE-smallest parts: exact up to
    KMV_SIZE, else (k - 1) / (the k-th smallest hash as a fraction of 2^64)."""
    if len(hashes) <= KMV_SIZE:
        return len(hashes)
    kth = heapq.nsmallest(KMV_SIZE, hashes)[-1]
    return round((KMV_SIZE - 1) * 2**64 / (kth + 1))


@dataclass
class DaySummary:
    """One UTC day of rollups: `counts` the day items' attributes but the per-visitor ones, summed
    (`r|`, `n|`, `t|`, `u|`, `un`), and per source the sorted hashes of its paying visitors; `basis`
    the day's version it was read at (MonthVersion.days)."""

    day: str
    counts: Counter[str] = field(default_factory=Counter)
    visitors: dict[str, list[int]] = field(default_factory=dict)
    basis: str = ""


@dataclass(frozen=True)
class MonthVersion:
    """A month's version as its version items tell it (shared.revenue.rollups.month_versions): the
    month's `basis` (every shard's generation and writes) and each day's (every shard's generation
    and that day's writes). A day without writes has never had rollups."""

    basis: str
    days: dict[str, str]


def month_version(month: str, items: Iterable[Mapping[str, Any]]) -> MonthVersion:
    """The version of a month from its version items (plain dicts, shared.revenue.rollups.read_versions)."""
    shards: list[tuple[int, str | None, int]] = []
    days: dict[str, list[str]] = {}
    for item in items:
        shard, generation = int(str(item["sk"]).rsplit("#", 1)[1]), item.get("generation")
        shards.append((shard, generation, int(item.get("writes", 0))))
        for name, value in item.items():
            if name.startswith("w|"):
                days.setdefault(f"{month}-{name[2:]}", []).append(f"{shard}:{generation}:{int(value)}")
    return MonthVersion(basis(shards), {day: ",".join(sorted(found)) for day, found in sorted(days.items())})


def summarise(items: Iterable[Mapping[str, Any]], version: MonthVersion | None = None) -> dict[str, DaySummary]:
    """Day items (shared.revenue.rollups.read) folded per day, each with its day's basis in `version`
    (read before the items), and every day of `version` without items as an empty day."""
    counts: dict[str, Counter[str]] = {}
    visitors: dict[str, dict[str, set[int]]] = {}
    for item in items:
        day = item["day"]
        day_counts = counts.setdefault(day, Counter())
        day_visitors = visitors.setdefault(day, {})
        for name, value in item.items():
            if name.startswith("v|"):
                if int(value) > 0:
                    source, visitor = name[2:].rsplit("|", 1)
                    day_visitors.setdefault(source, set()).add(visitor_hash(visitor))
            elif name == "un" or name[:2] in ("r|", "n|", "t|", "u|"):
                day_counts[name] += int(value)
    bases = version.days if version is not None else {}
    return {
        day: DaySummary(
            day,
            Counter({name: value for name, value in counts.get(day, {}).items() if value}),
            {source: smallest(found) for source, found in sorted(visitors.get(day, {}).items())},
            bases.get(day, ""),
        )
        for day in sorted(set(counts) | set(bases))
    }


def encode(days: Mapping[str, DaySummary]) -> bytes:
    """A month's summaries as bytes: a compressed JSON header (counts, and how many hashes each
    source of each day has), then every hash as 8 little-endian bytes in the header's order."""
    header: dict[str, Any] = {"version": _VERSION, "days": []}
    hashes = array("Q")
    for day in sorted(days):
        summary = days[day]
        sources = [[source, len(found)] for source, found in summary.visitors.items()]
        header["days"].append([day, summary.basis, dict(summary.counts), sources])
        for found in summary.visitors.values():
            hashes.extend(found)
    if sys.byteorder == "big":
        hashes.byteswap()
    packed = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 1)
    return len(packed).to_bytes(4, "little") + packed + hashes.tobytes()


def decode(data: bytes) -> dict[str, DaySummary] | None:
    """What `encode` wrote; None if it was written in another encoding or is not whole (a cache to
    build again, never an error of the report)."""
    try:
        return _decode(data)
    except (ValueError, KeyError, TypeError, zlib.error):
        return None


def _decode(data: bytes) -> dict[str, DaySummary] | None:
    length = int.from_bytes(data[:4], "little")
    header = json.loads(zlib.decompress(data[4 : 4 + length]))
    if header.get("version") != _VERSION:
        return None
    if len(data) - 4 - length != 8 * sum(count for _, _, _, sources in header["days"] for _, count in sources):
        return None
    hashes = array("Q")
    hashes.frombytes(data[4 + length :])
    if sys.byteorder == "big":
        hashes.byteswap()
    found, at = {}, 0
    for day, day_basis, counts, sources in header["days"]:
        summary = DaySummary(day, Counter(counts), basis=day_basis)
        for source, count in sources:
            summary.visitors[source] = hashes[at : at + count].tolist()
            at += count
        found[day] = summary
    return found


def split_parts(data: bytes) -> list[bytes]:
    """The data in parts of at most PART_BYTES (at least one part)."""
    return [data[start : start + PART_BYTES] for start in range(0, len(data), PART_BYTES)] or [b""]


def basis(versions: Iterable[tuple[int, str | None, int]]) -> str:
    """A month's version as the cache records it: every shard's (shard, generation, writes)."""
    return ",".join(f"{shard}:{generation}:{writes}" for shard, generation, writes in sorted(versions))
