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
    return _batch_get(list(dict.fromkeys(pk_sk(k) for k in keys)))


def _batch_get(unique: list[tuple[str, str]]) -> Found:
    if not unique:
        return {}
    tables.bind()
    with dynamo.translate_errors():
        return {(item.pk, item.sk): item for item in RevenueItem.batch_get(unique, consistent_read=True)}


class Reads:
    """The items one attempt of a decision has read, found or absent: a key asked for again costs no
    second request, so a page's first batched read serves every later step of its decision. One per
    attempt (a retry starts from fresh reads); what the decision read is checked at commit anyway."""

    def __init__(self, found: Found | None = None, read: Iterable[Key] = ()) -> None:
        """`found`: what an earlier read of the attempt (e.g. its TransactGetItems) found of `read`."""
        self._seen: dict[tuple[str, str], RevenueItem | None] = {}
        for key in read:
            self._seen[pk_sk(key)] = (found or {}).get(pk_sk(key))

    def get(self, keys: Iterable[Key]) -> Found:
        wanted = list(dict.fromkeys(pk_sk(k) for k in keys))
        missing = [k for k in wanted if k not in self._seen]
        found = _batch_get(missing)
        self._seen.update((k, found.get(k)) for k in missing)
        return {k: item for k in wanted if (item := self._seen[k]) is not None}

    def absent(self, key: Key) -> bool:
        """The attempt has read the key and found nothing (unread keys are not known absent)."""
        pair = pk_sk(key)
        return pair in self._seen and self._seen[pair] is None

    def forget(self, keys: Iterable[Key]) -> None:
        """Items this attempt itself has just written: read them again when asked."""
        for key in keys:
            self._seen.pop(pk_sk(key), None)


def query_partition(pk: str, sk_prefix: str | None = None) -> list[RevenueItem]:
    """Every item of a partition (or those whose sort key starts with `sk_prefix`), strongly consistent."""
    tables.bind()
    condition = RevenueItem.sk.startswith(sk_prefix) if sk_prefix else None
    with dynamo.translate_errors():
        return list(RevenueItem.query(pk, condition, consistent_read=True))
