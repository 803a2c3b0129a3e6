"""The project's webhook endpoint in Stripe: still there, enabled and pointing at us (domain rule 7).

An endpoint disabled (by the merchant, or by Stripe after days of failed deliveries) or whose URL or
events drifted is updated in place: it keeps its signing secret, so nothing else has to change. A
deleted one is created again as connect creates it; its secret, which Stripe shows only then, is
stored beside the key before the integration is pointed at it, so a sweep stopped in between leaves
the old (deleted) id and the next sweep recreates again. Endpoints of this project that such a
stopped sweep left behind are deleted first: nobody knows their secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import stripe

from .. import secrets
from ..integrations.connect import webhook_url
from ..isotime import iso_now
from ..observability import logger
from ..stripe_api.client import API_VERSION
from ..stripe_api.events import PROCESSED_EVENT_TYPES
from . import state

PROJECT_METADATA = "ripples_project_id"  # set by connect too: which project an endpoint serves


def ensure(claim: state.Claim, client: stripe.StripeClient, api_key: str, pace: Callable[[], None]) -> None:
    """Check the endpoint, repair or recreate it, and record what was done. Stripe's refusals
    propagate; LostClaim if the project was disconnected or reconnected meanwhile."""
    project_id = claim.candidate.project_id
    endpoint_id = claim.candidate.webhook_endpoint_id
    pace()
    try:
        endpoint = client.v1.webhook_endpoints.retrieve(endpoint_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        _recreate(claim, client, api_key, pace)
        return
    if _as_wanted(endpoint, project_id):
        return
    pace()
    repair: Any = {**_routing(project_id), "disabled": False}
    client.v1.webhook_endpoints.update(endpoint_id, params=repair)
    state.save(claim, {"endpoint_repaired_at": iso_now()})
    logger.info("webhook endpoint repaired", webhook_endpoint_id=endpoint_id, was=endpoint.status)


def _routing(project_id: str) -> Any:  # the SDK types event names as literals; ours are constants
    return {"url": webhook_url(project_id), "enabled_events": list(PROCESSED_EVENT_TYPES)}


def _as_wanted(endpoint: stripe.WebhookEndpoint, project_id: str) -> bool:
    events = set(endpoint.enabled_events)
    return (
        endpoint.status == "enabled"
        and endpoint.url == webhook_url(project_id)
        and ("*" in events or events >= set(PROCESSED_EVENT_TYPES))
    )


def _recreate(claim: state.Claim, client: stripe.StripeClient, api_key: str, pace: Callable[[], None]) -> None:
    project_id = claim.candidate.project_id
    for orphan in _orphans(client, project_id, pace):
        pace()
        client.v1.webhook_endpoints.delete(orphan)
    pace()
    params: Any = {
        **_routing(project_id),
        "api_version": API_VERSION,
        "description": "Ripples revenue attribution",
        "metadata": {PROJECT_METADATA: project_id},
    }
    created = client.v1.webhook_endpoints.create(params=params)
    try:
        if not _store_secret(project_id, api_key, created.secret or ""):
            raise state.LostClaim(project_id)
        state.save(claim, {"endpoint_recreated_at": iso_now()}, endpoint_id=created.id)
    except state.LostClaim:
        _discard(client, created.id)  # the project's endpoint is another one now, or none
        raise
    logger.info(
        "webhook endpoint recreated", webhook_endpoint_id=created.id, deleted=claim.candidate.webhook_endpoint_id
    )


def _discard(client: stripe.StripeClient, endpoint_id: str) -> None:
    try:
        client.v1.webhook_endpoints.delete(endpoint_id)
    except stripe.StripeError as exc:  # left to Stripe: deliveries to a project it does not serve fail
        logger.warning("recreated endpoint left behind", webhook_endpoint_id=endpoint_id, error=type(exc).__name__)


def _orphans(client: stripe.StripeClient, project_id: str, pace: Callable[[], None]) -> list[str]:
    """This project's endpoints at our URL (at most 16 per account: one page); the one the
    integration names is gone, so any found was left by a recreation that stopped half-way."""
    pace()
    listed = client.v1.webhook_endpoints.list(params={"limit": 100})
    ours = []
    for listed_endpoint in listed.data:
        metadata = listed_endpoint.metadata.to_dict()
        if metadata.get(PROJECT_METADATA) == project_id and listed_endpoint.url == webhook_url(project_id):
            ours.append(listed_endpoint.id)
    return ours


def _store_secret(project_id: str, api_key: str, webhook_secret: str) -> bool:
    """The new endpoint's secret beside the key. False, writing nothing, when the key changed or
    the secret is gone meanwhile (a reconnect with another key, a disconnect)."""
    client = secrets.client()
    name = secrets.secret_name(project_id)
    try:
        stored = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
        if stored.get("api_key") != api_key:
            return False
        body = json.dumps({"api_key": api_key, "webhook_secret": webhook_secret})  # shared.secrets.store's shape
        client.put_secret_value(SecretId=name, SecretString=body)
    except client.exceptions.ResourceNotFoundException:
        return False
    secrets.provider().clear_cache()
    return True
