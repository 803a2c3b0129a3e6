"""Report data access: ledger entries by Stripe `created` (GSI ByCreated) and owners' acquisition sources.

Reads only. Throttling after botocore's retries, a batch read that DynamoDB keeps leaving
unprocessed, or an unreachable endpoint, is `ServiceUnavailable` (503).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .. import dynamo
from ..revenue import keys
from ..revenue.store import batch_get
from ..settings import get_settings
from .revenue import LedgerRow, Window

# Items per Query page; None lets DynamoDB fill 1 MB pages. Tests set it small to exercise paging.
QUERY_PAGE_LIMIT: int | None = None
_LEDGER_ATTRIBUTES = ("charge_id", "created", "currency", "amount", "refunded", "visitor_id", "tier")


def ledger_query(project_id: str, window: Window) -> dict[str, Any]:
    """The Query (without paging) selecting the project's ledger entries created in the window.

    The bounds are gsi1sk values built exactly as `keys.ledger_index` builds them, with an empty
    charge id: "<created 12 digits>#". Every entry's gsi1sk is that plus its (non-empty) charge id,
    so `gsi1sk >= bound(start)` selects created >= start and `gsi1sk < bound(end)` created < end.
    """
    index = keys.ledger_index(project_id, 0, "")
    values: dict[str, Any] = {":pk": {"S": index["gsi1pk"]}}
    condition = "gsi1pk = :pk"
    start = keys.ledger_index(project_id, window.start, "")["gsi1sk"] if window.start is not None else None
    end = keys.ledger_index(project_id, window.end, "")["gsi1sk"] if window.end is not None else None
    if start is not None and end is not None:
        # BETWEEN is inclusive; no entry's gsi1sk equals a bound (charge ids are never empty).
        condition += " AND gsi1sk BETWEEN :start AND :end"
        values.update({":start": {"S": start}, ":end": {"S": end}})
    elif start is not None:
        condition += " AND gsi1sk >= :start"
        values[":start"] = {"S": start}
    elif end is not None:
        condition += " AND gsi1sk < :end"
        values[":end"] = {"S": end}
    names = {f"#a{i}": name for i, name in enumerate(_LEDGER_ATTRIBUTES)}
    query: dict[str, Any] = {
        "TableName": get_settings().revenue_table,
        "IndexName": keys.LEDGER_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ExpressionAttributeNames": names,
        "ProjectionExpression": ", ".join(names),
    }
    if QUERY_PAGE_LIMIT is not None:
        query["Limit"] = QUERY_PAGE_LIMIT
    return query


def ledger_rows(project_id: str, window: Window) -> Iterator[LedgerRow]:
    """The project's ledger entries created in the window, oldest first, every page of the index."""
    if window.is_empty:
        return
    query = ledger_query(project_id, window)
    while True:
        with dynamo.translate_errors():
            page = dynamo.client().query(**query)
        for item in page.get("Items", []):
            yield ledger_row(dynamo.from_item(item))
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        query["ExclusiveStartKey"] = last


def ledger_row(item: dict[str, Any]) -> LedgerRow:
    """A ledger entry as booking writes it (docs/data-model.md): no visitor_id/tier when unattributed."""
    visitor_id, tier = item.get("visitor_id"), item.get("tier")
    return LedgerRow(
        charge_id=str(item["charge_id"]),
        created=int(item["created"]),
        currency=str(item["currency"]),
        amount=int(item["amount"]),
        refunded=int(item.get("refunded", 0)),
        visitor_id=str(visitor_id) if visitor_id is not None else None,
        tier=int(tier) if tier is not None else None,
    )


def visitor_sources(project_id: str, visitor_ids: Iterable[str]) -> dict[str, str | None]:
    """`acquisition.source` of each visitor's profile (None when it has none or no profile is found)."""
    wanted = sorted(set(visitor_ids))
    sources: dict[str, str | None] = dict.fromkeys(wanted)
    if not wanted:
        return sources
    table = get_settings().revenue_table
    with dynamo.translate_errors():
        found = batch_get({table: [keys.visitor(project_id, v) for v in wanted]})
    prefix = keys.visitor_pk(project_id, "")
    for item in found[table]:
        visitor_id = str(item["pk"]).removeprefix(prefix)
        acquisition = item.get("acquisition")
        source = acquisition.get("source") if isinstance(acquisition, dict) else None
        sources[visitor_id] = str(source) if source is not None else None
    return sources
