"""Report data access: ledger entries by Stripe `created` (GSI ByCreated) and the daily rollups.

Reads only, Queries only (no profile is read: each entry records its owner's source). Throttling
after botocore's retries, or an unreachable endpoint, is `ServiceUnavailable` (503).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pynamodb.expressions.condition import Condition

from .. import dynamo, tables
from ..revenue import keys, rollups
from ..revenue.items import LedgerItem
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


def rollup_items(project_id: str, first_day: str | None, last_day: str | None) -> Iterator[dict[str, Any]]:
    """The project's rollup items of the UTC days [first_day, last_day] (None: unbounded), every
    page of one Query of the project's rollup partition (shared.revenue.rollups.read)."""
    tables.bind()
    yield from rollups.read(project_id, first_day, last_day)
