"""One page of a slice: read from Stripe's list endpoint as raw JSON, booked by the engine.

stripe-python builds a StripeObject per item (~100 ms for a page of 100 expanded charges); the raw
response is parsed once instead. Sessions and subscriptions go through the engine's event entry
points with an event id of the backfill's own (`backfill:...`): a page read again is a duplicate.
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


def read(client: stripe.StripeClient, message: SliceMessage, cursor: str | None) -> Page:
    """The page of the slice after `cursor` (newest first). Stripe's errors propagate."""
    created = {"gte": message.gte} | ({"lt": message.lt} if message.lt is not None else {})
    params: dict[str, Any] = {"limit": PAGE_SIZE, "created": created}
    if cursor:
        params["starting_after"] = cursor
    if message.phase == "charges":
        params["expand"] = ["data.customer"]
    elif message.phase == "checkout_sessions":
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
    for obj in page.objects:
        if message.phase == "checkout_sessions":
            event = _event(f"backfill:{obj['id']}", "checkout.session.completed", obj, int(obj["created"]))
            engine.on_session(project, event, lookups.customer, lookups.invoice_payment_intents)
        elif obj.get("status") != "canceled":  # a list without a status filter leaves out canceled ones
            # dated when it was created, so every later state (a webhook's) is newer, and its
            # timeline event is the one customer.subscription.created places
            event = _event(f"backfill:{obj['id']}", "customer.subscription.created", obj, int(obj["created"]))
            engine.on_subscription(project, event, lookups.customer)
    return 0


def _event(event_id: str, kind: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": created,
        "livemode": bool(obj.get("livemode")),
        "data": {"object": obj},
    }
