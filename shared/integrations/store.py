"""Integration records in DynamoDB (IntegrationsTable, one item per project), through the pynamodb
model of shared.integrations.items."""

from __future__ import annotations

from dataclasses import asdict

from .. import dynamo, tables
from ..errors import AlreadyConnected, StaleUpdate
from .items import IntegrationItem
from .models import Integration


def get(project_id: str) -> Integration | None:
    tables.bind()
    with dynamo.translate_errors():
        try:
            item = IntegrationItem.get(project_id, consistent_read=True)
        except IntegrationItem.DoesNotExist:
            return None
    values = {name: getattr(item, name) for name in Integration.__dataclass_fields__}
    values["backfill"] = item.backfill.as_dict() if item.backfill is not None else None
    values["warnings"] = list(item.warnings or [])
    return Integration(**values)


def create(integration: Integration) -> None:
    """Save a new connection; refused when the project is already connected (a racing connect)."""
    tables.bind()
    condition = IntegrationItem.project_id.does_not_exist() | (IntegrationItem.status == "disconnected")
    try:
        with dynamo.translate_errors():
            IntegrationItem(**asdict(integration)).save(condition)
    except StaleUpdate:
        raise AlreadyConnected("This project is already connected to Stripe.") from None


def delete(project_id: str) -> None:
    tables.bind()
    with dynamo.translate_errors():
        IntegrationItem(project_id).delete()


def touch_last_event(project_id: str, at: str) -> None:
    """Record when the last webhook event arrived (only moves forward)."""
    tables.bind()
    item = IntegrationItem(project_id)
    newer = IntegrationItem.last_event_at.does_not_exist() | (IntegrationItem.last_event_at < at)
    try:
        with dynamo.translate_errors():
            item.update([IntegrationItem.last_event_at.set(at)], IntegrationItem.project_id.exists() & newer)
    except StaleUpdate:
        pass
