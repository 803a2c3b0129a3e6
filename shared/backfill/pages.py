"""One page of a slice: read from Stripe's list endpoint as raw JSON, booked by the engine.

stripe-python builds a StripeObject per item (~100 ms for a page of 100 expanded charges); the raw
response is parsed once instead. Charges and sessions are booked a page at a time, customers
expanded (no Stripe read per customer); subscriptions through the engine's entry point for a read
state, with an id of the backfill's own (`backfill:<run>:<id>`): one read again in the run is a
duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

from ..revenue import engine
from ..revenue.models import CustomerRecord
from .slices import Phase, SliceMessage

LIST_PATHS: dict[Phase, str] = {
    "checkout_sessions": "/v1/checkout/sessions",
    "charges": "/v1/charges",
    "subscriptions": "/v1/subscriptions",
}
PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    objects: list[dict[str, Any]]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        """Where the slice goes on (None: this page ends it)."""
        return str(self.objects[-1]["id"]) if self.has_more and self.objects else None

    @property
    def oldest(self) -> int | None:
        return min((int(o["created"]) for o in self.objects), default=None)

    def handed_on(self, before: int) -> Page:
        """What a split slice books of its first page: the objects created at `before` or later (its
        children read the older ones), and nothing after it."""
        return Page([o for o in self.objects if int(o["created"]) >= before], has_more=False)


def read(client: stripe.StripeClient, message: SliceMessage, cursor: str | None) -> Page:
    """The page of the slice after `cursor` (newest first). Stripe's errors propagate."""
    created = {"gte": message.gte} | ({"lt": message.lt} if message.lt is not None else {})
    params: dict[str, Any] = {"limit": PAGE_SIZE, "created": created}
    if cursor:
        params["starting_after"] = cursor
    if message.phase != "subscriptions":  # a booking needs the customer's email and metadata
        params["expand"] = ["data.customer"]
    if message.phase == "checkout_sessions":
        params["status"] = "complete"
    response = client.raw_request("get", LIST_PATHS[message.phase], **params)
    body: dict[str, Any] = response.data  # StripeResponse: the parsed JSON
    return Page(list(body.get("data") or []), bool(body.get("has_more")))


@dataclass(frozen=True)
class Lookups:
    """The Stripe reads a booking may need, paced by the rate budget like the pages themselves."""

    customer: Callable[[str], CustomerRecord]
    invoice_payment_intents: Callable[[str], tuple[str, ...]]


def book(message: SliceMessage, page: Page, lookups: Lookups, seen_at: int) -> int:
    """Book the page; returns how many charges it read (for `charges_imported`)."""
    project = message.project_id
    if message.phase == "charges":
        return engine.on_charges_page(project, page.objects, lookups.customer, seen_at).charges
    if message.phase == "checkout_sessions":
        engine.on_sessions_page(project, page.objects, lookups.customer, lookups.invoice_payment_intents)
        return 0
    for obj in page.objects:
        # the run in the id: a later run (a re-sync) reads it again
        read = _event(f"backfill:{message.run}:{obj['id']}", obj)
        if obj.get("status") != "canceled":  # (the list leaves canceled ones out already)
            engine.on_subscription_read(project, obj, read, lookups.customer)
    return 0


def _event(event_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What the engine's entry points read of an event, for an object read from a list."""
    return {"id": event_id, "object": "event", "livemode": bool(obj.get("livemode")), "data": {"object": obj}}
