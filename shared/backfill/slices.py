"""A backfill run cut into slices: for each phase, disjoint ranges of Stripe `created`.

Recent history is denser than old (a shop grows, and most accounts are younger than Stripe), so
slices are narrower near now: boundary i of n lies at now - span * (i / n)^2. A slice is paged
newest first by cursor, so slices run side by side and a run's wall time is bound by the rate
budget rather than by Stripe's latency per page.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Phase = Literal["checkout_sessions", "charges", "subscriptions"]
PHASES: tuple[Phase, ...] = ("checkout_sessions", "charges", "subscriptions")
HISTORY_STARTS = 1_293_840_000  # 2011-01-01: nothing in Stripe is older


class StartMessage(BaseModel):
    """The backfill queue's first message of a run (what connect and re-sync send): the backfill
    function cuts the run into slices and queues them, so the API request sends one message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["start"] = "start"
    project_id: str
    run: int
    per_phase: int


class SliceMessage(BaseModel):
    """The backfill queue's message: one slice of one run (the slice's item holds its cursor)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["slice"] = "slice"
    project_id: str
    run: int
    phase: Phase
    index: int
    gte: int
    lt: int | None  # None: the newest slice, open-ended (whatever Stripe's clock says "now" is)
    slices: int  # planned for the run, all phases (children of dense slices add to the integration's count)
    cursor: str | None = None  # where the slice stood when the message was sent (for people)
    depth: int = 0  # splits above it: each level's children are longer (fewer part pages a page)
    backoffs: int = 0  # sent again after DynamoDB refused it, in a row (shared.backfill.runner)


class RemoveMessage(BaseModel):
    """The removal of a project's imported data (re-sync, disconnect without keeping data): steps
    in a row while time allows, then itself again; a re-sync's backfill starts when it is done."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["remove"] = "remove"
    project_id: str
    run: int  # the integration's data_removal.run this message works for
    then_backfill: int | None = None  # slices per phase of the run to start once the data is gone


class RebuildMessage(BaseModel):
    """A rebuild of a project's rollups from its ledger (shared.backfill.rebuild_job): days checked in
    a row while time allows, then itself again; its report item holds where it stands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["rebuild"] = "rebuild"
    project_id: str
    run: int  # the rebuild's id (its report item), not a backfill run
    repair: bool = False  # False: a dry run, differences reported only


AnyMessage = StartMessage | SliceMessage | RemoveMessage | RebuildMessage
Message = Annotated[AnyMessage, Field(discriminator="kind")]
MESSAGE: TypeAdapter[AnyMessage] = TypeAdapter(Message)


# Child j of slice i is (i + 1) * FANOUT + j: unique per phase for any depth (planned slices < FANOUT).
FANOUT = 8
PAGES_PER_CHILD = 25  # at the first split; doubled at each level below, to MAX_PAGES_PER_CHILD
MAX_PAGES_PER_CHILD = 400


def split(message: SliceMessage, newest: int, oldest: int, heads: int) -> list[SliceMessage]:
    """Children for [gte, oldest + 1) of a slice whose first page (100 objects) spans [oldest, newest],
    or none if it is not worth it. The slice keeps only (oldest, its end): it books its first page's
    objects newer than `oldest` and is done, the first child reads the second `oldest` whole.

    Up to `heads` children: regular ones of about `pages_per_child` pages at the page's density,
    from `oldest` back, and the oldest one taking the rest of the range (it splits again when its
    own first page shows it dense). Only the oldest children of the level where history begins can
    be empty, so at most `heads` requests a phase find nothing."""
    if heads < 2 or newest <= oldest or oldest <= message.gte:
        return []
    per_page = newest - oldest
    end = oldest + 1
    pages = min(MAX_PAGES_PER_CHILD, PAGES_PER_CHILD << min(message.depth, 8))
    expected = (end - message.gte) / per_page
    if expected < 2 * pages:
        return []
    width = pages * per_page
    count = min(heads, FANOUT)
    if expected <= count * pages:  # all of it at this density: children of equal length
        count = math.ceil(expected / pages)
        bounds = [end - (end - message.gte) * j // count for j in range(count + 1)]
    else:  # count - 1 regular children, then the rest
        bounds = [end - width * j for j in range(count)] + [message.gte]
    first = (message.index + 1) * FANOUT
    return [
        message.model_copy(
            update={
                "index": first + j,
                "gte": bounds[j + 1],
                "lt": bounds[j],
                "cursor": None,
                "depth": message.depth + 1,
            }
        )
        for j in range(count)
    ]


def heads(rate: float, read_seconds: float, most: int) -> int:
    """Slices of a phase that keep the rate budget busy: one per `rate * read_seconds` requests in
    flight, and one more for the time a page takes to book; `most` when unpaced (rate 0)."""
    if rate <= 0:
        return most
    return max(1, min(most, math.ceil(rate * read_seconds) + 1))


def slice_count(per_phase: int) -> int:
    return per_phase * len(PHASES)


def plan(project_id: str, run: int, now: int, per_phase: int) -> list[SliceMessage]:
    """The run's slices: `per_phase` (at most FANOUT) of [HISTORY_STARTS, now] for each phase, the
    newest open-ended; narrower near now (boundary i of n at now - span * (i / n)^2), where a young
    account's history is. One a phase by default: splits follow the density its first page shows."""
    end = now + 1
    span = end - HISTORY_STARTS
    bounds = [end - round(span * (i / per_phase) ** 2) for i in range(per_phase + 1)]
    bounds[-1] = HISTORY_STARTS
    total = slice_count(per_phase)
    return [
        SliceMessage(
            project_id=project_id,
            run=run,
            phase=phase,
            index=i,
            gte=bounds[i + 1],
            lt=bounds[i] if i else None,
            slices=total,
        )
        for phase in PHASES
        for i in range(per_phase)
    ]
