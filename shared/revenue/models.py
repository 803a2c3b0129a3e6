"""Revenue domain objects: what a charge says, what the ledger holds, and who owns a charge."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..identity import VISITOR_METADATA_KEY, visitor_hint

_CURRENCY = re.compile(r"[a-z]{3}")


@dataclass(frozen=True)
class ChargeFacts:
    """The parts of a Stripe Charge that revenue and attribution depend on."""

    id: str
    created: int
    currency: str
    amount: int
    amount_captured: int
    amount_refunded: int
    captured: bool
    status: str
    customer_id: str | None
    billing_email: str | None
    receipt_email: str | None
    payment_intent: str | None = None
    meta_visitor: str | None = None  # `ripples_visitor_id` in the charge's own metadata

    @classmethod
    def from_stripe(cls, charge: dict[str, Any]) -> ChargeFacts:
        currency = str(charge["currency"]).lower()
        if not _CURRENCY.fullmatch(currency):
            raise ValueError("invalid currency")
        customer = charge.get("customer")
        if isinstance(customer, dict):  # expanded
            customer = customer.get("id")
        billing = charge.get("billing_details") or {}
        return cls(
            id=str(charge["id"]),
            created=int(charge["created"]),
            currency=currency,
            amount=int(charge["amount"]),
            amount_captured=int(charge.get("amount_captured") or 0),
            amount_refunded=int(charge.get("amount_refunded") or 0),
            captured=bool(charge.get("captured")),
            status=str(charge.get("status")),
            customer_id=customer,
            billing_email=billing.get("email"),
            receipt_email=charge.get("receipt_email"),
            payment_intent=_id_of(charge.get("payment_intent")),
            meta_visitor=visitor_hint((charge.get("metadata") or {}).get(VISITOR_METADATA_KEY)),
        )

    @property
    def books_revenue(self) -> bool:
        """Rule 1: only captured, succeeded charges book money."""
        return self.captured and self.status == "succeeded"

    @property
    def refunded(self) -> int:
        """Refunds proper: a partial capture's released remainder, reported in amount_refunded, is not one."""
        released = self.amount - self.amount_captured
        return max(0, self.amount_refunded - released)


@dataclass(frozen=True)
class Attribution:
    visitor_id: str | None  # None: unattributed
    tier: int | None  # 1, 2, 3 or None

    @property
    def attributed(self) -> bool:
        return self.visitor_id is not None


UNATTRIBUTED = Attribution(None, None)


@dataclass(frozen=True)
class CustomerRecord:
    """What we know of a Stripe customer: its email and metadata visitor (once fetched) and its link."""

    customer_id: str
    email: str | None = None  # None: not fetched yet; "": fetched, none
    meta_visitor: str | None = None
    visitor_id: str | None = None  # the link
    tier: int | None = None


def _id_of(value: Any) -> str | None:
    """An object id whether the field holds the id or the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SessionFacts:
    """The parts of a completed Checkout Session that attribution depends on."""

    id: str
    created: int
    customer_id: str | None
    payment_intents: tuple[str, ...]  # payment mode: its own; subscription mode: its first invoice's
    meta_visitor: str | None
    client_reference_id: str | None
    email: str | None
    completed: bool
    mode: str
    invoice: str | None
    subscription: str | None
    amount_total: int | None
    currency: str | None

    @classmethod
    def from_stripe(cls, session: dict[str, Any], invoice_payment_intents: tuple[str, ...] = ()) -> SessionFacts:
        own = _id_of(session.get("payment_intent"))
        details = session.get("customer_details") or {}
        return cls(
            id=str(session["id"]),
            created=int(session["created"]),
            customer_id=_id_of(session.get("customer")),
            payment_intents=(own,) if own else tuple(invoice_payment_intents),
            meta_visitor=visitor_hint((session.get("metadata") or {}).get(VISITOR_METADATA_KEY)),
            client_reference_id=visitor_hint(session.get("client_reference_id")),
            email=details.get("email") or session.get("customer_email"),
            completed=session.get("status") == "complete",
            mode=str(session.get("mode")),
            invoice=_id_of(session.get("invoice")),
            subscription=_id_of(session.get("subscription")),
            amount_total=session.get("amount_total"),
            currency=session.get("currency"),
        )
