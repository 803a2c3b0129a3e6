"""What the revenue table holds, as domain records, and how each is read from its item.

The store reads items and turns them into these; decisions read these and return write intents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .items import CustomerItem, LedgerItem, PaymentItem, ProfileItem, SessionItem
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
    source: str | None = None  # the owner's acquisition.source, for the rollups (shared.revenue.sourcing)

    @property
    def net(self) -> int:
        return self.amount - self.refunded


def ledger_record(item: LedgerItem) -> LedgerRecord:
    amount, refunded = int(item.amount), int(item.refunded)
    facts = ChargeFacts(
        id=item.charge_id,
        created=int(item.created),
        currency=item.currency,
        amount=amount,
        amount_captured=amount,
        amount_refunded=refunded,
        captured=True,
        status="succeeded",
        customer_id=item.customer_id,
        billing_email=item.billing_email,
        receipt_email=item.receipt_email,
        payment_intent=item.payment_intent,
        meta_visitor=item.meta_visitor,
    )
    return LedgerRecord(
        facts=facts,
        visitor_id=item.visitor_id,
        tier=_int(item.tier),
        amount=amount,
        refunded=refunded,
        refund_steps=tuple((int(c), int(t)) for c, t in item.refund_steps or ()),
        version=int(item.version or 0),
        source=item.source,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


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


def customer_root(customer_id: str, item: CustomerItem | None) -> CustomerRoot:
    if item is None:
        return CustomerRoot(CustomerRecord(customer_id), False, None, None)
    link = None
    if item.visitor_id:
        link = Link(item.visitor_id, (int(item.link_created or 0), item.link_id or ""), int(item.tier or 0))
    record = CustomerRecord(
        customer_id,
        email=item.email,
        meta_visitor=item.meta_visitor,
        visitor_id=item.visitor_id,
        tier=_int(item.tier),
    )
    return CustomerRoot(record, bool(item.fetched), link, int(item.version or 0), bool(item.dirty))


@dataclass(frozen=True)
class PaymentJoin:
    """Where a PaymentIntent's charges meet the sessions that paid it, whichever arrived first."""

    sessions: frozenset[str] = frozenset()
    charges: frozenset[str] = frozenset()
    version: int | None = None  # None: no item yet


def payment_join(item: PaymentItem | None) -> PaymentJoin:
    if item is None:
        return PaymentJoin()
    return PaymentJoin(frozenset(item.sessions or ()), frozenset(item.charges or ()), int(item.version or 0))


def session_facts(item: SessionItem) -> SessionFacts:
    return SessionFacts(
        id=item.session_id,
        created=int(item.created),
        customer_id=item.customer_id,
        payment_intents=tuple(item.payment_intents or ()),
        meta_visitor=item.meta_visitor,
        client_reference_id=item.client_reference_id,
        email=item.email,
        completed=bool(item.completed),
        mode=item.mode or "payment",
        invoice=item.invoice,
        subscription=item.subscription,
        amount_total=_int(item.amount_total),
        currency=item.currency,
    )


@dataclass(frozen=True)
class Profile:
    """What a decision needs of a visitor's profile to set its plan: the subscriptions placed on it
    (rule 6 chooses the plan among them) and the version of that choice; and its source."""

    visitor_id: str
    subscriptions: dict[str, SubscriptionState] = field(default_factory=dict)
    plan_version: int = 0
    source: str | None = None  # acquisition.source: what the entries it gains are rolled up under


def profile(item: ProfileItem) -> Profile:
    subscriptions = {sid: SubscriptionState(**state) for sid, state in plain(item.subscriptions).items()}
    source = item.acquisition.source if item.acquisition is not None else None
    return Profile(item.visitor_id, subscriptions, int(item.plan_version or 0), source)


def plain(value: Any) -> Any:
    """A raw map attribute (or its nested values) as plain Python: dicts, lists, ints."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
