"""What a sweep reads: ranges of Stripe `created` from the project's high-water mark to now (pure).

The mark is where the last completed window ended. A sweep starts OVERLAP_SECONDS before it, so an
object created while the previous sweep was paging (a list read newest first does not show what is
created behind its cursor) or stamped by a Stripe clock a little behind ours is read again;
reading twice books nothing twice. A long gap (a first sweep, an outage) is cut into windows of
WINDOW_SECONDS, each raising the mark when done, so a sweep cut short keeps what it did.
"""

from __future__ import annotations

from dataclasses import dataclass

OVERLAP_SECONDS = 600
WINDOW_SECONDS = 86_400  # a day of a large shop's charges is a few hundred pages: one invocation
# Before its first sweep an integration relied on its backfill (history up to the connection) and
# webhooks, which Stripe retries for up to 3 days: the first sweep looks back at most this far.
FIRST_LOOKBACK_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Window:
    gte: int
    lt: int | None  # None: up to whatever Stripe's clock says now is

    def reached(self, started: int) -> int:
        """The high-water mark once this window is read (`started`: when the sweep began)."""
        return self.lt if self.lt is not None else started


def plan(mark: int | None, connected_at: int, now: int) -> list[Window]:
    """The windows from the mark (None: never swept) to now, oldest first, the newest open-ended."""
    start = max(connected_at, now - FIRST_LOOKBACK_SECONDS) if mark is None else mark
    start -= OVERLAP_SECONDS
    windows = []
    while now - start > WINDOW_SECONDS:
        windows.append(Window(start, start + WINDOW_SECONDS))
        start += WINDOW_SECONDS
    windows.append(Window(start, None))
    return windows
