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


def rebuilds_pk(project: str) -> str:
    return f"P#{project}#REBUILD"


def rebuild_sk(job: int) -> str:
    return f"J#{job:013d}"


class RebuildItem(RevenueItem, discriminator="rollup_rebuild"):
    """A rollup rebuild (shared.backfill.rebuild_job) and its report: the last day it checked
    (`cursor`, moved conditionally, so a day is recorded once), what it found and what it repaired."""

    job = NumberAttribute()
    repair = BooleanAttribute(default=False)
    status = UnicodeAttribute(default="running")  # running, completed, failed
    cursor = UnicodeAttribute(null=True)  # the last day checked (None: none yet)
    days_checked = NumberAttribute(default=0)
    items_differing = NumberAttribute(default=0)
    items_repaired = NumberAttribute(default=0)
    differences_found = NumberAttribute(default=0)
    differences = ListAttribute[Any](default=list)  # {day, shard, attribute, stored, expected}, the first ones
    unsettled = ListAttribute[Any](default=list)  # "<day>#<shard>" of items that kept changing
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
