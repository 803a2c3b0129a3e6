"""Webhook signature verification: Stripe's own, on the raw body, with a 300 s tolerance."""

from __future__ import annotations

import json
from typing import Any

import stripe

from ..errors import InvalidPayload, InvalidSignature

TOLERANCE_SECONDS = 300


def verify(payload: str, signature: str | None, secret: str) -> dict[str, Any]:
    """The event as a plain dict, once its signature checks out against `secret`."""
    if not signature:
        raise InvalidSignature("Missing Stripe-Signature header.")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise InvalidSignature("The Stripe-Signature does not match this payload.") from None
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        raise InvalidPayload("The body is not JSON.") from None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidPayload("The body is not a Stripe event.")
    return event
