"""The revenue report use case: whole UTC days from the rollups (through the report's cache of
each month), the partial days at the window's edges from the ledger (GSI ByCreated); no profile is
read (each entry records its owner's source).

`revenue_report_from_ledger` computes the same report from the window's ledger entries alone: what
the property tests and `make bench-reports` compare the rollup-based report with.
"""

from __future__ import annotations

from typing import Any

from . import days, store
from .revenue import Tally, Window, split


def revenue_report(project_id: str, window: Window) -> dict[str, Any]:
    """The whole days month by month (shared.reports.days: one Query of the months' versions, one of
    their caches, one of day items per run of months whose cache is stale), one ByCreated Query per
    partial day at an edge (at most two; one when no whole day lies between them)."""
    parts = split(window)
    tally = Tally()
    if parts.days is not None:
        tally.add_days(days.whole_days(project_id, *parts.days))
    for edge in parts.edges:
        for row in store.ledger_rows(project_id, edge):
            tally.add_row(row)
    return tally.body()


def revenue_report_from_ledger(project_id: str, window: Window) -> dict[str, Any]:
    """The same report from every ledger entry of the window (one streaming pass over ByCreated)."""
    tally = Tally()
    for row in store.ledger_rows(project_id, window):
        tally.add_row(row)
    return tally.body()
