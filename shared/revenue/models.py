"""Revenue domain objects: what a charge says, what the ledger holds, and who owns a charge."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
    """What we know of a Stripe customer: its email (once fetched) and the visitor it is linked to."""

    customer_id: str
    email: str | None = None
    visitor_id: str | None = None
    tier: int | None = None


@dataclass(frozen=True)
class LedgerEntry:
    charge_id: str
    created: int
    currency: str
    amount: int  # booked revenue: amount_captured
    refunded: int  # refunds booked so far
    visitor_id: str | None
    tier: int | None
    customer_id: str | None
    emails: tuple[str, ...] = field(default=())

    @property
    def net(self) -> int:
        return self.amount - self.refunded


def email_key(email: str | None) -> str | None:
    """Emails match trimmed and case-insensitively."""
    if not email:
        return None
    key = email.strip().lower()
    return key or None
