"""The pure part of a rollup rebuild (shared.revenue.rebuild): what a day's items must hold, and how
what they hold differs. No AWS."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from shared.revenue import rollups
from shared.revenue.models import ChargeFacts
from shared.revenue.rebuild import Difference, change, differences, expected, shard_of_sk, stored_item
from shared.revenue.records import LedgerRecord

NOON = 1_767_268_800  # 2026-01-01T12:00:00Z


def entry(charge: str, amount: int, *, visitor: str | None, tier: int | None = None, refunded: int = 0) -> LedgerRecord:
    facts = ChargeFacts(charge, NOON, "usd", amount, amount, refunded, True, "succeeded", None, None, None)
    return LedgerRecord(facts, visitor, tier, amount, refunded, (), 1, source="google" if visitor else None)


def test_a_days_entries_sum_per_shard_as_their_contributions() -> None:
    entries = [entry(f"ch_{n}", 1000 * n, visitor="v1" if n % 2 else None, tier=1, refunded=n) for n in range(1, 9)]
    sums = expected(entries)
    for shard, counts in sums.items():
        mine = [e for e in entries if rollups.shard_of(e.facts.id) == shard]
        total = sum((rollups.contribution(e) for e in mine), start=Counter[str]())
        assert counts == {k: v for k, v in total.items() if v}
    assert sum(c.get("un", 0) + c.get("n|google", 0) for c in sums.values()) == 8


def test_a_refunded_entry_counts_its_net() -> None:
    booked = entry("ch_1", 5000, visitor="v1", tier=2, refunded=1500)
    ((_, counts),) = expected([booked]).items()
    assert counts == {"r|google|usd": 3500, "n|google": 1, "v|google|v1": 1, "t|2|usd": 3500}
    fully = replace(booked, refunded=5000)
    ((_, counts),) = expected([fully]).items()
    assert counts == {"n|google": 1, "v|google|v1": 1}  # a payment still, of no money


def test_differences_name_each_attribute_with_what_is_stored_and_expected() -> None:
    stored = {"r|google|usd": 1500, "n|google": 1, "v|google|old": 1}
    wanted = {"r|google|usd": 1000, "n|google": 1, "v|google|v1": 1}
    assert change(stored, wanted) == {"r|google|usd": -500, "v|google|old": -1, "v|google|v1": 1}
    assert differences("2026-01-01", 2, stored, wanted) == [
        Difference("2026-01-01", 2, "r|google|usd", 1500, 1000),
        Difference("2026-01-01", 2, "v|google|old", 1, 0),
        Difference("2026-01-01", 2, "v|google|v1", 0, 1),
    ]
    assert differences("2026-01-01", 2, {"un": 0}, {}) == []  # a zero is no attribute


def test_a_stored_item_keeps_its_counts_and_writes_only() -> None:
    raw = {"pk": "P#p#ROLLUP", "sk": "D#2026-01-01#3", "kind": "rollup", "day": "2026-01-01", "writes": 7}
    item = stored_item(raw | {"u|usd": 900, "un": 1, "r|google|usd": 0})
    assert (item.counts, item.writes, item.exists) == ({"u|usd": 900, "un": 1}, 7, True)
    assert shard_of_sk("D#2026-01-01#3") == ("2026-01-01", 3)
