"""What the revenue table holds, as domain records, and how each is read from its item.

The store reads items and turns them into these; decisions read these and return write intents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import keys
from .models import ChargeFacts, CustomerRecord, SessionFacts
from .plans import SubscriptionState
from .resolve import Link


@dataclass(frozen=True)
class LedgerRecord:
    """A booked charge: its evidence, its owner and the money booked so far."""

    facts: ChargeFacts
    visitor_id: str | None
    tier: int | None
    amount: int
    refunded: int
    refund_steps: tuple[tuple[int, int], ...]  # (cumulative refunded, when) of each booked refund delta
    version: int

    @property
    def net(self) -> int:
        return self.amount - self.refunded


def ledger_record(item: dict[str, Any]) -> LedgerRecord:
    facts = ChargeFacts(
        id=item["charge_id"],
        created=item["created"],
        currency=item["currency"],
        amount=item["amount"],
        amount_captured=item["amount"],
        amount_refunded=item["refunded"],
        captured=True,
        status="succeeded",
        customer_id=item.get("customer_id"),
        billing_email=item.get("billing_email"),
        receipt_email=item.get("receipt_email"),
        payment_intent=item.get("payment_intent"),
        meta_visitor=item.get("meta_visitor"),
    )
    return LedgerRecord(
        facts=facts,
        visitor_id=item.get("visitor_id"),
        tier=item.get("tier"),
        amount=item["amount"],
        refunded=item["refunded"],
        refund_steps=tuple((int(c), int(t)) for c, t in item.get("refund_steps", [])),
        version=item.get("version", 0),
    )


def new_ledger_record(facts: ChargeFacts, visitor_id: str | None, tier: int | None) -> LedgerRecord:
    """A charge booked now: its captured amount, and what was refunded before we saw it as one step."""
    steps = ((facts.refunded, facts.created),) if facts.refunded else ()
    return LedgerRecord(facts, visitor_id, tier, facts.amount_captured, facts.refunded, steps, 1)


@dataclass(frozen=True)
class CustomerRoot:
    """The customer item: the customer's facts, its link, and the version every decision on the
    customer's partition checks and bumps. `dirty`: a decision was split over several transactions
    and not all of them are written yet, so the next decision must re-resolve the whole customer."""

    record: CustomerRecord
    fetched: bool
    link: Link | None
    version: int | None  # None: no item yet
    dirty: bool = False


def customer_root(customer_id: str, item: dict[str, Any] | None) -> CustomerRoot:
    if item is None:
        return CustomerRoot(CustomerRecord(customer_id), False, None, None)
    link = None
    if item.get("visitor_id"):
        link = Link(item["visitor_id"], (item["link_created"], item["link_id"]), item["tier"])
    record = CustomerRecord(
        customer_id,
        email=item.get("email"),
        meta_visitor=item.get("meta_visitor"),
        visitor_id=item.get("visitor_id"),
        tier=item.get("tier"),
    )
    return CustomerRoot(record, bool(item.get("fetched")), link, item.get("version", 0), bool(item.get("dirty")))


@dataclass(frozen=True)
class PaymentJoin:
    """Where a PaymentIntent's charges meet the sessions that paid it, whichever arrived first."""

    sessions: frozenset[str] = frozenset()
    charges: frozenset[str] = frozenset()
    version: int | None = None  # None: no item yet


def payment_join(item: dict[str, Any] | None) -> PaymentJoin:
    if item is None:
        return PaymentJoin()
    return PaymentJoin(frozenset(item.get("sessions", ())), frozenset(item.get("charges", ())), item.get("version", 0))


def session_facts(item: dict[str, Any]) -> SessionFacts:
    return SessionFacts(
        id=item["session_id"],
        created=item["created"],
        customer_id=item.get("customer_id"),
        payment_intents=tuple(item.get("payment_intents", ())),
        meta_visitor=item.get("meta_visitor"),
        client_reference_id=item.get("client_reference_id"),
        email=item.get("email"),
        completed=bool(item.get("completed")),
        mode=item.get("mode", "payment"),
        invoice=item.get("invoice"),
        subscription=item.get("subscription"),
        amount_total=item.get("amount_total"),
        currency=item.get("currency"),
    )


@dataclass(frozen=True)
class Profile:
    """What a decision needs of a visitor's profile to set its plan: the subscriptions placed on it
    (rule 6 chooses the plan among them) and the version of that choice."""

    visitor_id: str
    subscriptions: dict[str, SubscriptionState] = field(default_factory=dict)
    plan_version: int = 0


def profile(item: dict[str, Any]) -> Profile:
    subscriptions = {
        name.removeprefix(keys.SUBSCRIPTION_ATTR_PREFIX): SubscriptionState(**value)
        for name, value in item.items()
        if name.startswith(keys.SUBSCRIPTION_ATTR_PREFIX)
    }
    return Profile(item["visitor_id"], subscriptions, int(item.get("plan_version", 0)))
