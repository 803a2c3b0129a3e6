"""Checkout Sessions, and the test helpers that stand in for a customer paying on Checkout's page."""

from __future__ import annotations

from typing import Any

from ..core import Context
from ..listing import fetch, paginate
from ..routes import route
from ..store import new_id
from ..wire import StripeError, get_bool, get_dict, get_int, get_str, invalid_param, merge_metadata, missing_param
from .billing import create_price, create_subscription
from .customers import create_customer
from .payments import DECLINED, charge_object, confirm_payment, create_payment_intent, settle

SESSION_TTL_SECONDS = 24 * 3600


def _line_items(ctx: Context, mode: str) -> list[tuple[dict[str, Any], int]]:
    items = ctx.params.get("line_items")
    if not isinstance(items, list) or not items:
        raise missing_param("line_items")
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid_param(f"line_items[{i}]", "Invalid line item.")
        if "price" in item:
            price = fetch(ctx, "prices", "price", item["price"], f"line_items[{i}][price]")
        elif "price_data" in item:
            price = create_price(ctx, get_dict(item, "price_data"))
        else:
            raise missing_param(f"line_items[{i}][price]")
        recurring = price["type"] == "recurring"
        if mode == "payment" and recurring:
            raise invalid_param(
                f"line_items[{i}][price]",
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        if mode == "subscription" and not recurring:
            continue  # one-time prices ride along on the first invoice in Stripe; not modelled
        lines.append((price, int(get_int(item, "quantity", minimum=1) or 1)))
    if not lines:
        raise invalid_param("line_items", "You must provide at least one recurring price in `subscription` mode.")
    return lines


@route("POST", "/v1/checkout/sessions", "rak_checkout_session_write")
def create_session(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    mode = get_str(p, "mode", required=True)
    if mode not in ("payment", "subscription", "setup"):
        raise invalid_param("mode", f"Invalid mode: {mode}")
    customer_id = get_str(p, "customer")
    if customer_id is not None:
        fetch(ctx, "customers", "customer", customer_id, "customer")
    customer_email = get_str(p, "customer_email")
    if customer_id and customer_email:
        raise invalid_param("customer_email", "You may only specify one of these parameters: customer, customer_email.")
    lines = _line_items(ctx, mode) if mode != "setup" else []
    currencies = {price["currency"] for price, _ in lines}
    if len(currencies) > 1:
        raise invalid_param("line_items", "All line items must use the same currency.")
    amount = sum(price["unit_amount"] * qty for price, qty in lines)
    if get_int(get_dict(p, "subscription_data"), "trial_period_days", minimum=0):
        amount = 0  # the session shows what is due today: nothing during a trial
    session = ctx.build(
        "checkout.session",
        "cs_test_" if not ctx.livemode else "cs_live_",
        mode=mode,
        status="open",
        payment_status="unpaid",
        amount_subtotal=amount,
        amount_total=amount,
        currency=currencies.pop() if currencies else None,
        customer=customer_id,
        customer_email=customer_email,
        customer_creation=get_str(p, "customer_creation")
        or ("if_required" if mode == "payment" and not customer_id else None),
        client_reference_id=get_str(p, "client_reference_id"),
        metadata=merge_metadata({}, get_dict(p, "metadata")),
        success_url=get_str(p, "success_url"),
        cancel_url=get_str(p, "cancel_url"),
        expires_at=ctx.now + SESSION_TTL_SECONDS,
        payment_method_types=["card"],
        invoice=None,
        subscription=None,
        payment_intent=None,
    )
    session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}"
    session["client_secret"] = None
    ctx.space.session_lines[session["id"]] = lines
    ctx.space.session_options[session["id"]] = {
        "payment_intent_data": get_dict(p, "payment_intent_data"),
        "subscription_data": get_dict(p, "subscription_data"),
    }
    ctx.collection("checkout_sessions").save(session)
    return session


@route("GET", "/v1/checkout/sessions/{id}", "rak_checkout_session_read")
def retrieve_session(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "checkout_sessions", "checkout.session", ctx.path_args["id"])


@route("GET", "/v1/checkout/sessions", "rak_checkout_session_read")
def list_sessions(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    status = get_str(p, "status")
    if status is not None and status not in ("open", "complete", "expired"):
        raise invalid_param("status", f"Invalid status: {status}")
    where = {
        "payment_intent": get_str(p, "payment_intent"),
        "subscription": get_str(p, "subscription"),
        "status": status,
        "customer": get_str(p, "customer"),
    }
    return paginate(ctx, "checkout_sessions", "/v1/checkout/sessions", where=where)


@route("POST", "/v1/checkout/sessions/{id}/expire", "rak_checkout_session_write")
def expire_session(ctx: Context) -> dict[str, Any]:
    session = fetch(ctx, "checkout_sessions", "checkout.session", ctx.path_args["id"])
    if session["status"] != "open":
        raise StripeError(
            400, f"Only Checkout Sessions with a status of open can be expired (this one is {session['status']})."
        )
    session["status"] = "expired"
    ctx.collection("checkout_sessions").save(session)
    ctx.emit("checkout.session.expired", session)
    return session


# ---- Test helpers: the customer pays ----------------------------------------------------------


def _customer_details(email: str | None, name: str | None) -> dict[str, Any]:
    return {
        "address": {"city": None, "country": "US", "line1": None, "line2": None, "postal_code": "94103", "state": None},
        "email": email,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
        "business_name": None,
        "individual_name": None,
    }


@route("POST", "/v1/test_helpers/checkout/sessions/{id}/complete", "rak_checkout_session_write")
def complete_session(ctx: Context) -> dict[str, Any]:
    """Pay an open session as a customer would: `email`, `name`, `payment_method`
    (default pm_card_visa) and, in payment mode, `delayed=true` for a payment method that settles
    later (completes unpaid; `.../async_payment_succeed` finishes it)."""
    session = fetch(ctx, "checkout_sessions", "checkout.session", ctx.path_args["id"])
    if session["status"] != "open":
        raise StripeError(
            400, f"This Checkout Session is {session['status']}, not open.", code="checkout_session_not_open"
        )
    p = ctx.params
    payment_method = get_str(p, "payment_method") or "pm_card_visa"
    customer = ctx.collection("customers").get(session["customer"]) if session["customer"] else None
    email = get_str(p, "email") or session["customer_email"] or (customer or {}).get("email")
    name = get_str(p, "name")
    options = ctx.space.session_options[session["id"]]
    lines = ctx.space.session_lines[session["id"]]
    if session["mode"] == "subscription" and payment_method in DECLINED:
        # Checkout keeps the page open on a decline: nothing is created, the customer may retry.
        raise StripeError(402, "Your card was declined.", type="card_error", code="card_declined")
    if customer is None and (session["mode"] == "subscription" or session["customer_creation"] == "always"):
        customer = create_customer(ctx, email=email, name=name)
    session["customer_details"] = _customer_details(email, name)
    session["customer"] = customer["id"] if customer else None

    if session["mode"] == "subscription":
        sub_data = options["subscription_data"]
        sub, invoice, charge = create_subscription(
            ctx,
            customer=customer or {},
            lines=lines,
            metadata=merge_metadata({}, sub_data.get("metadata", {})),
            trial_days=get_int(sub_data, "trial_period_days", minimum=0),
            payment_method=payment_method,
        )
        session.update(
            subscription=sub["id"],
            invoice=invoice["id"],
            payment_status="paid" if invoice["amount_paid"] > 0 else "no_payment_required",
        )
        _complete(ctx, session)
        if charge is not None:
            settle(ctx, charge)
        return session

    pi_data = options["payment_intent_data"]
    pi = create_payment_intent(
        ctx,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=session["customer"],
        metadata=merge_metadata({}, pi_data.get("metadata", {})),
        capture_method=pi_data.get("capture_method", "automatic"),
        receipt_email=email if pi_data.get("receipt_email") else None,
    )
    session["payment_intent"] = pi["id"]
    if get_bool(p, "delayed"):
        _start_delayed_payment(ctx, pi, email)
        _complete(ctx, session)
        return session
    charge = confirm_payment(ctx, pi, payment_method, billing_email=email)
    session["payment_status"] = "paid"
    _complete(ctx, session)
    settle(ctx, charge)
    return session


def _complete(ctx: Context, session: dict[str, Any]) -> None:
    session["status"] = "complete"
    ctx.collection("checkout_sessions").save(session)
    ctx.emit("checkout.session.completed", session)


def _start_delayed_payment(ctx: Context, pi: dict[str, Any], email: str | None) -> None:
    charge = charge_object(
        charge_id=new_id("ch_"),
        created=ctx.now,
        livemode=ctx.livemode,
        amount=pi["amount"],
        currency=pi["currency"],
        customer=pi["customer"],
        payment_intent=pi["id"],
        payment_method=new_id("pm_"),
        status="pending",
        billing_email=email,
        metadata=pi["metadata"],
    )
    charge.update(
        paid=False,
        payment_method_details={
            "type": "us_bank_account",
            "us_bank_account": {
                "bank_name": "STRIPE TEST BANK",
                "last4": "6789",
                "routing_number": "110000000",
                "account_type": "checking",
                "account_holder_type": "individual",
                "fingerprint": "FFDMA0xfhBjWSZLu",
                "expected_debit_date": None,
                "mandate": None,
                "payment_reference": None,
            },
        },
    )
    ctx.collection("charges").save(charge)
    ctx.emit("charge.pending", charge)
    pi.update(
        status="processing",
        latest_charge=charge["id"],
        payment_method=charge["payment_method"],
        payment_method_types=["us_bank_account"],
    )
    ctx.collection("payment_intents").save(pi)
    ctx.emit("payment_intent.processing", pi)


@route("POST", "/v1/test_helpers/checkout/sessions/{id}/async_payment_succeed", "rak_checkout_session_write")
def async_payment_succeed(ctx: Context) -> dict[str, Any]:
    """The delayed payment of a session completed with `delayed=true` settles."""
    session = fetch(ctx, "checkout_sessions", "checkout.session", ctx.path_args["id"])
    pi = fetch(ctx, "payment_intents", "payment_intent", session["payment_intent"], "payment_intent")
    if session["status"] != "complete" or pi["status"] != "processing":
        raise StripeError(400, "This Checkout Session has no payment in progress.")
    charge = fetch(ctx, "charges", "charge", pi["latest_charge"])
    charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
    ctx.collection("charges").save(charge)
    ctx.emit("charge.succeeded", charge)
    pi.update(status="succeeded", amount_received=pi["amount"])
    ctx.collection("payment_intents").save(pi)
    ctx.emit("payment_intent.succeeded", pi)
    session["payment_status"] = "paid"
    ctx.collection("checkout_sessions").save(session)
    ctx.emit("checkout.session.async_payment_succeeded", session)
    settle(ctx, charge)
    return session
