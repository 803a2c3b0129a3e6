"""Reading the revenue table back in tests: the ledger/total invariant (domain rule 4) and helpers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import boto3

from shared import dynamo
from shared.revenue import keys


def scan(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(dynamo.from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_invariant(table: str) -> None:
    """For every visitor (and the unattributed total) and currency: total == sum of net ledger revenue."""
    expected: dict[tuple[str, str | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    actual: dict[tuple[str, str | None], dict[str, int]] = {}
    for item in scan(table):
        if item["sk"] == keys.LEDGER:
            owner = (item["project_id"], item.get("visitor_id"))
            expected[owner][item["currency"]] += item["amount"] - item["refunded"]
        elif item["sk"] == keys.PROFILE:
            actual[(item["project_id"], item["visitor_id"])] = keys.totals_of(item)
        elif item["sk"] == keys.TOTALS:
            actual[(item["project_id"], None)] = keys.totals_of(item)
    for owner, totals in expected.items():
        want = {cur: amount for cur, amount in totals.items() if amount}
        assert actual.get(owner, {}) == want, f"totals of {owner} differ from the ledger"
    for owner, totals in actual.items():
        if owner not in expected:
            assert totals == {}, f"{owner} has totals without ledger entries"


def ledger(table: str, charge_id: str) -> dict[str, Any] | None:
    for item in scan(table):
        if item["sk"] == keys.LEDGER and item["charge_id"] == charge_id:
            return item
    return None
