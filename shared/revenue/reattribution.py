"""Rule 3 from the visitor side: a visitor appearing or identifying can own pending revenue; a
visitor whose acquisition source changed takes its revenue's rollups along."""

from __future__ import annotations

from .. import secrets
from ..stripe_api.lookups import fetch_customer
from ..visitors.models import VisitorSaved
from ..visitors.store import DynamoVisitorStore
from . import engine
from .models import CustomerRecord


def after_visitor_saved(project_id: str, saved: VisitorSaved) -> bool:
    """Re-resolve the revenue that names this visitor or uses its emails; True if anything ran.

    What to re-resolve was stored on the profile by the PUT itself (`pending`), so a PUT retried
    after a crash or a 503 here runs it again; it is removed only once every decision committed."""
    pending = saved.visitor.pending
    if pending is None:
        return False
    visitor_id = saved.visitor.visitor_id
    engine.on_visitor_saved(project_id, visitor_id, pending.created, pending.emails, _lazy_fetcher(project_id))
    if pending.source:
        engine.on_source_changed(project_id, visitor_id)
    DynamoVisitorStore.default().clear_pending(project_id, visitor_id, pending.token)
    return True


def _lazy_fetcher(project_id: str) -> engine.CustomerFetcher:
    """Customers are fetched when their first charge is booked; a fetch here is rare, so the key is
    read only if one is needed (and a disconnected project has nothing to fetch)."""

    def fetch(customer_id: str) -> CustomerRecord:
        try:
            keys = secrets.load(project_id)
        except secrets.SecretNotFound:
            return CustomerRecord(customer_id, email="")
        return fetch_customer(keys.api_key, customer_id)

    return fetch
