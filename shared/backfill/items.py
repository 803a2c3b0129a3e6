"""The backfill's own items in the revenue table (beside the project's revenue, keys prefixed alike)."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute

from ..revenue.items import RevenueItem


def slices_pk(project: str) -> str:
    return f"P#{project}#BACKFILL"


def slice_sk(run: int, phase: str, index: int) -> str:
    return f"R#{run:06d}#{phase}#{index:03d}"


class SliceItem(RevenueItem, discriminator="backfill_slice"):
    """Where one slice of one run stands: the cursor of its next page (None: the first) or done.
    Every page moves it conditionally on the cursor it started from, so a page read twice (a
    redelivered message, two messages of one slice) is counted and continued once."""

    run = NumberAttribute()
    phase = UnicodeAttribute()
    index = NumberAttribute()
    gte = NumberAttribute()
    lt = NumberAttribute(null=True)
    cursor = UnicodeAttribute(null=True)
    done = BooleanAttribute(default=False)
    pages = NumberAttribute(default=0)
    objects = NumberAttribute(default=0)
    children = ListAttribute[Any](null=True)  # [index, gte, lt, depth] of the slices its first page split off
    children_queued = BooleanAttribute(null=True)  # their messages sent (else a later invocation sends them)


def rate_pk(project: str) -> str:
    return f"P#{project}#RATE"


class RateWindowItem(RevenueItem, discriminator="rate_window"):
    """Stripe requests the project's backfill made in one window of the rate budget (sk `W#<start>`)."""

    requests = NumberAttribute(default=0)
    expires_at = TTLAttribute()
