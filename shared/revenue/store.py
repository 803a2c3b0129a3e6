"""Revenue reads, through the pynamodb models: a decision's first items in one TransactGetItems
(with the integration), then batched gets (100 keys a call) and partition queries.

Writes go through shared.revenue.writer, which turns a decision's intents into transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynamodb.transactions import TransactGet

from .. import dynamo, tables
from ..integrations.items import IntegrationItem
from .items import RevenueItem

Key = dict[str, Any]  # a raw key as shared.revenue.keys builds it
Found = dict[tuple[str, str], RevenueItem]  # (pk, sk) -> item


def pk_sk(key: Key) -> tuple[str, str]:
    return key["pk"]["S"], key["sk"]["S"]


def at(found: Found, key: Key) -> Any:
    """The item at `key` among those read (None if absent)."""
    return found.get(pk_sk(key))


def first_read(keys: list[Key], project: str) -> tuple[Found, IntegrationItem | None]:
    """The integration and a decision's first items, in one serializable TransactGetItems."""
    tables.bind()
    unique = list(dict.fromkeys(pk_sk(k) for k in keys))
    with dynamo.translate_errors(), TransactGet(connection=tables.revenue_connection()) as get:
        futures = [get.get(RevenueItem, pk, sk) for pk, sk in unique]
        integration = get.get(IntegrationItem, project)
    found = {}
    for future in futures:
        try:
            item = future.get()
        except RevenueItem.DoesNotExist:
            continue
        found[(item.pk, item.sk)] = item
    try:
        return found, integration.get()
    except IntegrationItem.DoesNotExist:
        return found, None


def batch_get(keys: Iterable[Key]) -> Found:
    """Strongly consistent BatchGetItem (pynamodb pages by 100 keys and retries unprocessed ones)."""
    tables.bind()
    unique = list(dict.fromkeys(pk_sk(k) for k in keys))
    if not unique:
        return {}
    with dynamo.translate_errors():
        return {(item.pk, item.sk): item for item in RevenueItem.batch_get(unique, consistent_read=True)}


def query_partition(pk: str, sk_prefix: str | None = None) -> list[RevenueItem]:
    """Every item of a partition (or those whose sort key starts with `sk_prefix`), strongly consistent."""
    tables.bind()
    condition = RevenueItem.sk.startswith(sk_prefix) if sk_prefix else None
    with dynamo.translate_errors():
        return list(RevenueItem.query(pk, condition, consistent_read=True))
