"""Integration records in DynamoDB (IntegrationsTable, one item per project), through the pynamodb
model of shared.integrations.items."""

from __future__ import annotations

from dataclasses import asdict

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .. import dynamo, tables
from ..errors import AlreadyConnected, StaleUpdate
from ..revenue.records import plain
from .items import IntegrationItem
from .models import Integration


def get(project_id: str) -> Integration | None:
    tables.bind()
    with dynamo.translate_errors():
        try:
            item = IntegrationItem.get(project_id, consistent_read=True)
        except IntegrationItem.DoesNotExist:
            return None
    return _integration(item)


def _integration(item: IntegrationItem) -> Integration:
    values = {name: getattr(item, name) for name in Integration.__dataclass_fields__}
    for name in ("backfill", "data_removal", "reconcile"):
        values[name] = plain(getattr(item, name))
    values["warnings"] = list(item.warnings or [])
    return Integration(**values)


def update(project_id: str, actions: list[Action], condition: Condition) -> Integration | None:
    """Apply the actions if the condition holds; the integration as written, or None if it did not."""
    tables.bind()
    item = IntegrationItem(project_id)
    try:
        with dynamo.translate_errors():
            item.update(actions, condition & IntegrationItem.project_id.exists())
    except StaleUpdate:
        return None
    return _integration(item)


def create(integration: Integration) -> None:
    """Save a new connection; refused when the project is already connected (a racing connect)."""
    tables.bind()
    condition = IntegrationItem.project_id.does_not_exist() | (IntegrationItem.status == "disconnected")
    try:
        with dynamo.translate_errors():
            IntegrationItem(**asdict(integration)).save(condition)
    except StaleUpdate:
        raise AlreadyConnected("This project is already connected to Stripe.") from None


def put(integration: Integration) -> None:
    """Write the record as given (a failed reconnect restoring the disconnected one)."""
    tables.bind()
    with dynamo.translate_errors():
        IntegrationItem(**asdict(integration)).save()


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
