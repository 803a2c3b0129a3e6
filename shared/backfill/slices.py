"""A backfill run cut into slices: for each phase, disjoint ranges of Stripe `created`.

Recent history is denser than old (a shop grows, and most accounts are younger than Stripe), so
slices are narrower near now: boundary i of n lies at now - span * (i / n)^2. A slice is paged
newest first by cursor, so slices run side by side and a run's wall time is bound by the rate
budget rather than by Stripe's latency per page.
"""

from __future__ import annotations

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


class RemoveMessage(BaseModel):
    """The removal of a project's imported data (re-sync, disconnect without keeping data): steps
    in a row while time allows, then itself again; a re-sync's backfill starts when it is done."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["remove"] = "remove"
    project_id: str
    run: int  # the integration's data_removal.run this message works for
    then_backfill: int | None = None  # slices per phase of the run to start once the data is gone


AnyMessage = StartMessage | SliceMessage | RemoveMessage
Message = Annotated[AnyMessage, Field(discriminator="kind")]
MESSAGE: TypeAdapter[AnyMessage] = TypeAdapter(Message)


# A slice whose first page shows it dense hands the rest of its range to children, so that a young
# account's history (all in the newest few of the planned slices) is still read by many slices side
# by side. Child j of slice i is CHILD_BASE + i * MAX_CHILDREN + j; children never split again.
CHILD_BASE = 100
MAX_CHILDREN = 8
PAGES_PER_CHILD = 2


def split(message: SliceMessage, newest: int, oldest: int) -> list[SliceMessage]:
    """Children for [gte, oldest) of a slice whose first page (100 objects) spans [oldest, newest]:
    about PAGES_PER_CHILD pages each at that density, at most MAX_CHILDREN; none if it is not worth it.
    The slice itself keeps [oldest, its end), from where its first page ended."""
    if message.index >= CHILD_BASE or oldest <= message.gte:
        return []
    pages_left = (oldest - message.gte) / max(1, newest - oldest)
    count = min(MAX_CHILDREN, int(pages_left // PAGES_PER_CHILD), oldest - message.gte)
    if count < 2:
        return []
    bounds = [message.gte + (oldest - message.gte) * j // count for j in range(count + 1)]
    first = CHILD_BASE + message.index * MAX_CHILDREN
    return [
        message.model_copy(update={"index": first + j, "gte": bounds[j], "lt": bounds[j + 1], "cursor": None})
        for j in range(count)
    ]


def slice_count(per_phase: int) -> int:
    return per_phase * len(PHASES)


def plan(project_id: str, run: int, now: int, per_phase: int) -> list[SliceMessage]:
    """The run's slices: `per_phase` of [HISTORY_STARTS, now] for each phase (the newest open-ended)."""
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
