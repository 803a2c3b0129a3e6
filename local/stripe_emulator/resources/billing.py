"""Products, prices, subscriptions, invoices and invoice payments: enough Billing for subscriptions.

A paid invoice links invoice -> invoice_payment -> payment_intent -> charge, as in the current API
(`invoice.charge` and `invoice.payment_intent` no longer exist).
"""

from __future__ import annotations

from typing import Any

from .. import fixtures
from ..core import Context
from ..expand import list_object
from ..listing import fetch, paginate
from ..routes import route
from ..store import new_id
from ..wire import StripeError, get_bool, get_dict, get_int, get_str, invalid_param, merge_metadata, missing_param
from .payments import confirm_payment, create_payment_intent, settle

INTERVAL_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400, "year": 365 * 86_400}
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)


# ---- Products and prices ---------------------------------------------------------------------


def create_product(ctx: Context, name: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    product = ctx.build("product", "prod_", name=name, metadata=metadata or {}, updated=ctx.now)
    ctx.collection("products").save(product)
    ctx.emit("product.created", product)
    return product


def create_price(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    product_id = get_str(params, "product")
    if product_id is None:
        product_data = get_dict(params, "product_data")
        if not product_data.get("name"):
            raise missing_param("product")
        product_id = create_product(ctx, product_data["name"])["id"]
    else:
        fetch(ctx, "products", "product", product_id, "product")
    unit_amount = get_int(params, "unit_amount", required=True, minimum=0)
    recurring_in = get_dict(params, "recurring")
    recurring = None
    if recurring_in:
        interval = recurring_in.get("interval")
        if interval not in INTERVAL_SECONDS:
            raise invalid_param("recurring[interval]", f"Invalid recurring[interval]: {interval}")
        recurring = {
            "interval": interval,
            "interval_count": int(recurring_in.get("interval_count", 1)),
            "meter": None,
            "usage_type": "licensed",
            "trial_period_days": None,
        }
    price = ctx.build(
        "price",
        "price_",
        currency=_currency(params),
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
        product=product_id,
        recurring=recurring,
        type="recurring" if recurring else "one_time",
        nickname=get_str(params, "nickname"),
        lookup_key=get_str(params, "lookup_key"),
        metadata=merge_metadata({}, get_dict(params, "metadata")),
    )
    ctx.collection("prices").save(price)
    ctx.emit("price.created", price)
    return price


@route("POST", "/v1/products", "rak_product_write")
def create_product_route(ctx: Context) -> dict[str, Any]:
    name = get_str(ctx.params, "name", required=True)
    assert name is not None
    product = create_product(ctx, name, merge_metadata({}, get_dict(ctx.params, "metadata")))
    product["description"] = get_str(ctx.params, "description")
    return product


@route("GET", "/v1/products/{id}", "rak_product_read")
def retrieve_product(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "products", "product", ctx.path_args["id"])


@route("GET", "/v1/products", "rak_product_read")
def list_products(ctx: Context) -> dict[str, Any]:
    return paginate(ctx, "products", "/v1/products")


@route("POST", "/v1/prices", "rak_price_write")
def create_price_route(ctx: Context) -> dict[str, Any]:
    return create_price(ctx, ctx.params)


@route("GET", "/v1/prices/{id}", "rak_price_read")
def retrieve_price(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "prices", "price", ctx.path_args["id"])


@route("GET", "/v1/prices", "rak_price_read")
def list_prices(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return paginate(ctx, "prices", "/v1/prices", where={"product": get_str(p, "product")})


# ---- Subscriptions ---------------------------------------------------------------------------


def _plan(price: dict[str, Any]) -> dict[str, Any]:
    recurring = price["recurring"] or {}
    return fixtures.build(
        "plan",
        id=price["id"],
        created=price["created"],
        livemode=price["livemode"],
        amount=price["unit_amount"],
        amount_decimal=price["unit_amount_decimal"],
        currency=price["currency"],
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count", 1),
        nickname=price["nickname"],
        product=price["product"],
        metadata=price["metadata"],
        transform_usage=None,
    )


def _item(ctx: Context, sub_id: str, price: dict[str, Any], quantity: int, start: int, end: int) -> dict[str, Any]:
    return ctx.build(
        "subscription_item",
        "si_",
        price=dict(price),
        plan=_plan(price),
        quantity=quantity,
        subscription=sub_id,
        metadata={},
        current_period_start=start,
        current_period_end=end,
    )


def _recurring_price(ctx: Context, price_id: Any, param: str) -> dict[str, Any]:
    if not isinstance(price_id, str):
        raise missing_param(param)
    price = fetch(ctx, "prices", "price", price_id, param)
    if price["type"] != "recurring":
        raise invalid_param(param, f"The price specified ({price_id}) is not recurring.")
    return price


def period_length(price: dict[str, Any]) -> int:
    recurring = price["recurring"]
    return int(INTERVAL_SECONDS[recurring["interval"]] * recurring["interval_count"])


def subscription_amount(sub: dict[str, Any]) -> int:
    return sum(item["price"]["unit_amount"] * item["quantity"] for item in sub["items"]["data"])


def create_subscription(
    ctx: Context,
    *,
    customer: dict[str, Any],
    lines: list[tuple[dict[str, Any], int]],
    metadata: dict[str, str],
    trial_days: int | None,
    payment_method: str,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """Create a subscription and pay its first invoice: returns (subscription, invoice, charge)."""
    currencies = {price["currency"] for price, _ in lines}
    if len(currencies) != 1:
        raise invalid_param("items", "All prices on a subscription must have the same currency.")
    sub_id = new_id("sub_")
    now = ctx.now
    trial_end = now + trial_days * 86_400 if trial_days else None
    end = trial_end or now + period_length(lines[0][0])
    sub = ctx.build(
        "subscription",
        "sub_",
        id=sub_id,
        customer=customer["id"],
        currency=currencies.pop(),
        items=list_object(
            [_item(ctx, sub_id, price, qty, now, end) for price, qty in lines],
            False,
            f"/v1/subscription_items?subscription={sub_id}",
        ),
        metadata=metadata,
        status="trialing" if trial_end else "incomplete",
        start_date=now,
        billing_cycle_anchor=trial_end or now,  # Stripe: creation time, or the end of the trial
        trial_start=now if trial_end else None,
        trial_end=trial_end,
        latest_invoice=None,
        cancel_at_period_end=False,
        default_payment_method=None,
        discounts=[],
        transfer_data=None,  # the fixture's sample Connect destination
    )
    sub["items"]["total_count"] = len(lines)
    ctx.collection("subscriptions").save(sub)
    ctx.emit("customer.subscription.created", sub)
    invoice, charge = bill(ctx, sub, "subscription_create", payment_method, now, end, free=trial_end is not None)
    if sub["status"] == "incomplete" and invoice["status"] == "paid":
        previous = {"status": "incomplete", "latest_invoice": None}
        sub.update(status="active", latest_invoice=invoice["id"])
        ctx.collection("subscriptions").save(sub)
        ctx.emit("customer.subscription.updated", sub, previous)
    else:
        sub["latest_invoice"] = invoice["id"]
        ctx.collection("subscriptions").save(sub)
    return sub, invoice, charge


def bill(
    ctx: Context,
    sub: dict[str, Any],
    billing_reason: str,
    payment_method: str,
    period_start: int,
    period_end: int,
    *,
    free: bool = False,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One invoice of `sub` for the period, paid by a charge unless it is for 0 (trials)."""
    customer = fetch(ctx, "customers", "customer", sub["customer"], "customer")
    invoice_id = new_id("in_")
    lines = []
    for item in sub["items"]["data"]:
        amount = 0 if free else item["price"]["unit_amount"] * item["quantity"]
        line = ctx.build(
            "line_item",
            "il_",
            amount=amount,
            currency=sub["currency"],
            description=f"{item['quantity']} x {item['price']['nickname'] or item['price']['id']}",
            invoice=invoice_id,
            period={"start": period_start, "end": period_end},
            quantity=item["quantity"],
            subtotal=amount,
            parent={
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item["id"],
                },
                "type": "subscription_item_details",
            },
            pricing={
                "price_details": {"price": item["price"]["id"], "product": item["price"]["product"]},
                "type": "price_details",
                "unit_amount_decimal": item["price"]["unit_amount_decimal"],
            },
        )
        lines.append(line)
    total = sum(line["amount"] for line in lines)
    now = ctx.now
    invoice = ctx.build(
        "invoice",
        "in_",
        id=invoice_id,
        customer=sub["customer"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        currency=sub["currency"],
        amount_due=total,
        amount_paid=0,
        amount_remaining=total,
        amount_overpaid=0,  # the fixture holds a sample amount
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        billing_reason=billing_reason,
        lines=list_object(lines, False, f"/v1/invoices/{invoice_id}/lines"),
        parent={
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub["metadata"]), "subscription": sub["id"]},
            "type": "subscription_details",
        },
        period_start=period_start,
        period_end=period_end,
        status="draft",
        metadata={},
        number=None,
        effective_at=None,
    )
    invoice["lines"]["total_count"] = len(lines)
    ctx.collection("invoices").save(invoice)
    ctx.emit("invoice.created", invoice)
    number = f"{customer['id'][-8:].upper()}-{len(ctx.collection('invoices')):04d}"
    invoice.update(
        status="open",
        number=number,
        effective_at=now,
        hosted_invoice_url=f"https://invoice.stripe.com/i/{invoice_id}",
        invoice_pdf=f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
    )
    invoice["status_transitions"]["finalized_at"] = now
    ctx.collection("invoices").save(invoice)
    ctx.emit("invoice.finalized", invoice, {"status": "draft", "number": None})
    if total == 0:
        _mark_paid(ctx, invoice)
        return invoice, None

    pi = create_payment_intent(
        ctx,
        amount=total,
        currency=sub["currency"],
        customer=sub["customer"],
        description="Subscription creation" if billing_reason == "subscription_create" else "Subscription update",
    )
    invoice_payment = ctx.build(
        "invoice_payment",
        "inpay_",
        amount_requested=total,
        amount_paid=None,
        currency=sub["currency"],
        invoice=invoice_id,
        is_default=True,
        payment={"type": "payment_intent", "payment_intent": pi["id"]},
        status="open",
        status_transitions={"canceled_at": None, "paid_at": None},
    )
    ctx.collection("invoice_payments").save(invoice_payment)
    invoice["attempted"] = True
    invoice["attempt_count"] = 1
    try:
        charge = confirm_payment(ctx, pi, payment_method, billing_email=customer["email"])
    except StripeError:
        ctx.collection("invoices").save(invoice)
        ctx.emit("invoice.payment_failed", invoice)
        return invoice, None
    invoice_payment.update(amount_paid=total, status="paid")
    invoice_payment["status_transitions"]["paid_at"] = ctx.now
    ctx.collection("invoice_payments").save(invoice_payment)
    _mark_paid(ctx, invoice)
    return invoice, charge


def _mark_paid(ctx: Context, invoice: dict[str, Any]) -> None:
    previous = {"status": invoice["status"], "amount_paid": 0, "amount_remaining": invoice["amount_remaining"]}
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
    invoice["status_transitions"]["paid_at"] = ctx.now
    ctx.collection("invoices").save(invoice)
    ctx.emit("invoice.paid", invoice, previous)
    ctx.emit("invoice.payment_succeeded", invoice, previous)


def renew(ctx: Context, sub: dict[str, Any], payment_method: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Start the next period of `sub` and bill it, as Stripe does when a period ends."""
    if sub["status"] in ("canceled", "incomplete", "incomplete_expired"):
        raise StripeError(400, f"Subscription {sub['id']} has status {sub['status']} and cannot renew.")
    old_items = [dict(item) for item in sub["items"]["data"]]
    start = sub["items"]["data"][0]["current_period_end"]
    end = start + period_length(sub["items"]["data"][0]["price"])
    previous: dict[str, Any] = {"items": dict(sub["items"], data=old_items), "latest_invoice": sub["latest_invoice"]}
    for item in sub["items"]["data"]:
        item.update(current_period_start=start, current_period_end=end)
    if sub["status"] == "trialing":
        previous["status"] = "trialing"
        sub["status"] = "active"
    ctx.collection("subscriptions").save(sub)
    ctx.emit("customer.subscription.updated", sub, previous)
    invoice, charge = bill(ctx, sub, "subscription_cycle", payment_method, start, end)
    sub["latest_invoice"] = invoice["id"]
    if invoice["status"] != "paid" and sub["status"] != "past_due":
        sub["status"] = "past_due"
        ctx.collection("subscriptions").save(sub)
        ctx.emit("customer.subscription.updated", sub, {"status": "active"})
    elif invoice["status"] == "paid" and sub["status"] == "past_due":
        sub["status"] = "active"  # the latest invoice is paid again
        ctx.collection("subscriptions").save(sub)
        ctx.emit("customer.subscription.updated", sub, {"status": "past_due"})
    ctx.collection("subscriptions").save(sub)
    return invoice, charge


def _lines_from(ctx: Context, items: Any, param: str = "items") -> list[tuple[dict[str, Any], int]]:
    if not isinstance(items, list) or not items:
        raise missing_param(param)
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid_param(f"{param}[{i}]", "Invalid item.")
        lines.append(
            (
                _recurring_price(ctx, item.get("price"), f"{param}[{i}][price]"),
                int(get_int(item, "quantity", minimum=1) or 1),
            )
        )
    return lines


@route("POST", "/v1/subscriptions", "rak_subscription_write")
def create_subscription_route(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    customer = fetch(ctx, "customers", "customer", get_str(p, "customer", required=True), "customer")
    sub, _, charge = create_subscription(
        ctx,
        customer=customer,
        lines=_lines_from(ctx, p.get("items")),
        metadata=merge_metadata({}, get_dict(p, "metadata")),
        trial_days=get_int(p, "trial_period_days", minimum=0),
        payment_method=get_str(p, "default_payment_method") or "pm_card_visa",
    )
    if charge is not None:
        settle(ctx, charge)
    return sub


@route("POST", "/v1/subscriptions/{id}", "rak_subscription_write")
def update_subscription(ctx: Context) -> dict[str, Any]:
    sub = fetch(ctx, "subscriptions", "subscription", ctx.path_args["id"])
    if sub["status"] == "canceled":
        raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.")
    p = ctx.params
    previous: dict[str, Any] = {}
    if "items" in p:
        previous["items"] = dict(sub["items"], data=[dict(i) for i in sub["items"]["data"]])
        _apply_item_changes(ctx, sub, p["items"])
    if "metadata" in p:
        metadata = merge_metadata(sub["metadata"], p["metadata"])
        if metadata != sub["metadata"]:
            previous["metadata"] = sub["metadata"]
            sub["metadata"] = metadata
    if "cancel_at_period_end" in p:
        flag = get_bool(p, "cancel_at_period_end")
        if flag != sub["cancel_at_period_end"]:
            previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
            sub["cancel_at_period_end"] = flag
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if flag else None
            sub["canceled_at"] = ctx.now if flag else None
    ctx.collection("subscriptions").save(sub)
    if previous:
        ctx.emit("customer.subscription.updated", sub, previous)
    return sub


def _apply_item_changes(ctx: Context, sub: dict[str, Any], changes: Any) -> None:
    if not isinstance(changes, list):
        raise invalid_param("items", "Invalid array: items")
    items = {item["id"]: item for item in sub["items"]["data"]}
    first = sub["items"]["data"][0]
    for i, change in enumerate(changes):
        if not isinstance(change, dict):
            raise invalid_param(f"items[{i}]", "Invalid item.")
        item_id = change.get("id")
        if item_id is not None and item_id not in items:
            raise invalid_param(f"items[{i}][id]", f"No such subscription item: '{item_id}'")
        if get_bool(change, "deleted"):
            items.pop(item_id, None)
            continue
        price = _recurring_price(ctx, change.get("price"), f"items[{i}][price]") if "price" in change else None
        quantity = get_int(change, "quantity", minimum=1)
        if item_id is None:
            if price is None:
                raise missing_param(f"items[{i}][price]")
            new = _item(
                ctx, sub["id"], price, quantity or 1, first["current_period_start"], first["current_period_end"]
            )
            items[new["id"]] = new
            continue
        item = dict(items[item_id])
        if price is not None:
            item.update(price=dict(price), plan=_plan(price))
        if quantity is not None:
            item["quantity"] = quantity
        items[item_id] = item
    if not items:
        raise invalid_param("items", "A subscription must have at least one item.")
    sub["items"]["data"] = list(items.values())
    sub["items"]["total_count"] = len(items)


@route("DELETE", "/v1/subscriptions/{id}", "rak_subscription_write")
def cancel_subscription(ctx: Context) -> dict[str, Any]:
    sub = fetch(ctx, "subscriptions", "subscription", ctx.path_args["id"])
    if sub["status"] == "canceled":
        raise StripeError(
            400,
            f"No such subscription: '{sub['id']}'. It has been canceled.",
            code="resource_missing",
        )
    now = ctx.now
    sub.update(status="canceled", canceled_at=sub["canceled_at"] or now, ended_at=now)
    sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
    ctx.collection("subscriptions").save(sub)
    ctx.emit("customer.subscription.deleted", sub)
    return sub


@route("GET", "/v1/subscriptions/{id}", "rak_subscription_read")
def retrieve_subscription(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "subscriptions", "subscription", ctx.path_args["id"])


@route("GET", "/v1/subscriptions", "rak_subscription_read")
def list_subscriptions(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    status = get_str(p, "status")
    if status is not None and status not in ("all", "ended") and status not in SUBSCRIPTION_STATUSES:
        raise invalid_param("status", f"Invalid status: must be one of all, ended, {', '.join(SUBSCRIPTION_STATUSES)}")
    price = get_str(p, "price")

    def keep(sub: dict[str, Any]) -> bool:
        ended = sub["status"] in ("canceled", "incomplete_expired")
        if status is None and ended:
            return False  # by default Stripe lists subscriptions that are not canceled
        if status == "ended" and not ended:
            return False  # `ended`: canceled, and expired after an incomplete first payment
        return price is None or any(item["price"]["id"] == price for item in sub["items"]["data"])

    where = {"customer": get_str(p, "customer"), "status": status if status not in (None, "all", "ended") else None}
    return paginate(ctx, "subscriptions", "/v1/subscriptions", where=where, predicate=keep)


# ---- Invoices and invoice payments -----------------------------------------------------------


@route("GET", "/v1/invoices/{id}", "rak_invoice_read")
def retrieve_invoice(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "invoices", "invoice", ctx.path_args["id"])


@route("GET", "/v1/invoices", "rak_invoice_read")
def list_invoices(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    where = {
        "customer": get_str(p, "customer"),
        "subscription": get_str(p, "subscription"),
        "status": get_str(p, "status"),
    }
    return paginate(ctx, "invoices", "/v1/invoices", where=where)


@route("GET", "/v1/invoice_payments/{id}", "rak_invoice_read")
def retrieve_invoice_payment(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "invoice_payments", "invoice payment", ctx.path_args["id"])


@route("GET", "/v1/invoice_payments", "rak_invoice_read")
def list_invoice_payments(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    payment = get_dict(p, "payment")
    where = {
        "invoice": get_str(p, "invoice"),
        "payment_intent": get_str(payment, "payment_intent"),
        "charge": get_str(payment, "charge"),
    }
    if payment and payment.get("type") not in (None, "payment_intent", "charge"):
        raise invalid_param("payment[type]", "payment[type] must be payment_intent or charge.")
    status = get_str(p, "status")
    return paginate(
        ctx,
        "invoice_payments",
        "/v1/invoice_payments",
        where=where,
        predicate=None if status is None else (lambda ip: ip["status"] == status),
    )


def _currency(params: dict[str, Any]) -> str:
    currency = get_str(params, "currency", required=True)
    assert currency is not None
    return currency.lower()


@route("POST", "/v1/test_helpers/subscriptions/{id}/renew", "rak_subscription_write")
def renew_route(ctx: Context) -> dict[str, Any]:
    """End the current period now: the next invoice is created and paid (`payment_method` may decline)."""
    sub = fetch(ctx, "subscriptions", "subscription", ctx.path_args["id"])
    _, charge = renew(ctx, sub, get_str(ctx.params, "payment_method") or "pm_card_visa")
    if charge is not None:
        settle(ctx, charge)
    return sub
