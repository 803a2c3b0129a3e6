"""Receiving a Stripe webhook: verify first, then dispatch by event type (a table, not ifs).

The route is unauthenticated, so what a caller can make us spend is bounded: the checks that cost
nothing (id, size, the signature header's shape and age) come before any AWS request, an unknown
project is remembered (secrets.load), and bad signatures force at most one re-read of a project's
secret per interval (secrets.refresh).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import secrets
from .errors import InvalidSignature, NotFound, PayloadTooLarge
from .http import check_id
from .integrations import store as integrations
from .isotime import iso_now
from .observability import logger
from .revenue import engine
from .revenue.engine import Outcome
from .stripe_api import lookups
from .stripe_api.webhooks import check_header, check_object, verify

MAX_BODY_BYTES = 1024 * 1024
LAST_EVENT_EVERY_SECONDS = 60  # last_event_at is for people: a minute's precision saves a write per event
_last_event_written: dict[str, float] = {}

Handler = Callable[[str, dict[str, Any], secrets.StripeSecrets], Outcome]


def _charge(project: str, event: dict[str, Any], keys: secrets.StripeSecrets) -> Outcome:
    return engine.on_charge(project, event, lookups.customer_fetcher(keys.api_key))


def _session(project: str, event: dict[str, Any], keys: secrets.StripeSecrets) -> Outcome:
    return engine.on_session(
        project,
        event,
        lookups.customer_fetcher(keys.api_key),
        lambda invoice_id: lookups.invoice_payment_intents(keys.api_key, invoice_id),
    )


def _invoice_paid(project: str, event: dict[str, Any], keys: secrets.StripeSecrets) -> Outcome:
    return engine.on_invoice_paid(project, event, lookups.customer_fetcher(keys.api_key))


def _subscription(project: str, event: dict[str, Any], keys: secrets.StripeSecrets) -> Outcome:
    return engine.on_subscription(project, event, lookups.customer_fetcher(keys.api_key))


HANDLERS: dict[str, Handler] = {
    "charge.succeeded": _charge,
    "charge.captured": _charge,
    "charge.refunded": _charge,
    "checkout.session.completed": _session,
    "checkout.session.async_payment_succeeded": _session,
    "invoice.paid": _invoice_paid,
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
}


def receive(project_id: str, body: bytes, signature: str | None) -> str:
    """Process one delivery; returns what happened (booked, duplicate, ignored, ...)."""
    check_id(project_id, "project_id")
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("Webhook payloads are at most 1 MiB.")
    payload = body.decode("utf-8", errors="replace")
    try:  # (404 before 400: api.md's answer for an unknown project, whatever its headers)
        keys = secrets.load(project_id, remember_missing=True)
    except secrets.SecretNotFound:
        raise NotFound("No Stripe integration is connected for this project.") from None
    header = check_header(signature)  # before a forced re-read of the secret can be asked for
    try:
        event = verify(payload, header, keys.webhook_secret)
    except InvalidSignature:
        keys = _fresh_secrets_if_changed(project_id, keys)
        event = verify(payload, header, keys.webhook_secret)
    logger.set_correlation_id(event["id"])
    logger.append_keys(stripe_event_type=event["type"], project_id=project_id)
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return "ignored"
    check_object(event)
    try:
        outcome = handler(project_id, event, keys)
    except engine.IgnoredEvent:
        logger.info("event ignored: livemode differs from the key's mode", livemode=event.get("livemode"))
        return "ignored"
    _touch_last_event(project_id)
    return outcome.result


def _fresh_secrets_if_changed(project_id: str, cached: secrets.StripeSecrets) -> secrets.StripeSecrets:
    """After a mismatch: the secrets as re-read (throttled), if a reconnect replaced them; else re-raise."""
    try:
        fresh = secrets.refresh(project_id)
    except secrets.SecretNotFound:
        raise NotFound("No Stripe integration is connected for this project.") from None
    if fresh.webhook_secret == cached.webhook_secret:
        raise InvalidSignature("The Stripe-Signature does not match this payload.")
    return fresh


def _touch_last_event(project_id: str) -> None:
    now = time.monotonic()
    if now - _last_event_written.get(project_id, -LAST_EVENT_EVERY_SECONDS) < LAST_EVENT_EVERY_SECONDS:
        return
    integrations.touch_last_event(project_id, iso_now())
    _last_event_written[project_id] = now
