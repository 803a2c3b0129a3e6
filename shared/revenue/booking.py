"""Booking a charge (domain rules 1, 2, 4): decide its owner, then write ledger and totals at once.

A webhook is a batch of one; reads are batched (one BatchGetItem for event mark, integration,
ledger entry and customer; one more for email heads only when the customer is not linked) and the
writes are one transaction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import NotFound, ServiceUnavailable
from ..observability import logger, metrics
from . import store
from .attribution import attribute, candidate_emails
from .errors import AlreadyBooked, DuplicateEvent, StaleUpdate
from .models import ChargeFacts, CustomerRecord, LedgerEntry

MAX_ATTEMPTS = 5
CustomerEmailFetcher = Callable[[str], str | None]


@dataclass(frozen=True)
class Outcome:
    result: str  # booked | duplicate | already_booked | not_revenue | ignored
    visitor_id: str | None = None
    tier: int | None = None


def book_charge_event(project: str, event: dict[str, Any], fetch_customer_email: CustomerEmailFetcher) -> Outcome:
    """Book the charge of a charge.succeeded event once, whatever the deliveries and retries."""
    charge = ChargeFacts.from_stripe(event["data"]["object"])
    for attempt in range(MAX_ATTEMPTS):
        try:
            return _attempt(project, event, charge, fetch_customer_email)
        except StaleUpdate as exc:
            logger.info("booking raced, retrying", charge_id=charge.id, conflict=str(exc), attempt=attempt)
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # jitter, not security
    raise ServiceUnavailable("The booking kept conflicting with concurrent writes; Stripe will retry.")


def _attempt(project: str, event: dict[str, Any], charge: ChargeFacts, fetch_email: CustomerEmailFetcher) -> Outcome:
    customer_ids = [charge.customer_id] if charge.customer_id else []
    snapshot = store.load(
        project, event_ids=[event["id"]], charge_ids=[charge.id], customer_ids=customer_ids, with_integration=True
    )
    integration = snapshot.integration
    if integration is None or integration.get("status") != "connected":
        raise NotFound("No Stripe integration is connected for this project.")
    if bool(event.get("livemode")) != (integration.get("mode") == "live"):
        logger.info("event ignored: livemode differs from the key's mode", livemode=event.get("livemode"))
        return Outcome("ignored")
    if event["id"] in snapshot.seen_events:
        metrics.add_metric(name="DuplicateEvents", unit="Count", value=1)
        return Outcome("duplicate")
    if charge.id in snapshot.ledger:
        return Outcome("already_booked")
    if not charge.books_revenue:
        return Outcome("not_revenue")  # uncaptured or pending: nothing until it is captured

    customer = snapshot.customers.get(charge.customer_id or "")
    fetched_email: str | None = None
    if charge.customer_id and (customer is None or (customer.visitor_id is None and customer.email is None)):
        fetched_email = fetch_email(charge.customer_id) or ""
        customer = replace(customer or CustomerRecord(charge.customer_id), email=fetched_email)
    heads: dict[str, str] = {}
    emails = candidate_emails(charge, customer)
    if not (customer and customer.visitor_id) and emails:
        heads = store.load(project, email_keys=emails).heads
    owner = attribute(charge, customer, heads)

    entry = LedgerEntry(
        charge_id=charge.id,
        created=charge.created,
        currency=charge.currency,
        amount=charge.amount_captured,
        refunded=charge.refunded,
        visitor_id=owner.visitor_id,
        tier=owner.tier,
        customer_id=charge.customer_id,
        emails=tuple(emails),
    )
    tx = store.Transaction(project)
    tx.put_ledger(entry)
    if owner.visitor_id is not None:
        tx.add_to_visitor(owner.visitor_id, charge.currency, entry.net, charge.customer_id)
        _timeline(tx, owner.visitor_id, entry)
        if owner.tier == 2 and charge.customer_id:
            tx.link_customer(charge.customer_id, owner.visitor_id, 2, fetched_email)
    else:
        tx.add_to_unattributed(charge.currency, entry.net)
        if fetched_email is not None and charge.customer_id:
            tx.remember_customer_email(charge.customer_id, fetched_email)
    tx.mark_event(event["id"], int(time.time()))
    try:
        tx.commit()
    except DuplicateEvent:
        return Outcome("duplicate")
    except AlreadyBooked:
        return Outcome("already_booked")
    metrics.add_metric(name="ChargesBooked", unit="Count", value=1)
    metrics.add_metric(name=f"AttributionTier{owner.tier or 0}", unit="Count", value=1)
    logger.info("charge booked", charge_id=charge.id, tier=owner.tier, attributed=owner.attributed)
    return Outcome("booked", owner.visitor_id, owner.tier)


def _timeline(tx: store.Transaction, visitor_id: str, entry: LedgerEntry) -> None:
    tx.put_timeline(
        visitor_id,
        event_key=f"{entry.charge_id}:succeeded",
        event_type="Charge Succeeded",
        occurred_at=entry.created,
        amount=entry.amount,
        currency=entry.currency,
        revenue=entry.amount,
        stripe_object_id=entry.charge_id,
        tier=entry.tier,
    )
    if entry.refunded:  # found already refunded: one event for the whole refunded amount
        tx.put_timeline(
            visitor_id,
            event_key=f"{entry.charge_id}:refunded:{entry.refunded}",
            event_type="Charge Refunded",
            occurred_at=entry.created,
            amount=entry.refunded,
            currency=entry.currency,
            revenue=-entry.refunded,
            stripe_object_id=entry.charge_id,
            tier=entry.tier,
        )
