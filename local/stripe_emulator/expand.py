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
        obj = _expand_path(ctx, obj, parts, path)
    return obj


def _expand_path(
    ctx: Context, obj: dict[str, Any], parts: list[str], full: str, kind: str | None = None
) -> dict[str, Any]:
    """Expand `parts` inside `obj`; `kind` names a plain sub-object (`invoice_payment.payment`)."""
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and head == "data":
        if not rest:
            raise _cannot_expand(full)
        return dict(obj, data=[_expand_path(ctx, item, rest, full) for item in obj["data"]])
    kind = kind or obj.get("object", "")
    value = obj.get(head)
    sub_kind = None
    if (kind, head) in INCLUDABLE:
        compute, permission = INCLUDABLE[(kind, head)]
        require(ctx.key, permission)
        value = compute(ctx, obj)
    elif (kind, head) in EXPANDABLE:
        collection, permission = EXPANDABLE[(kind, head)]
        require(ctx.key, permission)
        if isinstance(value, str):
            value = ctx.collection(collection).get(value)
    elif isinstance(value, dict) and "object" not in value and rest:
        sub_kind = f"{kind}.{head}"  # walk into a plain sub-object
    else:
        raise _cannot_expand(full)
    if rest and isinstance(value, dict):
        value = _expand_path(ctx, value, rest, full, sub_kind)
    return dict(obj, **{head: value})


def _cannot_expand(path: str) -> StripeError:
    return StripeError(400, f"This property cannot be expanded ({path}).", param="expand")
