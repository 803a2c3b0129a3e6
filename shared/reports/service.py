"""The revenue report use case: the window's ledger entries, then their owners' sources, then the report."""

from __future__ import annotations

from typing import Any

from . import store
from .revenue import Window, report, summarise


def revenue_report(project_id: str, window: Window) -> dict[str, Any]:
    """One streaming pass over the ledger (GSI ByCreated), one batch read of the distinct owners."""
    summary = summarise(store.ledger_rows(project_id, window))
    sources = store.visitor_sources(project_id, summary.visitors)
    return report(summary, sources)
