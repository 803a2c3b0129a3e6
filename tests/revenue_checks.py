"""Reading the revenue table back in tests: the ledger/total invariant (domain rule 4) and helpers."""

from __future__ import annotations

import base64
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3

from shared import tables
from shared.reports import cache
from shared.revenue import keys, rollups
from tests import raw


def scan(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(raw.from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_in_process(table: str) -> list[dict[str, Any]]:
    """The table's items read straight from moto's in-process backend (mock_aws only): no request,
    no response serialisation, so a test can check a 5,000-item table after every transaction."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    stored = dynamodb_backends[DEFAULT_ACCOUNT_ID][boto3.session.Session().region_name or "us-east-1"].get_table(table)
    return [raw.from_item(item.to_json()["Attributes"]) for item in stored.all_items()]


def assert_invariant(table: str, *, in_process: bool = False) -> None:
    """For every visitor (and the unattributed total) and currency: total == sum of net ledger revenue."""
    items = scan_in_process(table) if in_process else scan(table)
    expected: dict[tuple[str, str | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    actual: dict[tuple[str, str | None], dict[str, int]] = {}
    for item in items:
        if item["sk"] == keys.LEDGER:
            owner = (item["project_id"], item.get("visitor_id"))
            expected[owner][item["currency"]] += item["amount"] - item["refunded"]
        elif item["sk"] == keys.PROFILE:
            actual[(item["project_id"], item["visitor_id"])] = totals_of(item)
        elif item["sk"].startswith(f"{keys.TOTALS}#") and int(item["amount"]):
            actual.setdefault((item["project_id"], None), {})[item["currency"]] = int(item["amount"])
    for owner, totals in expected.items():
        want = {cur: amount for cur, amount in totals.items() if amount}
        assert actual.get(owner, {}) == want, f"totals of {owner} differ from the ledger"
    for owner, totals in actual.items():
        if owner not in expected:
            assert totals == {}, f"{owner} has totals without ledger entries"
    assert rollups_of(items) == rollups_from_ledger(items), "the rollups differ from the ledger"
    assert_months_current(items)


def assert_months_current(items: list[dict[str, Any]]) -> None:
    """Every day item has its month's version item, which counts writes of its day (a transaction
    that writes a day item bumps its month and day there in the same commit); and every day of a
    report cache read at its day's current version is exactly what that day's items summarise to."""
    versions: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    days: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    parts: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for item in items:
        if item.get("kind") == "rollup_month":
            assert item.get("generation"), f"{item['sk']} has no generation"
            versions[(item["pk"], item["sk"].removeprefix(keys.MONTH_PREFIX)[:7])].append(item)
        elif item.get("kind") == "rollup":
            days[(item["pk"], item["day"][:7])].append(item)
        elif item.get("kind") == "report_cache":
            month, part = item["sk"].removeprefix(keys.REPORT_CACHE_PREFIX).rsplit("#", 1)
            parts[(item["pk"], month)][int(part)] = item
    current = {key: cache.month_version(key[1], found) for key, found in versions.items()}
    for (pk, month), day_items in days.items():
        for item in day_items:
            shard = item["sk"].rsplit("#", 1)[1]
            assert f"{shard}:" in current[(pk, month)].days.get(item["day"], ""), f"{item['sk']}: no version of its day"
    for (pk, month), found in parts.items():
        first = found.get(0)
        if first is None or any(n not in found for n in range(int(first["parts"]))):
            continue  # incomplete: never used
        cached = cache.decode(b"".join(_binary(found[n]["data"]) for n in range(int(first["parts"]))))
        version = current[(pk, month)]
        summaries = cache.summarise(days[(pk, month)], version)
        for day, summary in (cached or {}).items():
            if summary.basis == version.days.get(day):  # (a stale day is read again, never used)
                assert summary == summaries[day], f"the cache of {day} is not its day items"
        if first["basis"] == version.basis:
            assert cached == summaries, f"the cache of {month}, at the month's version, is not its days"


def _binary(value: Any) -> bytes:
    """A binary attribute as scanned (boto3's Binary) or as moto stores it (base64 text)."""
    data = getattr(value, "value", value)
    return base64.b64decode(data) if isinstance(data, str) else bytes(data)


def assert_sources_current(table: str) -> None:
    """Every attributed ledger entry records its owner's acquisition.source as the profile has it now
    (once no source change is still being carried to the entries: no profile with a pending one)."""
    items = scan(table)
    sources = {
        (i["project_id"], i["visitor_id"]): (i.get("acquisition") or {}).get("source")
        for i in items
        if i["sk"] == keys.PROFILE
    }
    for item in items:
        if item["sk"] == keys.LEDGER and item.get("visitor_id"):
            owner = (item["project_id"], item["visitor_id"])
            assert item.get("source") == sources.get(owner), f"{item['charge_id']}'s source is not {owner}'s"


def rollups_of(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """The rollup items' counts ((pk, sk) -> attribute -> value), zeros left out."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        if item.get("kind") == "rollup":
            counts = {k: int(v) for k, v in item.items() if rollups.is_rollup_attribute(k) and int(v)}
            if counts:
                found[(item["pk"], item["sk"])] = counts
    return found


def rollups_from_ledger(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """What the rollups must hold, summed from scratch from the ledger entries as api.md counts
    them (written out here again, not through shared.revenue.rollups, so that a mistake in one is
    not the other's)."""
    sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for item in items:
        if item["sk"] != keys.LEDGER:
            continue
        net, currency, visitor = int(item["amount"]) - int(item["refunded"]), item["currency"], item.get("visitor_id")
        day = datetime.fromtimestamp(int(item["created"]), UTC).strftime("%Y-%m-%d")
        shard = zlib.crc32(str(item["charge_id"]).encode()) % rollups.SHARDS
        counts = sums[(keys.rollup_pk(item["project_id"]), keys.rollup_sk(day, shard))]
        if visitor is None:
            counts[f"u|{currency}"] += net
            counts["un"] += 1
            continue
        source = item.get("source") or "(none)"
        counts[f"r|{source}|{currency}"] += net
        counts[f"n|{source}"] += 1
        counts[f"v|{source}|{visitor}"] += 1
        if item.get("tier") is not None:
            counts[f"t|{int(item['tier'])}|{currency}"] += net
    return {key: {k: v for k, v in counts.items() if v} for key, counts in sums.items() if any(counts.values())}


def ledger(table: str, charge_id: str) -> dict[str, Any] | None:
    for item in scan(table):
        if item["sk"] == keys.LEDGER and item["charge_id"] == charge_id:
            return item
    return None


@contextmanager
def dynamodb_hook(event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """`handler` on a botocore event (e.g. "before-call.dynamodb") of every DynamoDB client the
    functions use (pynamodb's, one per table): to count requests, pause or crash at one."""
    clients = tables.clients()
    for client in clients:
        client.meta.events.register(event, handler)
    try:
        yield
    finally:
        for client in clients:
            client.meta.events.unregister(event, handler)


def linked_customers_of(item: dict[str, Any]) -> tuple[str, ...]:
    """The Stripe customers linked to a visitor (its `stripe_customer_ids`), from a plain profile item."""
    return tuple(sorted(item.get("linked") or {}))


def totals_of(item: dict[str, Any]) -> dict[str, int]:
    """A visitor's lifetime revenue per currency, from a plain profile item (zeros left out)."""
    return {currency: int(amount) for currency, amount in (item.get("revenue") or {}).items() if int(amount) != 0}


def unattributed_of(items: list[dict[str, Any]]) -> dict[str, int]:
    """The project's unattributed total per currency, from its plain `TOTALS#<currency>` items."""
    return {
        str(i["currency"]): int(i["amount"])
        for i in items
        if str(i["sk"]).startswith(f"{keys.TOTALS}#") and int(i.get("amount", 0)) != 0
    }
