"""DynamoDB access of a rollup rebuild (shared.revenue.rebuilding): a day's rollup items (strongly
consistent, with their `writes`), a day's ledger entries (GSI ByCreated: eventually consistent),
the next day holding either, and the repair of one item (ADDs conditioned on its `writes`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from .. import dynamo, tables
from ..settings import get_settings
from . import keys, rollups
from .items import LedgerItem, RollupItem
from .rebuild import ABSENT, StoredItem, shard_of_sk, stored_item
from .records import LedgerRecord, ledger_record

DAY_SECONDS = 86_400


def day_start(day: str) -> int:
    """Epoch seconds of the UTC day's first second."""
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())


def next_calendar_day(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)).strftime("%Y-%m-%d")


def day_items(project: str, day: str) -> dict[int, StoredItem]:
    """The day's rollup items by shard (a shard without item is absent from the answer)."""
    tables.bind()
    found: dict[int, StoredItem] = {}
    for raw in rollups.read(project, day, day):
        _, shard = shard_of_sk(str(raw["sk"]))
        found[shard] = stored_item(raw)
    return found


def unversioned_shards(project: str, day: str) -> list[int]:
    """The shards of the day that have a rollup item but no count of the day's writes in their
    month's version item (every transaction that writes the item bumps it: a report would not see
    the day, or take a cache of it for current)."""
    tables.bind()
    shards = set(day_items(project, day))
    versioned = {
        int(str(raw["sk"]).rsplit("#", 1)[1])
        for raw in rollups.read_versions(project, day[:7], day[:7])
        if int(raw.get(rollups.day_version(day), 0)) > 0
    }
    return sorted(shards - versioned)


def bump_versions(project: str, day: str, shards: list[int]) -> None:
    """The day's version bumped in those shards (its cached copies are stale after it)."""
    with dynamo.translate_errors(), TransactWrite(connection=tables.revenue_connection()) as tx:
        for month, bump in rollups.month_versions(project, [(day, shard) for shard in shards]):
            tx.update(month, bump)


def item_of(items: dict[int, StoredItem], shard: int) -> StoredItem:
    return items.get(shard, ABSENT)


def ledger_of_day(project: str, day: str) -> list[LedgerRecord]:
    """The ledger entries of charges created on the UTC day, as the index shows them now (a
    booking of the last moments may be missing or shown as it was: the caller allows for it)."""
    start = day_start(day)
    low = keys.ledger_index(project, start, "")["gsi1sk"]
    high = keys.ledger_index(project, start + DAY_SECONDS, "")["gsi1sk"]  # (no entry's gsi1sk equals it)
    tables.bind()
    with dynamo.translate_errors():
        return [
            ledger_record(item)
            for item in LedgerItem.by_created.query(
                keys.ledger_index(project, 0, "")["gsi1pk"], LedgerItem.gsi1sk.between(low, high)
            )
        ]


def next_day(project: str, after: str | None) -> str | None:
    """The first UTC day after `after` (None: from the first) with a rollup item or a ledger entry."""
    candidates = [d for d in (_next_rollup_day(project, after), _next_ledger_day(project, after)) if d]
    return min(candidates) if candidates else None


def _next_rollup_day(project: str, after: str | None) -> str | None:
    tables.bind()
    # (between: the partition also holds the months' version items and the report's caches)
    condition = (
        RollupItem.sk.between(keys.rollup_sk(after, 0).rsplit("#", 1)[0] + "#~", keys.ROLLUP_PREFIX + "~")
        if after
        else RollupItem.sk.startswith(keys.ROLLUP_PREFIX)
    )
    with dynamo.translate_errors():
        page = tables.revenue_connection().query(
            get_settings().revenue_table,
            keys.rollup_pk(project),
            range_key_condition=condition,
            limit=1,
            consistent_read=True,
        )
    items: list[dict[str, Any]] = page.get("Items", [])
    return shard_of_sk(items[0]["sk"]["S"])[0] if items else None


def _next_ledger_day(project: str, after: str | None) -> str | None:
    start = day_start(next_calendar_day(after)) if after else 0
    tables.bind()
    with dynamo.translate_errors():
        for item in LedgerItem.by_created.query(
            keys.ledger_index(project, 0, "")["gsi1pk"],
            LedgerItem.gsi1sk >= keys.ledger_index(project, start, "")["gsi1sk"],
            limit=1,
            attributes_to_get=["kind", "created"],
        ):
            return rollups.day_of(int(item.created))
    return None


def repair(project: str, day: str, shard: int, change: Counter[str], read: StoredItem) -> None:
    """ADD `change` to the item, only if no write touched it since it was `read` (StaleUpdate if one
        did); `writes` is bumped like every rollup update's, and its month's version with it, so a
    concurrent reader sees the repair and the report's cache of the month is stale."""
    update = rollups.update(project, day, shard, change)
    if update is None:
        return
    item, actions = update
    with dynamo.translate_errors(), TransactWrite(connection=tables.revenue_connection()) as tx:
        tx.update(item, actions, _unchanged(read))
        for month, bump in rollups.month_versions(project, [(day, shard)]):
            tx.update(month, bump)


def _unchanged(read: StoredItem) -> Condition:
    if not read.exists:
        condition: Condition = RollupItem.pk.does_not_exist()
    elif read.writes is None:
        condition = RollupItem.pk.exists() & RollupItem.writes.does_not_exist()
    else:
        condition = RollupItem.writes == read.writes
    return condition
