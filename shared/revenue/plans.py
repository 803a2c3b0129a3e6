"""Rule 6: a visitor's plan, from Stripe subscriptions (pure logic: no I/O).

A `SubscriptionState` is what one customer.subscription.* event (or one read from the API, e.g. a
backfill page) says about a subscription. Webhooks arrive in any order and more than once, so states of
one subscription are combined with `merge`, which keeps the newest by a total order (`order_key`):

    order_key(s) = (as_of, ended, current_period_start, ended_at, canceled_at, lifecycle rank,
                    read, every field of s)

- `as_of`: the event's `created`; for a state read without an event, the latest of the
  subscription's own timestamps (`created`, first item's `current_period_start`, `canceled_at`,
  `ended_at`), the earliest moment that read can describe. So an older event never overwrites a newer
  one, and a re-sync's fresh read of a renewed subscription beats an event of an earlier period.
- `ended` (canceled or incomplete_expired, both terminal in Stripe): at the same `as_of` a deleted
  subscription beats any live state of it (Stripe sends `deleted` last).
- then the subscription's own timestamps (missing < any time), then a lifecycle rank for states of the
  same second (incomplete < trialing < active < past_due < unpaid < paused), then a read beats an event
  of the same `as_of` (it was made at or after that moment).
- last, every field of the state, so two states with equal keys are equal states.

The key tells states apart, so `merge` is "keep the larger key": commutative, associative and
idempotent. Any permutation of any states of one subscription, duplicates included, merges to the same
state. States of the same second that differ only by content are ordered arbitrarily, but always the
same way.

A visitor's plan (`visitor_plan`) is the newest live subscription by `recency` (the event's `created`,
else the subscription's `created`), else the most recently ended one (its event's `created`, else
`ended_at`, else `created`); ties go to the greater `created`, then subscription id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import Any

from ..identity import VISITOR_METADATA_KEY
from ..isotime import iso_seconds

EVENT_CREATED = "customer.subscription.created"
EVENT_UPDATED = "customer.subscription.updated"
EVENT_DELETED = "customer.subscription.deleted"

_TITLES = {
    EVENT_CREATED: "Subscription Updated",
    EVENT_UPDATED: "Subscription Updated",
    EVENT_DELETED: "Subscription Canceled",
}

# Terminal statuses: Stripe never brings a subscription back from them. For the visitor's plan they
# count as canceled (Stripe's list calls both "ended"); trialing, past_due, unpaid... are live.
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})

# Where a subscription usually goes next, for two states of the same second with the same timestamps
# (e.g. `created` incomplete then `updated` active when the first payment succeeds at once).
_LIFECYCLE = {
    "incomplete": 0,
    "trialing": 1,
    "active": 2,
    "past_due": 3,
    "unpaid": 4,
    "paused": 5,
    "incomplete_expired": 6,
    "canceled": 7,
}


@dataclass(frozen=True)
class SubscriptionState:
    """One known state of a Stripe subscription: its plan fields, what orders it, and visitor hints."""

    subscription_id: str
    customer_id: str | None
    status: str  # Stripe's; "canceled" after customer.subscription.deleted
    # Plan fields (api.md `plan`), from the first item unless said otherwise:
    name: str | None  # price nickname, else lookup_key, else price id
    price_id: str | None
    amount: int | None  # sum over items of unit_amount x quantity (minor unit)
    currency: str | None
    interval: str | None  # price.recurring.interval
    current_period_end: str | None  # ISO 8601 UTC, "2026-11-27T14:00:00Z"
    cancel_at_period_end: bool
    # Ordering data (unix seconds):
    event_created: int | None  # the event's `created`; None for a state read from the API
    created: int  # the subscription's `created`
    current_period_start: int | None  # first item's
    canceled_at: int | None
    ended_at: int | None
    # Visitor hint: `ripples_visitor_id` in the subscription's metadata.
    metadata_visitor_id: str | None

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES

    def plan(self) -> dict[str, Any]:
        """The api.md plan object."""
        return {
            "name": self.name,
            "status": self.status,
            "price_id": self.price_id,
            "amount": self.amount,
            "currency": self.currency,
            "interval": self.interval,
            "current_period_end": self.current_period_end,
            "cancel_at_period_end": self.cancel_at_period_end,
        }


def state_from_event(
    event_type: str | None, subscription: dict[str, Any], event_created: int | None
) -> SubscriptionState:
    """The state a customer.subscription.created/updated/deleted event carries (event_type None: a
    subscription read from the API, event_created then None too). Deleted keeps the plan, status canceled.
    ValueError for any other event type."""
    if event_type is not None and event_type not in _TITLES:
        raise ValueError(f"not a subscription state event: {event_type}")
    items = [item for item in (subscription.get("items") or {}).get("data") or [] if isinstance(item, dict)]
    first = items[0] if items else {}
    price = _price(first)
    recurring = price.get("recurring") or {}
    customer = subscription.get("customer")
    if isinstance(customer, dict):  # expanded
        customer = customer.get("id")
    currency = subscription.get("currency") or price.get("currency")
    visitor = ((subscription.get("metadata") or {}).get(VISITOR_METADATA_KEY) or "").strip()
    return SubscriptionState(
        subscription_id=str(subscription["id"]),
        customer_id=str(customer) if customer else None,
        status="canceled" if event_type == EVENT_DELETED else str(subscription["status"]),
        name=price.get("nickname") or price.get("lookup_key") or price.get("id"),
        price_id=price.get("id"),
        amount=_amount(items),
        currency=str(currency).lower() if currency else None,
        interval=recurring.get("interval"),
        current_period_end=_iso(first.get("current_period_end")),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        event_created=event_created,
        created=int(subscription["created"]),
        current_period_start=_int(first.get("current_period_start")),
        canceled_at=_int(subscription.get("canceled_at")),
        ended_at=_int(subscription.get("ended_at")),
        metadata_visitor_id=visitor or None,
    )


def order_key(state: SubscriptionState) -> tuple[Any, ...]:
    """The total order of states of one subscription (see the module docstring)."""
    return (
        _as_of(state),
        state.ended,
        _nullable(state.current_period_start),
        _nullable(state.ended_at),
        _nullable(state.canceled_at),
        _LIFECYCLE.get(state.status, -1),
        state.event_created is None,
        tuple(_nullable(value) for value in astuple(state)),
    )


def is_newer(candidate: SubscriptionState, current: SubscriptionState) -> bool:
    """Whether `candidate` replaces `current` (two states of the same subscription)."""
    return order_key(candidate) > order_key(current)


def merge(current: SubscriptionState | None, candidate: SubscriptionState) -> SubscriptionState:
    """The newer of two states of one subscription (`current` None: nothing known yet)."""
    if current is None:
        return candidate
    if current.subscription_id != candidate.subscription_id:
        raise ValueError("states of different subscriptions")
    return candidate if is_newer(candidate, current) else current


def recency(state: SubscriptionState) -> int:
    """How recent a subscription's latest state is, to pick the visitor's plan: the event's `created`,
    else (a read) when it ended, else the subscription's `created`."""
    if state.event_created is not None:
        return state.event_created
    if state.ended and state.ended_at is not None:
        return state.ended_at
    return state.created


def visitor_plan(states: Iterable[SubscriptionState]) -> dict[str, Any] | None:
    """The plan a visitor shows: of the latest state of each of its subscriptions, the newest live one,
    else the most recently ended; None without any state."""
    latest: dict[str, SubscriptionState] = {}
    for state in states:
        latest[state.subscription_id] = merge(latest.get(state.subscription_id), state)
    if not latest:
        return None
    chosen = max(latest.values(), key=lambda s: (not s.ended, recency(s), s.created, s.subscription_id))
    return chosen.plan()


def event_title(event_type: str) -> str:
    """The timeline event type of a customer.subscription.* event."""
    try:
        return _TITLES[event_type]
    except KeyError:
        raise ValueError(f"not a subscription state event: {event_type}") from None


# ---- helpers -------------------------------------------------------------------------------------


def _price(item: dict[str, Any]) -> dict[str, Any]:
    price = item.get("price")
    if isinstance(price, str):  # not expanded: only the id is known
        return {"id": price}
    return price if isinstance(price, dict) else {}


def _amount(items: list[dict[str, Any]]) -> int | None:
    """Sum of unit_amount x quantity over the items where both are known (tiered prices have no
    unit_amount, metered items no quantity: they add nothing); None when no item has both."""
    parts = []
    for item in items:
        unit_amount, quantity = _price(item).get("unit_amount"), item.get("quantity")
        if unit_amount is not None and quantity is not None:
            parts.append(int(unit_amount) * int(quantity))
    return sum(parts) if parts else None


def _as_of(state: SubscriptionState) -> int:
    if state.event_created is not None:
        return state.event_created
    own = (state.created, state.current_period_start, state.canceled_at, state.ended_at)
    return max(t for t in own if t is not None)


def _nullable(value: Any) -> tuple[bool, Any]:
    """Orders None before any value of the field's type (None and 0 or "" stay distinct)."""
    return (False, 0) if value is None else (True, value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso(epoch: Any) -> str | None:
    return None if epoch is None else iso_seconds(epoch)
