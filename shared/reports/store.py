"""Report data access: ledger entries by Stripe `created` (GSI ByCreated), the daily rollups, the
months' versions and the report's caches of months (shared.reports.cache).

Queries (no profile is read: each entry records its owner's source), and the caches it writes.
Throttling after botocore's retries, or an unreachable endpoint, is `ServiceUnavailable` (503).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.expressions.condition import Condition

from .. import dynamo, tables
from ..errors import ServiceUnavailable
from ..observability import logger
from ..revenue import keys, rollups
from ..revenue.items import LedgerItem, ReportCacheItem
from ..revenue.store import pk_sk
from . import cache
from .revenue import LedgerRow, Window

# Items per Query page; None lets DynamoDB fill 1 MB pages. Tests set it small to exercise paging.
QUERY_PAGE_LIMIT: int | None = None
# `source`: the owner's acquisition.source, kept current by booking (no profile read per owner)
_LEDGER_ATTRIBUTES = ["kind", "charge_id", "created", "currency", "amount", "refunded", "visitor_id", "tier", "source"]


def window_condition(project_id: str, window: Window) -> Condition | None:
    """The sort-key condition selecting the project's ledger entries created in the window.

    The bounds are gsi1sk values built exactly as `keys.ledger_index` builds them, with an empty
    charge id: "<created 12 digits>#". Every entry's gsi1sk is that plus its (non-empty) charge id,
    so `gsi1sk >= bound(start)` selects created >= start and `gsi1sk < bound(end)` created < end.
    """
    start = keys.ledger_index(project_id, window.start, "")["gsi1sk"] if window.start is not None else None
    end = keys.ledger_index(project_id, window.end, "")["gsi1sk"] if window.end is not None else None
    sk = LedgerItem.gsi1sk
    if start is not None and end is not None:
        # BETWEEN is inclusive; no entry's gsi1sk equals a bound (charge ids are never empty).
        return sk.between(start, end)
    if start is not None:
        return sk >= start
    if end is not None:
        return sk < end
    return None


def ledger_rows(project_id: str, window: Window) -> Iterator[LedgerRow]:
    """The project's ledger entries created in the window, oldest first, every page of the index."""
    if window.is_empty:
        return
    tables.bind()
    with dynamo.translate_errors():
        for item in LedgerItem.by_created.query(
            keys.ledger_index(project_id, 0, "")["gsi1pk"],
            window_condition(project_id, window),
            attributes_to_get=_LEDGER_ATTRIBUTES,
            page_size=QUERY_PAGE_LIMIT,
        ):
            yield ledger_row(item)


def ledger_row(item: LedgerItem) -> LedgerRow:
    """A ledger entry as booking writes it (docs/data-model.md): no visitor_id/tier when unattributed."""
    return LedgerRow(
        charge_id=item.charge_id,
        created=int(item.created),
        currency=item.currency,
        amount=int(item.amount),
        refunded=int(item.refunded or 0),
        visitor_id=item.visitor_id,
        tier=int(item.tier) if item.tier is not None else None,
        source=item.source,
    )


def rollup_items(project_id: str, first_day: str, last_day: str) -> Iterator[dict[str, Any]]:
    """The project's day items of the UTC days [first_day, last_day], every page of one Query of the
    project's rollup partition (shared.revenue.rollups.read)."""
    tables.bind()
    yield from rollups.read(project_id, first_day, last_day)


def month_versions(project_id: str, first_month: str | None, last_month: str | None) -> dict[str, cache.MonthVersion]:
    """The version of every month in [first_month, last_month] (None: unbounded) that has day
    items: one Query of the months' version items."""
    tables.bind()
    found: dict[str, list[dict[str, Any]]] = {}
    for item in rollups.read_versions(project_id, first_month, last_month):
        found.setdefault(str(item["sk"]).removeprefix(keys.MONTH_PREFIX)[:7], []).append(item)
    return {month: cache.month_version(month, items) for month, items in found.items()}


def cached_months(project_id: str, first_month: str | None, last_month: str | None) -> dict[str, tuple[str, bytes]]:
    """The report's caches of the months in [first_month, last_month] (None: unbounded): per month
    its basis and data, when every part of one basis is there."""
    tables.bind()
    low = keys.report_cache_sk(first_month, 0) if first_month else keys.REPORT_CACHE_PREFIX
    high = f"{keys.REPORT_CACHE_PREFIX}{last_month}#~" if last_month else keys.REPORT_CACHE_PREFIX + "~"
    parts: dict[str, list[ReportCacheItem]] = {}
    with dynamo.translate_errors():
        for item in ReportCacheItem.query(
            keys.rollup_pk(project_id), ReportCacheItem.sk.between(low, high), consistent_read=True
        ):
            month = item.sk.removeprefix(keys.REPORT_CACHE_PREFIX).rsplit("#", 1)[0]
            parts.setdefault(month, []).append(item)
    found = {}
    for month, items in parts.items():
        items.sort(key=lambda item: int(item.sk.rsplit("#", 1)[1]))
        first = items[0]
        whole = [item for item in items if item.basis == first.basis][: int(first.parts)]
        if len(whole) == int(first.parts) and all(i.sk == keys.report_cache_sk(month, n) for n, i in enumerate(whole)):
            found[month] = (first.basis, b"".join(item.data for item in whole))
    return found


def save_cache(project_id: str, month: str, basis: str, data: bytes) -> None:
    """The month's cache, in parts (BatchWriteItem). Best effort: a cache that is not written is
    built again by the next report."""
    chunks = cache.split_parts(data)
    try:
        with dynamo.translate_errors(), ReportCacheItem.batch_write() as batch:
            for part, chunk in enumerate(chunks):
                batch.save(
                    ReportCacheItem(
                        *pk_sk(keys.report_cache(project_id, month, part)),
                        project_id=project_id,
                        basis=basis,
                        parts=len(chunks),
                        data=chunk,
                    )
                )
    except ServiceUnavailable:
        logger.warning("report cache of %s not written (DynamoDB busy)", month)
