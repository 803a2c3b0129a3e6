"""Re-sync and disconnect (domain rule 7): the API request changes the integration and queues the
work; removing imported data happens in pages on the backfill queue (shared.backfill.removal)."""

from __future__ import annotations

from typing import Any

import stripe
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from .. import secrets
from ..backfill import progress, queue, removal, slices
from ..errors import NotConnected
from ..observability import logger
from ..settings import get_settings
from ..stripe_api.client import stripe_client
from . import store
from .connect import next_run
from .items import IntegrationItem
from .models import Integration

ATTEMPTS = 3  # a concurrent re-sync moved the run: read again


def _not_connected() -> NotConnected:
    return NotConnected("No Stripe integration is connected for this project.")


def _connected(project_id: str) -> Integration:
    integration = store.get(project_id)
    if integration is None or integration.status != "connected":
        raise _not_connected()
    return integration


def _same_run(integration: Integration) -> Condition:
    """The integration is still connected and at the run it was read at."""
    connected: Condition = IntegrationItem.status == "connected"
    same: Condition = (
        IntegrationItem.backfill["run"] == integration.backfill["run"]
        if integration.backfill
        else IntegrationItem.backfill.does_not_exist()
    )
    both: Condition = connected & same
    return both


def resync(project_id: str) -> Integration:
    """Clear and re-import: a new run whose imported data is removed first, then backfilled."""
    per_phase = get_settings().backfill_slices_per_phase
    for _ in range(ATTEMPTS):
        existing = _connected(project_id)
        run = next_run(existing)
        actions: list[Action] = [
            IntegrationItem.backfill.set(progress.new_run(run, slices.slice_count(per_phase))),
            IntegrationItem.data_removal.set(removal.begin(run)),
        ]
        updated = store.update(project_id, actions, _same_run(existing))
        if updated is not None:
            queue.send([slices.RemoveMessage(project_id=project_id, run=run, then_backfill=per_phase)])
            logger.info("stripe re-sync queued", run=run)
            return updated
    raise _not_connected()


def disconnect(project_id: str, keep_data: bool) -> bool:
    """Delete the webhook endpoint (best effort) and the secrets, stop any backfill, and with
    keep_data=False queue the removal of the imported data. Returns whether data is being removed."""
    existing = _connected(project_id)
    _delete_endpoint(project_id, existing.webhook_endpoint_id)
    secrets.delete(project_id)
    run = int(existing.backfill["run"]) if existing.backfill else 0
    actions: list[Action] = [IntegrationItem.status.set("disconnected")]
    if existing.backfill and existing.backfill.get("status") in progress.ACTIVE:
        stopped = {**existing.backfill, "status": "failed", "error": "Stopped: the integration was disconnected."}
        actions.append(IntegrationItem.backfill.set(stopped))
    if not keep_data:
        actions.append(IntegrationItem.data_removal.set(removal.begin(run)))
    elif (existing.data_removal or {}).get("status") == "running":  # a re-sync's removal stops where it is
        actions.append(IntegrationItem.data_removal["status"].set("stopped"))
    if store.update(project_id, actions, IntegrationItem.status == "connected") is None:
        raise _not_connected()  # a concurrent disconnect did it
    if not keep_data:
        queue.send([slices.RemoveMessage(project_id=project_id, run=run)])
    logger.info("stripe disconnected", data_removed=not keep_data)
    return not keep_data


def _delete_endpoint(project_id: str, endpoint_id: str) -> None:
    """Best effort: a revoked key, or an endpoint already deleted, must not block a disconnect."""
    try:
        api_key = secrets.load(project_id).api_key
    except secrets.SecretNotFound:
        logger.warning("no key left to delete the webhook endpoint with", webhook_endpoint_id=endpoint_id)
        return
    try:
        stripe_client(api_key).v1.webhook_endpoints.delete(endpoint_id)
    except stripe.StripeError as exc:
        details: Any = {"error": type(exc).__name__, "http_status": exc.http_status}
        logger.warning("webhook endpoint not deleted", webhook_endpoint_id=endpoint_id, **details)
