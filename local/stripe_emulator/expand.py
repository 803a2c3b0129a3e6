"""`expand` and includable fields: replace ids by the objects they name, on copies, never in storage."""

from __future__ import annotations

from typing import Any

from .core import Context
from .keys import require
from .wire import StripeError

MAX_DEPTH = 4

# (object type, field) -> (collection, permission needed to read it)
EXPANDABLE: dict[tuple[str, str], tuple[str, str]] = {
    ("charge", "customer"): ("customers", "rak_customer_read"),
    ("charge", "payment_intent"): ("payment_intents", "rak_payment_intent_read"),
    ("payment_intent", "customer"): ("customers", "rak_customer_read"),
    ("payment_intent", "latest_charge"): ("charges", "rak_charge_read"),
    ("refund", "charge"): ("charges", "rak_charge_read"),
    ("refund", "payment_intent"): ("payment_intents", "rak_payment_intent_read"),
    ("checkout.session", "customer"): ("customers", "rak_customer_read"),
    ("checkout.session", "payment_intent"): ("payment_intents", "rak_payment_intent_read"),
    ("checkout.session", "subscription"): ("subscriptions", "rak_subscription_read"),
    ("checkout.session", "invoice"): ("invoices", "rak_invoice_read"),
    ("subscription", "customer"): ("customers", "rak_customer_read"),
    ("subscription", "latest_invoice"): ("invoices", "rak_invoice_read"),
    ("invoice", "customer"): ("customers", "rak_customer_read"),
    ("invoice_payment", "invoice"): ("invoices", "rak_invoice_read"),
    ("price", "product"): ("products", "rak_product_read"),
    ("invoice_payment.payment", "payment_intent"): ("payment_intents", "rak_payment_intent_read"),
    ("invoice_payment.payment", "charge"): ("charges", "rak_charge_read"),
}


def _refunds_of(ctx: Context, charge: dict[str, Any]) -> dict[str, Any]:
    page = ctx.collection("refunds").page(limit=10, where={"charge": charge["id"]})
    return list_object(page.data, page.has_more, f"/v1/charges/{charge['id']}/refunds")


def _payments_of(ctx: Context, invoice: dict[str, Any]) -> dict[str, Any]:
    page = ctx.collection("invoice_payments").page(limit=10, where={"invoice": invoice["id"]})
    return list_object(page.data, page.has_more, f"/v1/invoice_payments?invoice={invoice['id']}")


# Includable fields: computed lists that appear only when expanded.
INCLUDABLE = {
    ("charge", "refunds"): (_refunds_of, "rak_refund_read"),
    ("invoice", "payments"): (_payments_of, "rak_invoice_read"),
}


def list_object(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


# What each collection and each list URL holds, so paths are checked even on an empty list or a
# null field: a `limit=1` permission probe must fail the same way on an empty account.
COLLECTION_TYPES = {
    "customers": "customer",
    "charges": "charge",
    "payment_intents": "payment_intent",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "products": "product",
}
INCLUDED_ITEM_TYPES = {("charge", "refunds"): "refund", ("invoice", "payments"): "invoice_payment"}
LIST_ITEM_TYPES = {
    "/v1/customers": "customer",
    "/v1/charges": "charge",
    "/v1/payment_intents": "payment_intent",
    "/v1/refunds": "refund",
    "/v1/checkout/sessions": "checkout.session",
    "/v1/subscriptions": "subscription",
    "/v1/invoices": "invoice",
    "/v1/invoice_payments": "invoice_payment",
    "/v1/prices": "price",
    "/v1/products": "product",
    "/v1/webhook_endpoints": "webhook_endpoint",
    "/v1/events": "event",
}
_SUB_OBJECTS = {kind for kind, _ in EXPANDABLE if "." in kind}


def expand(ctx: Context, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`obj` with each dotted path in `paths` expanded (a list's paths start with `data.`)."""
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise StripeError(
                400,
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        _check(ctx, _type_of(obj), parts, path)
        obj = _expand_path(ctx, obj, parts)
    return obj


def _type_of(obj: dict[str, Any]) -> str:
    if obj.get("object") == "list":
        return "list:" + LIST_ITEM_TYPES.get(obj["url"].partition("?")[0], "")
    return str(obj.get("object", ""))


def _check(ctx: Context, kind: str, parts: list[str], full: str) -> None:
    """Refuse a path that cannot be expanded, or that needs a permission the key lacks."""
    head, rest = parts[0], parts[1:]
    if kind.startswith("list:"):
        if head != "data" or not rest:
            raise _cannot_expand(full)
        _check(ctx, kind.removeprefix("list:"), rest, full)
        return
    if (kind, head) in INCLUDABLE:
        require(ctx.key, INCLUDABLE[(kind, head)][1])
        next_kind = "list:" + INCLUDED_ITEM_TYPES[(kind, head)]
    elif (kind, head) in EXPANDABLE:
        collection, permission = EXPANDABLE[(kind, head)]
        require(ctx.key, permission)
        next_kind = COLLECTION_TYPES.get(collection, "")
    elif f"{kind}.{head}" in _SUB_OBJECTS and rest:
        next_kind = f"{kind}.{head}"
    else:
        raise _cannot_expand(full)
    if rest:
        _check(ctx, next_kind, rest, full)


def _expand_path(ctx: Context, obj: dict[str, Any], parts: list[str], kind: str | None = None) -> dict[str, Any]:
    """Expand the (checked) path `parts` inside `obj`; `kind` names a plain sub-object."""
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list":
        return dict(obj, data=[_expand_path(ctx, item, rest) for item in obj["data"]])
    kind = kind or obj.get("object", "")
    value = obj.get(head)
    sub_kind = None
    if (kind, head) in INCLUDABLE:
        value = INCLUDABLE[(kind, head)][0](ctx, obj)
    elif (kind, head) in EXPANDABLE:
        if isinstance(value, str):
            value = ctx.collection(EXPANDABLE[(kind, head)][0]).get(value)
    else:
        sub_kind = f"{kind}.{head}"
    if rest and isinstance(value, dict):
        value = _expand_path(ctx, value, rest, sub_kind)
    return dict(obj, **{head: value})


def _cannot_expand(path: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({path}).", param="expand")
