"""The revenue report use case: whole UTC days from the rollups, the partial days at the window's
edges from the ledger (GSI ByCreated); no profile is read (each entry records its owner's source).

`revenue_report_from_ledger` computes the same report from the window's ledger entries alone: what
the property tests and `make bench-reports` compare the rollup-based report with.
"""

from __future__ import annotations

from typing import Any

from . import store
from .revenue import Tally, Window, split


def revenue_report(project_id: str, window: Window) -> dict[str, Any]:
    """One Query of the rollup partition (its pages: about 1 MB of day shards each) for the whole
    days, one ByCreated Query per partial day at an edge (at most two; one when no whole day lies
    between them)."""
    parts = split(window)
    tally = Tally()
    if parts.days is not None:
        first_day, last_day = parts.days
        for item in store.rollup_items(project_id, first_day, last_day):
            tally.add_rollup(item)
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
