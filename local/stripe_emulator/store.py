"""In-memory state: accounts, their test and live spaces, and ordered, indexed collections.

Collections keep objects sorted by (created, sequence) so list endpoints answer newest first with
cursors and `created` ranges in O(log n + page), which is what keeps 100,000-charge listings fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from .wire import StripeError


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: the prefix and `length` random alphanumerics (hex: fast, and unique)."""
    return prefix + os.urandom((length + 1) // 2).hex()[:length]


class Clock:
    """Wall clock plus an offset that tests can advance (`POST /_emulator/clock`)."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset


SortKey = tuple[int, int, str]


@dataclass
class Page:
    data: list[dict[str, Any]]
    has_more: bool


class Collection:
    """Objects of one resource type, ordered by `created` then insertion, with equality indexes.

    `indexed` maps an index name to a function extracting the indexed value from an object
    (None means "not in this index"). Indexes are refreshed by `save`, so callers mutate an object
    and save it again.
    """

    def __init__(self, indexed: dict[str, Callable[[dict[str, Any]], Any]] | None = None) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, SortKey] = {}
        self._order = SortedList()
        self._extractors = indexed or {}
        self._indexes: dict[str, dict[Any, SortedList]] = {name: {} for name in self._extractors}
        self._indexed_values: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, object_id: str) -> dict[str, Any] | None:
        return self.by_id.get(object_id)

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        object_id = obj["id"]
        key = self._keys.get(object_id)
        if key is None:
            self._seq += 1
            key = (int(obj["created"]), self._seq, object_id)
            self._keys[object_id] = key
            self._order.add(key)
        self.by_id[object_id] = obj
        if self._extractors:
            self._reindex(object_id, key, obj)
        return obj

    def delete(self, object_id: str) -> None:
        key = self._keys.pop(object_id, None)
        if key is None:
            return
        self._order.remove(key)
        self.by_id.pop(object_id)
        for name, value in self._indexed_values.pop(object_id, {}).items():
            self._indexes[name][value].remove(key)

    def _reindex(self, object_id: str, key: SortKey, obj: dict[str, Any]) -> None:
        old = self._indexed_values.setdefault(object_id, {})
        for name, extract in self._extractors.items():
            value = extract(obj)
            if name in old:
                if old[name] == value:
                    continue
                self._indexes[name][old.pop(name)].remove(key)
            if value is not None:
                self._indexes[name].setdefault(value, SortedList()).add(key)
                old[name] = value

    def page(
        self,
        *,
        limit: int,
        where: dict[str, Any] | None = None,
        created: dict[str, int] | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Page:
        """One page, newest first, the way Stripe's list endpoints page."""
        where = where or {}
        source = self._order
        for name, value in where.items():
            source = self._indexes[name].get(value)
            if source is None:
                return Page([], False)
            break  # one index narrows; remaining conditions are checked per object
        rest = list(where.items())[1:]

        lo, hi = _created_bounds(created or {})
        lo_key: tuple[Any, ...] = (lo,)
        hi_key: tuple[Any, ...] = (hi + 1,)
        newest_first = True
        inclusive = (True, False)
        if starting_after is not None:
            cursor = self._cursor(starting_after, "starting_after")
            hi_key = min(hi_key, cursor)
        elif ending_before is not None:
            cursor = self._cursor(ending_before, "ending_before")
            lo_key = max(lo_key, cursor)
            newest_first = False
            inclusive = (lo_key != cursor, False)

        keys: Iterator[SortKey] = source.irange(lo_key, hi_key, inclusive=inclusive, reverse=newest_first)
        data: list[dict[str, Any]] = []
        has_more = False
        for key in keys:
            obj = self.by_id[key[2]]
            if rest and any(self._extractors[n](obj) != v for n, v in rest):
                continue
            if predicate is not None and not predicate(obj):
                continue
            if len(data) == limit:
                has_more = True
                break
            data.append(obj)
        if not newest_first:
            data.reverse()
        return Page(data, has_more)

    def _cursor(self, object_id: str, param: str) -> SortKey:
        key = self._keys.get(object_id)
        if key is None:
            raise StripeError(
                400,
                f"Invalid {param} id: {object_id}. No such object.",
                code="resource_missing",
                param=param,
            )
        return key

    def iter_newest_first(self) -> Iterator[dict[str, Any]]:
        for key in reversed(self._order):
            yield self.by_id[key[2]]


def _created_bounds(created: dict[str, int]) -> tuple[int, int]:
    lo, hi = -(2**62), 2**62
    if "gt" in created:
        lo = max(lo, created["gt"] + 1)
    if "gte" in created:
        lo = max(lo, created["gte"])
    if "lt" in created:
        hi = min(hi, created["lt"] - 1)
    if "lte" in created:
        hi = min(hi, created["lte"])
    return lo, hi


def field_getter(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(obj: dict[str, Any]) -> Any:
        value: Any = obj
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


# Equality filters each list endpoint supports, by collection name.
INDEXES: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "customers": {"email": field_getter("email")},
    "charges": {"customer": field_getter("customer"), "payment_intent": field_getter("payment_intent")},
    "payment_intents": {"customer": field_getter("customer")},
    "refunds": {"charge": field_getter("charge"), "payment_intent": field_getter("payment_intent")},
    "checkout_sessions": {
        "payment_intent": field_getter("payment_intent"),
        "subscription": field_getter("subscription"),
        "status": field_getter("status"),
        "customer": field_getter("customer"),
    },
    "subscriptions": {"customer": field_getter("customer"), "status": field_getter("status")},
    "invoices": {
        "customer": field_getter("customer"),
        "subscription": field_getter("parent", "subscription_details", "subscription"),
        "status": field_getter("status"),
    },
    "invoice_payments": {
        "invoice": field_getter("invoice"),
        "payment_intent": field_getter("payment", "payment_intent"),
        "charge": field_getter("payment", "charge"),
    },
    "prices": {"product": field_getter("product"), "lookup_key": field_getter("lookup_key")},
    "products": {},
    "webhook_endpoints": {},
    "events": {"type": field_getter("type")},
}


@dataclass
class IdempotentResponse:
    fingerprint: str
    status: int
    body: bytes


@dataclass
class Space:
    """One account in one mode (test or live): Stripe keeps the two worlds apart."""

    account_id: str
    livemode: bool
    collections: dict[str, Collection] = field(default_factory=dict)
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    idempotency: dict[str, IdempotentResponse] = field(default_factory=dict)
    # What a Checkout Session was created with but does not show: its line items and the data
    # for the PaymentIntent or Subscription it will create.
    session_lines: dict[str, list[tuple[dict[str, Any], int]]] = field(default_factory=dict)
    session_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, indexed in INDEXES.items():
            self.collections[name] = Collection(indexed)

    def __getitem__(self, name: str) -> Collection:
        return self.collections[name]


@dataclass
class Account:
    id: str
    created: int
    spaces: dict[bool, Space] = field(default_factory=dict)

    def space(self, livemode: bool) -> Space:
        if livemode not in self.spaces:
            self.spaces[livemode] = Space(self.id, livemode)
        return self.spaces[livemode]
