"""Where a customer's context events and subscriptions go (rules 1 and 6), re-decided with its link.

Context events (Checkout Completed, Invoice Paid, Subscription Updated/Canceled) show their amount
and add 0 to revenue; subscriptions set the visitor's plan. Both are kept in the customer's
partition with the visitor they are placed on, so when the customer's link arrives or changes they
move like the customer's charges do. Pure: placements are returned as intents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..identity import email_key
from .intents import PlaceContext, PlaceSubscription, SetPlan
from .items import ContextItem, SubscriptionItem
from .models import CustomerRecord, SessionFacts
from .plans import SubscriptionState, visitor_plan
from .records import Profile, plain
from .resolve import Link, session_visitor
from .timeline import TimelineEntry


@dataclass(frozen=True)
class ContextEvent:
    event_key: str  # dedup: one per Stripe object (and type)
    at: int
    type: str
    amount: int | None
    currency: str | None
    stripe_object_id: str
    session_id: str | None = None  # Checkout Completed: its own tier-1 evidence comes first

    def timeline(self) -> TimelineEntry:
        return TimelineEntry(
            self.event_key, self.at, self.type, self.amount, self.currency, 0, self.stripe_object_id, None
        )


@dataclass
class Placed:
    """A stored context event or subscription state, and where it is placed now."""

    value: ContextEvent | SubscriptionState
    visitor_id: str | None
    stored: bool


def placed_from_item(item: ContextItem | SubscriptionItem) -> Placed:
    if isinstance(item, ContextItem):
        return Placed(ContextEvent(**plain(item.context)), item.placed_visitor, True)
    return Placed(SubscriptionState(**plain(item.state)), item.placed_visitor, True)


def owner_of(
    value: ContextEvent | SubscriptionState,
    customer: CustomerRecord,
    link: Link | None,
    sessions: dict[str, SessionFacts],
    known: frozenset[str],
    heads: dict[str, str],
) -> str | None:
    """Rule 6's lookup (subscription metadata, customer metadata, link, customer email); a Checkout
    Completed event first goes by its session's own evidence."""
    if isinstance(value, SubscriptionState):
        if value.metadata_visitor_id in known:
            return value.metadata_visitor_id
    elif value.session_id and value.session_id in sessions:
        visitor = session_visitor(sessions[value.session_id], known)
        if visitor:
            return visitor
    if customer.meta_visitor in known:
        return customer.meta_visitor
    if link is not None:
        return link.visitor_id
    key = email_key(customer.email)
    return heads.get(key) if key else None


@dataclass
class PlanChanges:
    """Subscriptions leaving and joining visitors in one decision; the plans they make."""

    changes: dict[str, dict[str, SubscriptionState | None]] = field(default_factory=dict)

    def move(self, state: SubscriptionState, before: str | None, after: str | None) -> None:
        if before and before != after:
            self.changes.setdefault(before, {})[state.subscription_id] = None
        if after:
            self.changes.setdefault(after, {})[state.subscription_id] = state

    def visitors(self) -> set[str]:
        return set(self.changes)

    def plans(self, profiles: dict[str, Profile]) -> list[SetPlan]:
        """Each visitor's plan recomputed from its subscriptions as read plus these changes."""
        intents = []
        for visitor_id, changes in sorted(self.changes.items()):
            profile = profiles[visitor_id]
            subscriptions = {**profile.subscriptions, **changes}
            chosen = visitor_plan(s for s in subscriptions.values() if s is not None)
            intents.append(SetPlan(visitor_id, tuple(sorted(changes.items())), chosen, profile.plan_version))
        return intents


def place(
    customer_id: str, placed: Placed, owner: str | None, plans: PlanChanges
) -> PlaceContext | PlaceSubscription | None:
    """The intent that (re)places a context event or subscription state, if anything changed."""
    value = placed.value
    if isinstance(value, ContextEvent):
        if placed.stored and placed.visitor_id == owner:
            return None
        return PlaceContext(
            customer_id, value.event_key, asdict(value), value.timeline(), placed.visitor_id, owner, placed.stored
        )
    plans.move(value, placed.visitor_id, owner)
    return PlaceSubscription(customer_id, value, owner)
