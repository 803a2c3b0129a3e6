"""Daily rollups of the ledger: what the revenue report reads instead of every entry of its window.

A ledger entry contributes to the rollup item of its charge's UTC day (Stripe `created`) and shard:
its net revenue by currency and one payment, under its owner's acquisition source as the entry
records it (`source`, set when its owner was chosen and whenever that visitor's source changes);
also by tier, and the owner itself (`visitors` counts distinct owners). An unattributed entry
contributes to the unattributed money and payments only. Every write of an entry adds the change
of its contribution to the rollup in the same transaction (shared.revenue.writer), so at every
commit the rollups are exactly the sum of the ledger's contributions (domain rule 4).

Attributes of a rollup item (top-level numbers, so an ADD creates them; DynamoDB cannot ADD into
a map that does not exist yet): `r|<source>|<currency>` revenue, `n|<source>` payments,
`v|<source>|<visitor>` the visitor's payments, `t|<tier>|<currency>` revenue by tier,
`u|<currency>` and `un` the unattributed revenue and payments. Visitor ids and currencies never
hold `|` (ids are checked at the API), so a name splits from the right.

A day has SHARDS items, a charge always in the same one (by its id): webhooks booking charges of
today side by side rarely meet in one item (a transaction conflict, then a retry).

Each month and shard also has a version item (`month_versions`): every transaction that changes a
day item bumps its month's `writes` too, so "has anything in this month changed since?" is one
small read per shard. The report caches a month's day items under that version (shared.reports).
A version item is created with a fresh `generation` and never deleted (it holds no revenue), so a
version is never seen twice.
"""

from __future__ import annotations

import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import NumberAttribute
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action

from .. import dynamo, tables
from ..settings import get_settings
from . import keys
from .items import RollupItem, RollupMonthItem
from .records import LedgerRecord
from .store import pk_sk

SHARDS = 4
NO_SOURCE = "(none)"  # api.md: a visitor without acquisition.source


def day_of(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")


def month_of(day: str) -> str:
    return day[:7]


def shard_of(charge_id: str) -> int:
    return zlib.crc32(charge_id.encode()) % SHARDS


def place(record: LedgerRecord) -> tuple[str, int]:
    """The rollup item (day, shard) the entry contributes to."""
    return day_of(record.facts.created), shard_of(record.facts.id)


def contribution(record: LedgerRecord) -> Counter[str]:
    """What the entry adds to its rollup item."""
    net, currency = record.net, record.facts.currency
    if record.visitor_id is None:
        return Counter({f"u|{currency}": net, "un": 1})
    source = record.source or NO_SOURCE
    found = Counter({f"r|{source}|{currency}": net, f"n|{source}": 1, f"v|{source}|{record.visitor_id}": 1})
    if record.tier is not None:
        found[f"t|{record.tier}|{currency}"] += net
    return found


def is_rollup_attribute(name: str) -> bool:
    return name == "un" or name[:2] in ("r|", "n|", "v|", "t|", "u|")


_NUMBER = NumberAttribute()  # how an attribute's value serializes (its name is data)


def update(project: str, day: str, shard: int, change: Counter[str]) -> tuple[RollupItem, list[Action]] | None:
    """The UpdateItem of one rollup item for a transaction: every attribute's change at once (ADD
    creates what is new), and `writes` counted (what a removal of the item checks); None if the
    change is nothing."""
    actions: list[Action] = [
        Path([name]).add(Value(amount, attribute=_NUMBER)) for name, amount in sorted(change.items()) if amount
    ]
    if not actions:
        return None
    actions += [
        RollupItem.writes.add(1),
        RollupItem.kind.set(RollupItem),
        RollupItem.project_id.set(project),
        RollupItem.day.set(day),
    ]
    pk, sk = pk_sk(keys.rollup(project, day, shard))
    return RollupItem(pk, sk), actions


def month_versions(project: str, places: Iterable[tuple[str, int]]) -> list[tuple[RollupMonthItem, list[Action]]]:
    """The version bumps that go with day items `places` (day, shard) in one transaction: one
    UpdateItem per month and shard (a transaction writes an item once), counting the month's writes
    and each day's (`w|<DD>`: the day's version, so a report re-reads only the days that changed)."""
    days: dict[tuple[str, int], set[str]] = {}
    for day, shard in places:
        days.setdefault((month_of(day), shard), set()).add(day)
    bumps = []
    for (month, shard), touched in sorted(days.items()):
        pk, sk = pk_sk(keys.rollup_month(project, month, shard))
        actions: list[Action] = [Path([day_version(day)]).add(Value(1, attribute=_NUMBER)) for day in sorted(touched)]
        actions += [
            RollupMonthItem.writes.add(1),
            RollupMonthItem.generation.set(RollupMonthItem.generation | uuid.uuid4().hex),
            RollupMonthItem.kind.set(RollupMonthItem),
            RollupMonthItem.project_id.set(project),
        ]
        bumps.append((RollupMonthItem(pk, sk), actions))
    return bumps


def day_version(day: str) -> str:
    """The attribute of a month's version item that counts the writes of one of its days."""
    return f"w|{day[8:10]}"


def read(project: str, first_day: str | None = None, last_day: str | None = None) -> Iterator[dict[str, Any]]:
    """The project's rollup items of the days [first_day, last_day] (None: unbounded), oldest first,
    as plain dicts (numbers as int): their attributes are data, which the model does not declare."""
    low = keys.rollup_sk(first_day, 0) if first_day else keys.ROLLUP_PREFIX
    high = keys.rollup_sk(last_day, SHARDS) if last_day else keys.ROLLUP_PREFIX + "~"
    return _query(project, low, high)


def read_versions(project: str, first_month: str | None, last_month: str | None) -> Iterator[dict[str, Any]]:
    """The version items of the months [first_month, last_month] (None: unbounded), as plain dicts."""
    low = keys.month_sk(first_month, 0) if first_month else keys.MONTH_PREFIX
    high = keys.month_sk(last_month, SHARDS) if last_month else keys.MONTH_PREFIX + "~"
    return _query(project, low, high)


def _query(project: str, low: str, high: str) -> Iterator[dict[str, Any]]:
    """Every page of a Query of the project's rollup partition between two sort keys."""
    connection = tables.revenue_connection()
    start: dict[str, Any] | None = None
    while True:
        with dynamo.translate_errors():
            page = connection.query(
                get_settings().revenue_table,
                keys.rollup_pk(project),
                range_key_condition=RollupItem.sk.between(low, high),
                exclusive_start_key=start,
                consistent_read=True,
            )
        for item in page.get("Items", []):
            yield {name: _plain(value) for name, value in item.items()}
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def _plain(value: dict[str, Any]) -> Any:
    if "N" in value:
        return int(value["N"])
    return next(iter(value.values()))
