"""Stripe reads that attribution needs beyond what an event carries: counted, and only when needed."""

from __future__ import annotations

from collections.abc import Callable

import stripe

from ..errors import ServiceUnavailable
from ..identity import VISITOR_METADATA_KEY, visitor_hint
from ..observability import Metric, count
from ..revenue.models import CustomerRecord
from .client import stripe_client


def customer_fetcher(api_key: str) -> Callable[[str], CustomerRecord]:
    return lambda customer_id: fetch_customer(api_key, customer_id)


def fetch_customer(api_key: str, customer_id: str) -> CustomerRecord:
    """A Stripe customer's email and metadata visitor, fetched once per customer (then stored)."""
    count(Metric.STRIPE_CUSTOMER_FETCHES)
    try:
        customer = stripe_client(api_key).v1.customers.retrieve(customer_id)
    except stripe.InvalidRequestError:
        return CustomerRecord(customer_id, email="")  # deleted or unknown: nothing to go by
    except stripe.StripeError as exc:
        raise ServiceUnavailable("Stripe could not be reached; Stripe will retry this event.") from exc
    raw_metadata = getattr(customer, "metadata", None)  # absent on a deleted customer
    metadata = raw_metadata.to_dict() if raw_metadata is not None else {}
    return CustomerRecord(
        customer_id,
        email=str(getattr(customer, "email", None) or ""),
        meta_visitor=visitor_hint(metadata.get(VISITOR_METADATA_KEY)),
    )


def invoice_payment_intents(api_key: str, invoice_id: str) -> tuple[str, ...]:
    """The PaymentIntents that paid an invoice (a subscription Checkout pays its first invoice)."""
    count(Metric.STRIPE_INVOICE_PAYMENT_FETCHES)
    try:
        payments = stripe_client(api_key).v1.invoice_payments.list(params={"invoice": invoice_id, "limit": 100})
    except stripe.StripeError as exc:
        raise ServiceUnavailable("Stripe could not be reached; Stripe will retry this event.") from exc
    found = []
    for payment in payments.data:
        pi = payment.payment.payment_intent if payment.payment else None
        if pi:
            found.append(pi if isinstance(pi, str) else pi.id)
    return tuple(found)
