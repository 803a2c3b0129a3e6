"""The IntegrationsTable item as a pynamodb model (one per project; never a key or secret)."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import ListAttribute, MapAttribute, UnicodeAttribute
from pynamodb.models import Model


class IntegrationItem(Model):
    class Meta:
        table_name: str | None = None  # bound from settings at first use (shared.tables)
        region: str | None = None

    project_id = UnicodeAttribute(hash_key=True)
    status = UnicodeAttribute()
    mode = UnicodeAttribute()
    key_hint = UnicodeAttribute()
    webhook_endpoint_id = UnicodeAttribute()
    connected_at = UnicodeAttribute()
    last_event_at = UnicodeAttribute(null=True)
    backfill = MapAttribute[str, Any](null=True)
    data_removal = MapAttribute[str, Any](null=True)  # the removal of imported data a re-sync or disconnect started
    reconcile = MapAttribute[str, Any](null=True)  # the scheduled reconcile's state (shared.reconcile.state)
    warnings = ListAttribute[Any](default=list)
