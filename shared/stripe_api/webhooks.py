"""Webhook signature verification: Stripe's own, on the raw body, with a 300 s tolerance."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import stripe

from ..errors import InvalidPayload, InvalidSignature
from .events import REQUIRED_FIELDS

TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_V1 = re.compile(r"[0-9a-f]{64}")  # an HMAC-SHA256 hex digest, as Stripe sends it


def check_header(signature: str | None) -> str:
    """The Stripe-Signature header, if it could verify at all: present, `t=<unix>,v1=<hex>[,v1=...]`
    (other schemes, such as Stripe's test-mode v0, are ignored as Stripe's library ignores them) and
    `t` within the tolerance. Costs no I/O, so an unauthenticated caller is refused before any AWS
    request is made for it."""
    if not signature:
        raise InvalidSignature("Missing Stripe-Signature header.")
    fields = [item.partition("=") for item in signature.split(",")]
    timestamps = [value for key, _, value in fields if key == "t"]
    signatures = [value for key, _, value in fields if key == "v1"]
    if not (
        len(timestamps) == 1
        and _TIMESTAMP.fullmatch(timestamps[0])
        and signatures
        and all(_V1.fullmatch(value) for value in signatures)
    ):
        raise InvalidSignature("The Stripe-Signature header is not t=<timestamp>,v1=<signature>.")
    # Stripe's check refuses old timestamps only; refusing future ones too costs a genuine delivery
    # nothing (Stripe signs as it sends) and keeps a forged far-future header from reaching AWS.
    if abs(time.time() - int(timestamps[0])) > TOLERANCE_SECONDS:
        raise InvalidSignature("The Stripe-Signature timestamp is outside the tolerance.")
    return signature


def verify(payload: str, signature: str, secret: str) -> dict[str, Any]:
    """The event as a plain dict, once its signature checks out against `secret`."""
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


def check_object(event: dict[str, Any]) -> None:
    """InvalidPayload unless the event's object has the fields its type is booked from."""
    obj = event["data"]["object"]
    for prefix, fields in REQUIRED_FIELDS.items():
        if event["type"].startswith(prefix):
            for name, kind in fields.items():
                value = obj.get(name)
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise InvalidPayload(f"The event's {prefix.rstrip('.')} has no valid `{name}`.")
