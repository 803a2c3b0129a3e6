"""Stripe clients for a project's key: pinned API version, retries and timeouts of the time budget."""

from __future__ import annotations

import stripe

from ..budget import STRIPE
from ..settings import get_settings

# stripe-python 16.1.0 pins this version; webhook endpoints are created with it too, so events arrive
# in the shapes this code reads whatever the merchant's account default is.
API_VERSION = "2026-10-28.endive"


def stripe_client(api_key: str) -> stripe.StripeClient:
    settings = get_settings()
    options: dict[str, object] = {}
    if settings.stripe_api_base:
        options["base_addresses"] = {"api": settings.stripe_api_base}
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        max_network_retries=STRIPE.attempts - 1,
        http_client=stripe.RequestsClient(timeout=(STRIPE.connect_seconds, STRIPE.read_seconds)),
        **options,  # type: ignore[arg-type]
    )
