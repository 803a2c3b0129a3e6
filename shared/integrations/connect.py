"""Connecting a project to Stripe (domain rule 7): check, create, store, and undo on any failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stripe

from .. import secrets
from ..backfill import progress, queue, removal, slices
from ..errors import AlreadyConnected, MissingPermissions
from ..isotime import iso_now
from ..observability import logger
from ..settings import get_settings
from ..stripe_api.client import API_VERSION, stripe_client
from ..stripe_api.errors import translate
from ..stripe_api.events import PROCESSED_EVENT_TYPES
from ..stripe_api.permissions import missing_permissions
from . import store
from .models import FULL_ACCESS_KEY_WARNING, Integration, parse_key


def webhook_url(project_id: str) -> str:
    return f"{get_settings().public_base_url}/webhooks/stripe/{project_id}"


def connect(project_id: str, api_key: str) -> Integration:
    """Probe the key, create the webhook endpoint, store the secrets, save the integration, queue
    the backfill.

    Nothing is half-saved: when a step fails, every step before it is undone (best effort, last
    first) and the original error is raised.
    """
    key = parse_key(api_key)
    existing = store.get(project_id)
    if existing is not None and existing.status != "disconnected":
        raise AlreadyConnected("This project is already connected to Stripe.")
    client = stripe_client(key.value)
    missing = missing_permissions(client)
    if missing:
        raise MissingPermissions("The key lacks permissions Ripples needs.", missing=missing)

    undo: list[tuple[str, Callable[[], object]]] = []
    try:
        endpoint = _create_endpoint(client, project_id)
        undo.append(("webhook endpoint", lambda: client.v1.webhook_endpoints.delete(endpoint.id)))
        secrets.store(project_id, secrets.StripeSecrets(key.value, endpoint.secret or ""))
        undo.append(("secrets", lambda: secrets.delete(project_id)))
        run = next_run(existing)
        per_phase = get_settings().backfill_slices_per_phase
        # A disconnect's removal of the data still under way finishes first, then the import starts.
        removing = existing is not None and (existing.data_removal or {}).get("status") == "running"
        integration = Integration(
            project_id=project_id,
            status="connected",
            mode=key.mode,
            key_hint=key.hint,
            webhook_endpoint_id=endpoint.id,
            connected_at=iso_now(),
            backfill=progress.new_run(run, slices.slice_count(per_phase)),
            warnings=[FULL_ACCESS_KEY_WARNING] if key.kind == "sk" else [],
            data_removal=removal.begin(run) if removing else None,
        )
        store.create(integration)
        # (a reconnect puts the disconnected record back: its run number and any removal under way)
        undo.append(("integration record", lambda: store.put(existing) if existing else store.delete(project_id)))
        first: slices.AnyMessage = (
            slices.RemoveMessage(project_id=project_id, run=run, then_backfill=per_phase)
            if removing
            else slices.StartMessage(project_id=project_id, run=run, per_phase=per_phase)
        )
        queue.send([first])
    except Exception:
        _undo(project_id, undo)
        raise
    logger.info("stripe connected", project_id=project_id, mode=key.mode, webhook_endpoint_id=endpoint.id)
    return integration


def next_run(existing: Integration | None) -> int:
    """Runs number on across reconnects, so a message of an earlier connection's run is dropped."""
    return int(existing.backfill["run"]) + 1 if existing is not None and existing.backfill else 1


def _create_endpoint(client: stripe.StripeClient, project_id: str) -> stripe.WebhookEndpoint:
    try:
        params: Any = {  # the SDK types event names and versions as literals; ours are constants
            "url": webhook_url(project_id),
            "enabled_events": list(PROCESSED_EVENT_TYPES),
            "api_version": API_VERSION,
            "description": "Ripples revenue attribution",
            "metadata": {"ripples_project_id": project_id},
        }
        return client.v1.webhook_endpoints.create(params=params)
    except stripe.PermissionError:
        raise MissingPermissions(
            "The key lacks permissions Ripples needs.", missing=["Webhook Endpoints: Write"]
        ) from None
    except stripe.StripeError as exc:
        raise translate(exc) from exc


def _undo(project_id: str, steps: list[tuple[str, Callable[[], object]]]) -> None:
    for what, step in reversed(steps):
        try:
            step()
        except Exception:  # keep undoing the rest; the caller sees the original failure
            logger.exception("connect rollback step failed", project_id=project_id, step=what)
