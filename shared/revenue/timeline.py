"""The timeline events a ledger entry or a context event shows (api.md Event), as plain data."""

from __future__ import annotations

from dataclasses import dataclass

from .records import LedgerRecord


@dataclass(frozen=True)
class TimelineEntry:
    event_id: str  # unique per visitor timeline: the item's sort key ends with it
    at: int
    type: str
    amount: int | None
    currency: str | None
    revenue: int  # what the event adds to lifetime revenue: 0 for context events, negative for refunds
    stripe_object_id: str | None
    tier: int | None


def charge_events(record: LedgerRecord) -> list[TimelineEntry]:
    """A charge's timeline: Charge Succeeded, then one Charge Refunded per booked refund delta."""
    f = record.facts
    events = [
        TimelineEntry(
            f"{f.id}:succeeded",
            f.created,
            "Charge Succeeded",
            record.amount,
            f.currency,
            record.amount,
            f.id,
            record.tier,
        )
    ]
    previous = 0
    for cumulative, at in record.refund_steps:
        events.append(refund_event(record, cumulative, at, cumulative - previous))
        previous = cumulative
    return events


def refund_event(record: LedgerRecord, cumulative: int, at: int, delta: int) -> TimelineEntry:
    f = record.facts
    return TimelineEntry(
        f"{f.id}:refunded:{cumulative}", at, "Charge Refunded", delta, f.currency, -delta, f.id, record.tier
    )
