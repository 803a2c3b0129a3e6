"""Write intents: what a decision wants written, as plain data (the store turns them into DynamoDB).

A decision (shared.revenue.decision) returns a `Decision`: per scope, the customer item to save
(its version bumped by every transaction that writes into the customer's partition), the intents
that go into the scope's first transaction, and *units*, groups of intents that must be written
together (a charge's ledger entry with its totals and timeline) and may be spread over several
transactions of at most 100 items each. The event mark goes into the decision's last transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import CustomerRecord, SessionFacts
from .plans import SubscriptionState
from .records import CustomerRoot, LedgerRecord, PaymentJoin
from .resolve import Link
from .timeline import TimelineEntry

# ---- conditions: what the decision read still holds ---------------------------------------------------


@dataclass(frozen=True)
class ExpectHead:
    """The email's head (the visitor identified first with it) is as read: absent (None) or at version."""

    email: str
    version: int | None


@dataclass(frozen=True)
class ExpectNoVisitor:
    """A visitor id the evidence names is still unknown in the project."""

    visitor_id: str


@dataclass(frozen=True)
class ExpectJoin:
    payment_intent: str
    version: int | None


@dataclass(frozen=True)
class ExpectLedger:
    """A charge without customer that the decision leaves where it is (its entry is its scope's root)."""

    charge_id: str
    version: int


# ---- the customer item: the scope's root -------------------------------------------------------------


@dataclass(frozen=True)
class SaveRoot:
    before: CustomerRoot  # as read: the first transaction is conditioned on its version
    record: CustomerRecord  # facts to store (fetched now or as read)
    fetched: bool
    link: Link | None


# ---- evidence ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveSession:
    session: SessionFacts


@dataclass(frozen=True)
class JoinPayment:
    """Add a session or a charge to its PaymentIntent's join item (conditioned on the join as read)."""

    payment_intent: str
    join: PaymentJoin
    session: str | None = None
    charge: str | None = None


@dataclass(frozen=True)
class AddSessionMember:
    customer_id: str
    session_id: str


@dataclass(frozen=True)
class AddRef:
    """The scope depends on this email or names this visitor: re-resolve it when either changes."""

    scope: str
    email: str | None = None
    visitor_id: str | None = None


@dataclass(frozen=True)
class LinkCustomer:
    """A visitor's `stripe_customer_ids` are the customers linked to it."""

    visitor_id: str
    customer_id: str
    linked: bool


@dataclass(frozen=True)
class MarkEvent:
    event_id: str


# ---- money and placements (units) --------------------------------------------------------------------


@dataclass(frozen=True)
class BookCharge:
    """A new ledger entry, its owner's total, its timeline and its membership in the customer."""

    record: LedgerRecord
    join: PaymentJoin | None  # its PaymentIntent's join as read (None: no PaymentIntent)


@dataclass(frozen=True)
class MoveCharge:
    """The charge's net revenue and its timeline leave `before`'s owner and join `after`'s."""

    before: LedgerRecord
    after: LedgerRecord


@dataclass(frozen=True)
class Resource:
    """The owner's acquisition.source changed: the entry records the new one, and its rollup
    contribution moves with it (owner, money and timeline stay)."""

    before: LedgerRecord
    after: LedgerRecord


@dataclass(frozen=True)
class BookRefund:
    before: LedgerRecord
    after: LedgerRecord
    entry: TimelineEntry


@dataclass(frozen=True)
class PlaceContext:
    """A customer's context event (revenue 0) and the visitor it shows on, moved from `before`."""

    customer_id: str
    event_key: str
    context: dict[str, Any]
    entry: TimelineEntry
    before: str | None
    after: str | None
    stored: bool


@dataclass(frozen=True)
class PlaceGuestCheckout:
    """A customer-less session's Checkout Completed, moved from `before` to `after` (its own scope:
    the placement item's version, as read, is checked and bumped)."""

    session_id: str
    context: dict[str, Any]
    entry: TimelineEntry
    before: str | None
    after: str | None
    version: int | None  # None: never placed


@dataclass(frozen=True)
class PlaceSubscription:
    customer_id: str
    state: SubscriptionState
    after: str | None


@dataclass(frozen=True)
class SetPlan:
    """A visitor's subscriptions changed: the copies placed on it and the plan chosen among them,
    conditioned on the plan version read."""

    visitor_id: str
    changes: tuple[tuple[str, SubscriptionState | None], ...]  # subscription id -> state (None: removed)
    plan: dict[str, Any] | None
    expected_version: int


Intent = (
    ExpectHead
    | ExpectNoVisitor
    | ExpectJoin
    | ExpectLedger
    | SaveSession
    | JoinPayment
    | AddSessionMember
    | AddRef
    | LinkCustomer
    | MarkEvent
    | BookCharge
    | MoveCharge
    | BookRefund
    | Resource
    | PlaceContext
    | PlaceGuestCheckout
    | PlaceSubscription
    | SetPlan
)
Unit = tuple[Intent, ...]


@dataclass
class ScopeWrites:
    root: SaveRoot | None  # None: a charge without customer
    first: list[Intent] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)


@dataclass
class Decision:
    scopes: list[ScopeWrites] = field(default_factory=list)
    first: list[Intent] = field(default_factory=list)  # the decision's new evidence: first transaction
    last: list[Intent] = field(default_factory=list)  # the event mark: last transaction

    def is_empty(self) -> bool:
        return not self.first and not self.last and not any(s.root or s.first or s.units for s in self.scopes)
