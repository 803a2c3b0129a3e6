"""API keys: secret keys see everything, restricted keys only what their permissions allow."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from .store import new_id
from .wire import StripeError

# Permissions as Stripe names them in its 403 messages. A `_write` permission includes `_read`.
PERMISSIONS = frozenset(
    f"rak_{resource}_{access}"
    for resource in (
        "charge",
        "customer",
        "payment_intent",
        "refund",
        "checkout_session",
        "subscription",
        "invoice",
        "price",
        "product",
        "webhook",
        "event",
    )
    for access in ("read", "write")
)

# What Ripples asks merchants for: Charges, Customers, Checkout Sessions, Subscriptions, Invoices
# read; Webhook Endpoints write.
PRODUCT_PERMISSIONS = (
    "rak_charge_read",
    "rak_customer_read",
    "rak_checkout_session_read",
    "rak_subscription_read",
    "rak_invoice_read",
    "rak_webhook_write",
)


@dataclass
class ApiKey:
    secret: str
    account_id: str
    livemode: bool
    permissions: frozenset[str] | None  # None: a secret key, allowed everything
    status: str = "active"  # active | revoked | expired

    def allows(self, permission: str) -> bool:
        if self.permissions is None:
            return True
        if permission in self.permissions:
            return True
        return permission.endswith("_read") and permission[: -len("read")] + "write" in self.permissions

    @property
    def redacted(self) -> str:
        prefix = self.secret[: self.secret.index("_", 3) + 1]
        return f"{prefix}*********{self.secret[-4:]}"


def make_key(account_id: str, livemode: bool, permissions: frozenset[str] | None) -> ApiKey:
    kind = "sk" if permissions is None else "rk"
    mode = "live" if livemode else "test"
    return ApiKey(new_id(f"{kind}_{mode}_", 99), account_id, livemode, permissions)


def validate_permissions(names: list[str]) -> frozenset[str]:
    unknown = sorted(set(names) - PERMISSIONS)
    if unknown:
        raise StripeError(400, f"Unknown permissions: {', '.join(unknown)}", param="permissions")
    return frozenset(names)


def authenticate(keys: dict[str, ApiKey], header: str | None) -> ApiKey:
    if not header:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    scheme, _, credentials = header.partition(" ")
    secret = credentials.strip()
    if scheme.lower() == "basic":  # `curl -u sk_test_...:`: the key is the user name
        try:
            secret = base64.b64decode(secret).decode().partition(":")[0]
        except ValueError:
            secret = ""
    elif scheme.lower() != "bearer":
        secret = ""
    if not secret:
        raise StripeError(401, "Invalid authorization header. Use Bearer auth with your API key.")
    if secret.startswith("pk_"):
        raise StripeError(
            401,
            "This API call cannot be made with a publishable API key. Please use a secret API key.",
            code="secret_key_required",
        )
    key = keys.get(secret)
    redacted = _redact(secret)
    if key is None or key.status == "revoked":
        raise StripeError(401, f"Invalid API Key provided: {redacted}", code="api_key_invalid")
    if key.status == "expired":
        raise StripeError(401, f"Expired API Key provided: {redacted}", code="api_key_expired")
    return key


def require(key: ApiKey, permission: str) -> None:
    if not key.allows(permission):
        raise StripeError(
            403,
            f"The provided key '{key.redacted}' does not have the required permissions for this "
            f"endpoint on account '{key.account_id}'. Having the '{permission}' permission would "
            "allow this request to continue.",
        )


def _redact(secret: str) -> str:
    if len(secret) <= 12:
        return "*" * len(secret)
    underscore = secret.find("_", 3)
    prefix = secret[: underscore + 1] if 0 < underscore < 8 else ""
    return f"{prefix}{'*' * 12}{secret[-4:]}"
