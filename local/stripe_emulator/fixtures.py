"""Objects built from Stripe's own examples (fixtures3.json), so they carry every field Stripe sends.

Each template is the fixture with its example-only values (ids, amounts, sample sub-objects) reset to
what a new object of that type holds; `build` clones a template by parsing its JSON with orjson
(about ten times faster than `copy.deepcopy`, which matters for the bulk seeder) and applies overrides.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import orjson

FIXTURES_PATH = Path(__file__).with_name("fixtures3.json")

# Fields that a list or retrieve leaves out unless asked for with `expand` (Stripe calls them
# "includable"). The fixtures carry them; real responses do not.
INCLUDABLE: dict[str, frozenset[str]] = {
    "charge": frozenset({"refunds"}),
    "invoice": frozenset({"payments"}),
}

# What a freshly created object holds where the fixture shows sample data.
_NEUTRAL: dict[str, dict[str, Any]] = {
    "charge": {
        "amount_captured": 0,
        "balance_transaction": None,
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "description": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "shipping": None,
        "source": None,
        "transfer_data": None,
        "receipt_url": None,
        "calculated_statement_descriptor": "RIPPLES EMULATOR",
    },
    "customer": {"discount": None, "currency": None, "invoice_prefix": None, "shipping": None},
    "checkout.session": {
        "after_expiration": None,
        "amount_subtotal": None,
        "amount_total": None,
        "consent_collection": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_details": None,
        "payment_intent": None,
        "payment_method_configuration_details": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "collected_information": None,
        "currency_conversion": None,
        "managed_payments": {"enabled": False},
        "adaptive_pricing": {"enabled": False},
        "ui_mode": "hosted",
        "invoice_creation": None,
    },
    "invoice": {
        "account_name": "Ripples Emulator",
        "customer_shipping": None,
        "due_date": None,
        "from_invoice": None,
        "last_finalization_error": None,
        "next_payment_attempt": None,
        "shipping_cost": None,
        "shipping_details": None,
        "webhooks_delivered_at": None,
        "parent": None,
        "total_taxes": [],
        "total_discount_amounts": [],
        "total_pretax_credit_amounts": [],
    },
    "invoice_payment": {"amount_paid": None, "status": "open"},
    "subscription": {
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "next_pending_invoice_item_invoice": None,
        "pause_collection": None,
        "pending_invoice_item_interval": None,
        "pending_update": None,
        "trial_end": None,
        "trial_start": None,
        "billing_thresholds": None,
        "billing_schedules": [],
        "managed_payments": {"enabled": False},
    },
    "refund": {
        "destination_details": {
            "card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        }
    },
    "payment_intent": {
        "amount_details": {"tip": {}},
        "canceled_at": None,
        "last_payment_error": None,
        "next_action": None,
        "payment_method_configuration_details": None,
        "processing": None,
        "shipping": None,
        "transfer_data": None,
        "managed_payments": {"enabled": False},
    },
    "price": {"transform_quantity": None, "custom_unit_amount": None},
    "product": {"package_dimensions": None, "default_price": None, "description": None},
    "webhook_endpoint": {"description": None},
    "event": {},
    "subscription_item": {"billing_thresholds": None},
}


@cache
def _fixtures() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(FIXTURES_PATH.read_text())["resources"]
    return resources


@cache
def _template(resource: str) -> bytes:
    obj = dict(_fixtures()[resource])
    obj.update(_NEUTRAL.get(resource, {}))
    for name in INCLUDABLE.get(resource, ()):
        obj.pop(name, None)
    return orjson.dumps(obj)


@cache
def fixture_keys(resource: str) -> frozenset[str]:
    """The fields Stripe's example object of `resource` has."""
    return frozenset(_fixtures()[resource])


def build(resource: str, **overrides: Any) -> dict[str, Any]:
    """A new object of `resource` type with every field of Stripe's example, overridden."""
    obj: dict[str, Any] = orjson.loads(_template(resource))
    obj.update(overrides)
    return obj
