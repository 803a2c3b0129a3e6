"""Where a customer's context events and subscriptions go (rules 1 and 6), re-decided with its link.

Context events (Checkout Completed, Invoice Paid, Subscription Updated/Canceled) show their amount
and add 0 to revenue; subscriptions set the visitor's plan. Both are kept in the customer's
partition with the visitor they are placed on, so when the customer's link arrives or changes they
move like the customer's charges do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import dynamo
from ..settings import get_settings
from . import keys, store
from .models import CustomerRecord, SessionFacts, email_key
from .plans import SubscriptionState, visitor_plan
from .resolve import Link, session_visitor
from .store import Transaction


@dataclass(frozen=True)
class ContextEvent:
    event_key: str  # dedup: one per Stripe object (and type)
    at: int
    type: str
    amount: int | None
    currency: str | None
    stripe_object_id: str
    session_id: str | None = None  # Checkout Completed: its own tier-1 evidence comes first

    def timeline(self) -> dict[str, Any]:
        return {
            "event_id": self.event_key,
            "at": self.at,
            "type": self.type,
            "amount": self.amount,
            "currency": self.currency,
            "revenue": 0,
            "stripe_object_id": self.stripe_object_id,
            "tier": None,
        }


@dataclass
class Placed:
    """A stored context event or subscription state, and where it is placed now."""

    value: ContextEvent | SubscriptionState
    visitor_id: str | None
    stored: bool


def placed_from_item(item: dict[str, Any]) -> Placed:
    if item["sk"].startswith(keys.CONTEXT_PREFIX):
        return Placed(ContextEvent(**item["context"]), item.get("placed_visitor"), True)
    return Placed(SubscriptionState(**item["state"]), item.get("placed_visitor"), True)


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


def place(tx: Transaction, project: str, customer_id: str, placed: Placed, owner: str | None) -> set[str]:
    """Write the item and its placement if either changed; return visitors whose plan may change."""
    if placed.stored and placed.visitor_id == owner and isinstance(placed.value, ContextEvent):
        return set()
    value = placed.value
    if isinstance(value, ContextEvent):
        if placed.visitor_id and placed.visitor_id != owner:
            tx.delete_timeline(placed.visitor_id, value.at, value.event_key)
        if owner:
            tx.put_timeline(owner, value.timeline())
        tx.put_plain(
            "context",
            keys.customer_context(project, customer_id, value.event_key),
            {"context": asdict(value), "placed_visitor": owner},
        )
        return set()
    state = {"state": asdict(value), "placed_visitor": owner}
    tx.put_plain("subscription", keys.customer_subscription(project, customer_id, value.subscription_id), state)
    if placed.visitor_id and placed.visitor_id != owner:
        tx.delete_item("subscription", keys.visitor_subscription(project, placed.visitor_id, value.subscription_id))
    if owner:
        tx.put_plain("subscription", keys.visitor_subscription(project, owner, value.subscription_id), state)
    return {v for v in (placed.visitor_id, owner) if v}


def refresh_plans(project: str, visitor_ids: set[str]) -> None:
    """Recompute each visitor's plan from its subscriptions' states (after the move is committed)."""
    table = get_settings().revenue_table
    for visitor_id in sorted(visitor_ids):
        items = store.query_partition(keys.visitor_pk(project, visitor_id))
        states = [SubscriptionState(**i["state"]) for i in items if i["sk"].startswith(keys.SUBSCRIPTION_PREFIX)]
        plan = visitor_plan(states)
        update = "SET #plan = :plan" if plan else "REMOVE #plan"
        kwargs: dict[str, Any] = {
            "TableName": table,
            "Key": keys.visitor(project, visitor_id),
            "UpdateExpression": update,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#plan": "plan"},
        }
        if plan:
            kwargs["ExpressionAttributeValues"] = {":plan": dynamo.to_item({"plan": plan})["plan"]}
        dynamo.client().update_item(**kwargs)
