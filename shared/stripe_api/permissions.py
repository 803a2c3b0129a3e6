"""Which of the permissions Ripples needs a restricted key lacks, found by probing each endpoint."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import stripe

from .errors import translate

# rak_* names (as in Stripe's 403 messages) -> the names the Stripe dashboard shows merchants.
DASHBOARD_NAMES = {
    "rak_charge_read": "Charges: Read",
    "rak_customer_read": "Customers: Read",
    "rak_checkout_session_read": "Checkout Sessions: Read",
    "rak_subscription_read": "Subscriptions: Read",
    "rak_invoice_read": "Invoices: Read",
    "rak_webhook_read": "Webhook Endpoints: Write",  # we need write, which includes read
    "rak_webhook_write": "Webhook Endpoints: Write",
}
REQUIRED = tuple(dict.fromkeys(DASHBOARD_NAMES.values()))
_PERMISSION = re.compile(r"'(rak_[a-z_]+)'")


def _probes(client: stripe.StripeClient) -> list[Callable[[], object]]:
    """One limit=1 call per endpoint the integration uses, with the expansions it uses."""
    v1 = client.v1
    return [
        lambda: v1.charges.list(params={"limit": 1, "expand": ["data.customer"]}),
        lambda: v1.customers.list(params={"limit": 1}),
        lambda: v1.checkout.sessions.list(params={"limit": 1}),
        lambda: v1.subscriptions.list(params={"limit": 1, "status": "all"}),
        lambda: v1.invoices.list(params={"limit": 1}),
        lambda: v1.invoice_payments.list(params={"limit": 1}),
        lambda: v1.webhook_endpoints.list(params={"limit": 1}),
    ]


def _probe(call: Callable[[], object]) -> str | stripe.StripeError | None:
    """None when allowed, the missing permission's dashboard name, or another Stripe failure."""
    try:
        call()
    except stripe.PermissionError as exc:
        found = _PERMISSION.search(exc.user_message or str(exc))
        name = found.group(1) if found else "unknown"
        return DASHBOARD_NAMES.get(name, name)
    except stripe.StripeError as exc:
        return exc
    return None


def missing_permissions(client: stripe.StripeClient) -> list[str]:
    """The dashboard names of every permission the key lacks (probes run concurrently).

    Raises the contract's error when Stripe rejects the key or cannot be reached.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_probe, _probes(client)))
    failures = [r for r in results if isinstance(r, stripe.StripeError)]
    rejected = [f for f in failures if isinstance(f, stripe.AuthenticationError)]
    if rejected or failures:
        raise translate((rejected or failures)[0])
    missing = {r for r in results if isinstance(r, str)}
    return [name for name in REQUIRED if name in missing] + sorted(missing - set(REQUIRED))
