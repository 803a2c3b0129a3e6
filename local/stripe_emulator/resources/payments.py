"""PaymentIntents, Charges and Refunds: where money moves.

Test payment methods as Stripe names them: `pm_card_visa` (and other `pm_card_<brand>`) succeed,
`pm_card_chargeDeclined` fails with a failed charge.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from .. import fixtures
from ..core import Context
from ..listing import fetch, paginate
from ..routes import route
from ..store import new_id
from ..wire import StripeError, get_bool, get_dict, get_int, get_str, invalid_param, merge_metadata, missing_param

DECLINED = {"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"}
_BRANDS = {"visa": "4242", "mastercard": "4444", "amex": "8431", "discover": "1117", "jcb": "0000"}


def card_details(payment_method: str) -> dict[str, Any]:
    brand = payment_method.removeprefix("pm_card_").removesuffix("_chargeDeclined").lower()
    details: dict[str, Any] = orjson.loads(_card_template(brand if brand in _BRANDS else "visa"))
    return details


@cache
def _card_template(brand: str) -> bytes:
    details = fixtures.build("charge", id="", livemode=False)["payment_method_details"]
    details["card"].update(brand=brand, last4=_BRANDS[brand], network=brand, wallet=None)
    return orjson.dumps(details)


def charge_object(
    *,
    charge_id: str,
    created: int,
    livemode: bool,
    amount: int,
    currency: str,
    customer: str | None,
    payment_intent: str | None,
    payment_method: str,
    status: str = "succeeded",
    captured: bool = True,
    billing_email: str | None = None,
    receipt_email: str | None = None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
    card: str | None = None,
) -> dict[str, Any]:
    """A charge as Stripe returns it at `charge.succeeded` / `charge.failed` time; `card` is the test
    payment method (`pm_card_mastercard`) whose brand the charge shows, when `payment_method` is not it."""
    failed = status == "failed"
    charge = fixtures.build(
        "charge",
        id=charge_id,
        created=created,
        livemode=livemode,
        amount=amount,
        amount_captured=amount if captured and not failed else 0,
        amount_refunded=0,
        captured=captured and not failed,
        currency=currency,
        customer=customer,
        payment_intent=payment_intent,
        payment_method=payment_method,
        payment_method_details=card_details(card or payment_method),
        paid=not failed,
        status=status,
        receipt_email=receipt_email,
        metadata=dict(metadata or {}),
        description=description,
        refunded=False,
        receipt_url=f"https://pay.stripe.com/receipts/payment/{charge_id}",
    )
    charge["billing_details"]["email"] = billing_email
    if failed:
        charge.update(failure_code="card_declined", failure_message="Your card was declined.")
        charge["outcome"].update(
            network_status="declined_by_network",
            reason="generic_decline",
            seller_message="The bank did not return any further details with this decline.",
            type="issuer_declined",
        )
    return charge


# ---- PaymentIntents --------------------------------------------------------------------------


def create_payment_intent(
    ctx: Context,
    *,
    amount: int,
    currency: str,
    customer: str | None = None,
    metadata: dict[str, str] | None = None,
    capture_method: str = "automatic",
    receipt_email: str | None = None,
    description: str | None = None,
    payment_method: str | None = None,
) -> dict[str, Any]:
    if amount < 0:
        raise invalid_param("amount", "Amount must be a positive integer.")
    pi_id = new_id("pi_")
    pi = ctx.build(
        "payment_intent",
        "pi_",
        id=pi_id,
        amount=amount,
        amount_capturable=0,
        amount_received=0,
        capture_method=capture_method,
        client_secret=f"{pi_id}_secret_{new_id('', 25)}",
        currency=currency,
        customer=customer,
        metadata=dict(metadata or {}),
        receipt_email=receipt_email,
        description=description,
        payment_method=payment_method,
        status="requires_confirmation" if payment_method else "requires_payment_method",
        latest_charge=None,
    )
    ctx.collection("payment_intents").save(pi)
    ctx.emit("payment_intent.created", pi)
    return pi


def confirm_payment(
    ctx: Context, pi: dict[str, Any], payment_method: str, billing_email: str | None = None
) -> dict[str, Any]:
    """Charge `pi` with `payment_method`: a succeeded (or authorised) charge, or a failed one."""
    if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise StripeError(
            400,
            f"This PaymentIntent's status is {pi['status']}; it cannot be confirmed.",
            code="payment_intent_unexpected_state",
            param="payment_intent",
        )
    if not payment_method.startswith("pm_"):
        raise invalid_param("payment_method", f"No such PaymentMethod: '{payment_method}'")
    declined = payment_method in DECLINED
    manual = pi["capture_method"] == "manual"
    charge = charge_object(
        charge_id=new_id("ch_"),
        created=ctx.now,
        livemode=ctx.livemode,
        amount=pi["amount"],
        currency=pi["currency"],
        customer=pi["customer"],
        payment_intent=pi["id"],
        payment_method=new_id("pm_"),
        status="failed" if declined else "succeeded",
        captured=not manual,
        billing_email=billing_email,
        receipt_email=pi["receipt_email"],
        metadata=pi["metadata"],
        description=pi["description"],
        card=payment_method,
    )
    ctx.collection("charges").save(charge)
    pi.update(payment_method=charge["payment_method"], latest_charge=charge["id"])
    if declined:
        pi.update(
            status="requires_payment_method",
            last_payment_error={
                "charge": charge["id"],
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "type": "card_error",
            },
        )
        ctx.collection("payment_intents").save(pi)
        ctx.emit("charge.failed", charge)
        ctx.emit("payment_intent.payment_failed", pi)
        raise StripeError(
            402,
            "Your card was declined.",
            type="card_error",
            code="card_declined",
            extra={"decline_code": "generic_decline", "charge": charge["id"], "payment_intent": dict(pi)},
        )
    ctx.emit("charge.succeeded", charge)
    if manual:
        pi.update(status="requires_capture", amount_capturable=pi["amount"])
        ctx.collection("payment_intents").save(pi)
        ctx.emit("payment_intent.amount_capturable_updated", pi)
    else:
        pi.update(status="succeeded", amount_received=pi["amount"])
        ctx.collection("payment_intents").save(pi)
        ctx.emit("payment_intent.succeeded", pi)
    return charge


def settle(ctx: Context, charge: dict[str, Any]) -> None:
    """The balance transaction arrives after the charge: Stripe's trailing `charge.updated`."""
    if charge["captured"] and charge["balance_transaction"] is None:
        charge["balance_transaction"] = new_id("txn_")
        ctx.collection("charges").save(charge)
        ctx.emit("charge.updated", charge, {"balance_transaction": None})


def _pay_params(ctx: Context) -> tuple[str | None, bool]:
    return get_str(ctx.params, "payment_method"), get_bool(ctx.params, "confirm")


@route("POST", "/v1/payment_intents", "rak_payment_intent_write")
def create_pi(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    customer = get_str(p, "customer")
    if customer is not None:
        fetch(ctx, "customers", "customer", customer, "customer")
    capture_method = get_str(p, "capture_method") or "automatic"
    if capture_method not in ("automatic", "automatic_async", "manual"):
        raise invalid_param("capture_method", f"Invalid capture_method: {capture_method}")
    payment_method, confirm = _pay_params(ctx)
    pi = create_payment_intent(
        ctx,
        amount=int(get_int(p, "amount", required=True, minimum=0) or 0),
        currency=_currency(p),
        customer=customer,
        metadata=merge_metadata({}, get_dict(p, "metadata")),
        capture_method=capture_method,
        receipt_email=get_str(p, "receipt_email"),
        description=get_str(p, "description"),
        payment_method=payment_method,
    )
    if confirm:
        if payment_method is None:
            raise missing_param("payment_method")
        charge = confirm_payment(ctx, pi, payment_method)
        settle(ctx, charge)
    return pi


@route("POST", "/v1/payment_intents/{id}/confirm", "rak_payment_intent_write")
def confirm_pi(ctx: Context) -> dict[str, Any]:
    pi = fetch(ctx, "payment_intents", "payment_intent", ctx.path_args["id"])
    payment_method = get_str(ctx.params, "payment_method") or pi["payment_method"]
    if payment_method is None:
        raise missing_param("payment_method")
    settle(ctx, confirm_payment(ctx, pi, payment_method))
    return pi


@route("POST", "/v1/payment_intents/{id}/capture", "rak_payment_intent_write")
def capture_pi(ctx: Context) -> dict[str, Any]:
    pi = fetch(ctx, "payment_intents", "payment_intent", ctx.path_args["id"])
    if pi["status"] != "requires_capture":
        raise StripeError(
            400,
            f"This PaymentIntent could not be captured because it has a status of {pi['status']}. "
            "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
            code="payment_intent_unexpected_state",
        )
    amount = get_int(ctx.params, "amount_to_capture", minimum=1)
    if amount is None:
        amount = pi["amount_capturable"]
    if amount > pi["amount_capturable"]:
        raise invalid_param("amount_to_capture", "The amount to capture is greater than the capturable amount.")
    charge = fetch(ctx, "charges", "charge", pi["latest_charge"])
    # A partial capture releases the rest, which Stripe reports as refunded on the charge.
    charge.update(captured=True, amount_captured=amount, amount_refunded=charge["amount"] - amount)
    ctx.collection("charges").save(charge)
    ctx.emit("charge.captured", charge, {"captured": False, "amount_captured": 0, "amount_refunded": 0})
    pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
    ctx.collection("payment_intents").save(pi)
    ctx.emit("payment_intent.succeeded", pi)
    settle(ctx, charge)
    return pi


@route("POST", "/v1/payment_intents/{id}/cancel", "rak_payment_intent_write")
def cancel_pi(ctx: Context) -> dict[str, Any]:
    pi = fetch(ctx, "payment_intents", "payment_intent", ctx.path_args["id"])
    if pi["status"] in ("succeeded", "canceled"):
        raise StripeError(
            400,
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}.",
            code="payment_intent_unexpected_state",
        )
    if pi["status"] == "requires_capture":
        release_authorization(ctx, fetch(ctx, "charges", "charge", pi["latest_charge"]))
    pi.update(
        status="canceled",
        canceled_at=ctx.now,
        cancellation_reason=get_str(ctx.params, "cancellation_reason"),
        amount_capturable=0,
    )
    ctx.collection("payment_intents").save(pi)
    ctx.emit("payment_intent.canceled", pi)
    return pi


def release_authorization(ctx: Context, charge: dict[str, Any]) -> None:
    """An uncaptured charge given up: Stripe shows the released amount as refunded."""
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge.update(amount_refunded=charge["amount"], refunded=True)
    ctx.collection("charges").save(charge)
    ctx.emit("charge.refunded", charge, previous)


@route("GET", "/v1/payment_intents/{id}", "rak_payment_intent_read")
def retrieve_pi(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "payment_intents", "payment_intent", ctx.path_args["id"])


@route("GET", "/v1/payment_intents", "rak_payment_intent_read")
def list_pi(ctx: Context) -> dict[str, Any]:
    return paginate(ctx, "payment_intents", "/v1/payment_intents", where={"customer": get_str(ctx.params, "customer")})


# ---- Charges ---------------------------------------------------------------------------------


@route("GET", "/v1/charges/{id}", "rak_charge_read")
def retrieve_charge(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "charges", "charge", ctx.path_args["id"])


@route("POST", "/v1/charges/{id}", "rak_charge_write")
def update_charge(ctx: Context) -> dict[str, Any]:
    charge = fetch(ctx, "charges", "charge", ctx.path_args["id"])
    previous: dict[str, Any] = {}
    if "metadata" in ctx.params:
        metadata = merge_metadata(charge["metadata"], ctx.params["metadata"])
        if metadata != charge["metadata"]:
            previous["metadata"] = charge["metadata"]
            charge["metadata"] = metadata
    for field in ("description", "receipt_email"):
        if field in ctx.params and charge[field] != (ctx.params[field] or None):
            previous[field] = charge[field]
            charge[field] = ctx.params[field] or None
    ctx.collection("charges").save(charge)
    if previous:
        ctx.emit("charge.updated", charge, previous)
    return charge


@route("GET", "/v1/charges", "rak_charge_read")
def list_charges(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return paginate(
        ctx,
        "charges",
        "/v1/charges",
        where={"customer": get_str(p, "customer"), "payment_intent": get_str(p, "payment_intent")},
    )


# ---- Refunds ---------------------------------------------------------------------------------


def refund_charge(
    ctx: Context, charge: dict[str, Any], amount: int | None, reason: str | None, metadata: dict[str, str]
) -> dict[str, Any]:
    refundable = charge["amount_captured"] - (
        charge["amount_refunded"] - (charge["amount"] - charge["amount_captured"])
    )
    if not charge["captured"] or charge["status"] != "succeeded":
        raise StripeError(
            400, f"Charge {charge['id']} has not been captured.", code="charge_not_refundable", param="charge"
        )
    if refundable <= 0:
        raise StripeError(
            400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded", param="charge"
        )
    amount = refundable if amount is None else amount
    if amount > refundable:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})",
            code="amount_too_large",
            param="amount",
        )
    refund = ctx.build(
        "refund",
        "re_",
        amount=amount,
        charge=charge["id"],
        currency=charge["currency"],
        payment_intent=charge["payment_intent"],
        reason=reason,
        metadata=metadata,
        status="succeeded",
        customer=charge["customer"],
        payment_method=charge["payment_method"],
        balance_transaction=new_id("txn_"),
    )
    ctx.collection("refunds").save(refund)
    ctx.emit("refund.created", refund)
    previous: dict[str, Any] = {"amount_refunded": charge["amount_refunded"]}
    charge["amount_refunded"] += amount
    if amount == refundable:
        previous["refunded"] = False
        charge["refunded"] = True
    ctx.collection("charges").save(charge)
    ctx.emit("charge.refunded", charge, previous)
    refund["destination_details"]["card"].update(reference="ARN" + new_id("", 20), reference_status="available")
    ctx.collection("refunds").save(refund)
    ctx.emit(
        "refund.updated", refund, {"destination_details": {"card": {"reference": None, "reference_status": "pending"}}}
    )
    return refund


@route("POST", "/v1/refunds", "rak_refund_write")
def create_refund(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    charge_id = get_str(p, "charge")
    pi_id = get_str(p, "payment_intent")
    if charge_id is None and pi_id is None:
        raise missing_param("charge")
    if charge_id is None:
        pi = fetch(ctx, "payment_intents", "payment_intent", pi_id, "payment_intent")
        charge_id = pi["latest_charge"]
        if charge_id is None:
            raise StripeError(400, f"PaymentIntent {pi_id} has no charge to refund.", param="payment_intent")
    charge = fetch(ctx, "charges", "charge", charge_id, "charge")
    return refund_charge(
        ctx,
        charge,
        get_int(p, "amount", minimum=1),
        get_str(p, "reason"),
        merge_metadata({}, get_dict(p, "metadata")),
    )


@route("GET", "/v1/refunds/{id}", "rak_refund_read")
def retrieve_refund(ctx: Context) -> dict[str, Any]:
    return fetch(ctx, "refunds", "refund", ctx.path_args["id"])


@route("GET", "/v1/refunds", "rak_refund_read")
def list_refunds(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return paginate(
        ctx,
        "refunds",
        "/v1/refunds",
        where={"charge": get_str(p, "charge"), "payment_intent": get_str(p, "payment_intent")},
    )


def _currency(params: dict[str, Any]) -> str:
    currency = get_str(params, "currency", required=True)
    assert currency is not None
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_param("currency", f"Invalid currency: {currency}.")
    return currency.lower()
