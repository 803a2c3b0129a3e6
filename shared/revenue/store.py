"""Revenue reads: batched by key (BatchGetItem, 100 keys a call, across tables) and by partition.

Writes go through shared.revenue.writer, which turns a decision's intents into transactions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from .. import dynamo
from ..errors import ServiceUnavailable
from ..settings import get_settings

_BATCH_GET_LIMIT = 100


def batch_get(requests: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """BatchGetItem over several tables, chunked by 100 keys, retrying unprocessed keys."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in requests}
    pending = [(table, key) for table, table_keys in requests.items() for key in _unique(table_keys)]
    for start in range(0, len(pending), _BATCH_GET_LIMIT):
        chunk: dict[str, Any] = {}
        for table, key in pending[start : start + _BATCH_GET_LIMIT]:
            chunk.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(key)
        for attempt in range(8):
            with dynamo.translate_errors():
                response = dynamo.client().batch_get_item(RequestItems=chunk)
            for table, items in response.get("Responses", {}).items():
                found[table].extend(dynamo.from_item(item) for item in items)
            chunk = response.get("UnprocessedKeys") or {}
            if not chunk:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise ServiceUnavailable("DynamoDB left keys unprocessed after retries; retry.")
    return found


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({json.dumps(k, sort_keys=True): k for k in items}.values())


def revenue_items(project_keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not project_keys:
        return []
    table = get_settings().revenue_table
    return batch_get({table: project_keys})[table]


def query_partition(pk: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
    """Every item of a partition (or those whose sort key starts with `sk_prefix`), strongly consistent."""
    values = {":pk": {"S": pk}}
    condition = "pk = :pk"
    if sk_prefix:
        condition += " AND begins_with(sk, :prefix)"
        values[":prefix"] = {"S": sk_prefix}
    kwargs: dict[str, Any] = {
        "TableName": get_settings().revenue_table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
    }
    items: list[dict[str, Any]] = []
    while True:
        with dynamo.translate_errors():
            page = dynamo.client().query(**kwargs)
        items.extend(dynamo.from_item(i) for i in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
