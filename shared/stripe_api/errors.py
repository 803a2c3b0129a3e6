"""Stripe's failures translated into the contract's errors, in one place."""

from __future__ import annotations

import stripe

from ..errors import ApiError, StripeKeyRejected, StripeUnavailable


def translate(exc: stripe.StripeError) -> ApiError:
    """The API error for a Stripe failure that is not a missing permission."""
    if isinstance(exc, stripe.AuthenticationError):
        return StripeKeyRejected("Stripe rejected this key (invalid, rolled or expired).")
    if isinstance(exc, stripe.RateLimitError):
        return StripeUnavailable("Stripe is rate limiting this account; try again in a minute.")
    return StripeUnavailable("Stripe could not be reached or failed; try again shortly.")
