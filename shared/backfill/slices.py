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
    slices: int  # of the run, all phases: the run is complete when this many are done
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
