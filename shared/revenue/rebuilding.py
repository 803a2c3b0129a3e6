"""Checking, and repairing, a project's rollups against its ledger a day at a time (issue 11), while
webhooks keep booking: each booking writes a ledger entry and ADDs its contribution's change to the
entry's rollup item, bumping the item's `writes`, in one transaction.

A day is checked in attempts. An attempt reads the day's rollup items (strongly consistent: their
counts and `writes`) at t0, then the day's ledger entries from the GSI ByCreated (eventually
consistent) and sums what each item must hold. Items that agree are done. For an item that
differs, the difference may be a bug, or a booking the index does not show yet (its rollup change is
read, its entry is not, or is shown as it was). So the attempt waits until t0 + SETTLE_SECONDS (more
than the index's propagation delay: every booking committed before t0 is then in it), reads the
day's ledger again and only goes on with the items whose expected counts did not change between
the two reads (otherwise a booking is under way: read the day again). Such an item's difference is
then measured against the ledger as of t0, and:

- repairing, the difference is ADDed to the item, conditioned on its `writes` being what was read
  at t0 (and `writes` bumped): a booking into the item since t0 fails the condition and the day is
  read again; nothing is ever overwritten, so a booking that lands after the repair adds to
  repaired counts;
- in a dry run, the item is read again: the difference is reported only if its `writes` did not
  move since t0, so a dry run reports what a repair would change.

An item that keeps changing for ATTEMPTS attempts (a day busy with bookings) is reported as not
settled and left as it is; running the rebuild again checks it again.

Then each shard with an item must have the day's writes counted in its month's version item (the
report's caches rely on it, shared.revenue.rollups.month_versions); a repair bumps a missing one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import StaleUpdate
from . import rebuild, rebuild_store, rollups
from .rebuild import Difference

SETTLE_SECONDS = 2.0  # above the GSI's propagation delay (typically well under a second)
ATTEMPTS = 6


@dataclass
class DayCheck:
    """What checking one day found: the differences confirmed (and repaired, when repairing)."""

    day: str
    differences: list[Difference] = field(default_factory=list)
    items_differing: int = 0
    items_repaired: int = 0
    unsettled: list[int] = field(default_factory=list)  # shards still changing after every attempt


def next_day(project: str, after: str | None) -> str | None:
    """The first day after `after` holding a rollup item or a ledger entry (None: none left)."""
    return rebuild_store.next_day(project, after)


def check_day(
    project: str,
    day: str,
    *,
    repair: bool,
    settle_seconds: float | None = None,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> DayCheck:
    checked = _check_items(project, day, repair, settle_seconds, attempts, sleep)
    _check_versions(project, day, repair, checked)
    return checked


def _check_versions(project: str, day: str, repair: bool, checked: DayCheck) -> None:
    """Each shard with an item must count the day's writes in its month's version item (what the
    report's caches are checked against); a missing count is a difference (`w|<DD>`: stored 0,
    expected at least 1), and a repair bumps it. Bumping is always safe: a version that moves only
    makes the report read the day again."""
    missing = rebuild_store.unversioned_shards(project, day)
    if not missing:
        return
    if repair:
        rebuild_store.bump_versions(project, day, missing)
        checked.items_repaired += len(missing)
    checked.differences += [Difference(day, shard, rollups.day_version(day), 0, 1) for shard in missing]
    checked.items_differing += len(missing)


def _check_items(
    project: str,
    day: str,
    repair: bool,
    settle_seconds: float | None,
    attempts: int,
    sleep: Callable[[float], None],
) -> DayCheck:
    """The day's rollup items against its ledger (the module's docstring)."""
    settle = SETTLE_SECONDS if settle_seconds is None else settle_seconds
    checked = DayCheck(day)
    done: set[int] = set()  # shards found equal to the ledger, or whose difference was confirmed
    moving: set[int] = set()
    for _ in range(attempts):
        items = rebuild_store.day_items(project, day)
        read_at = time.monotonic()
        first = rebuild.expected(rebuild_store.ledger_of_day(project, day))
        shards = (set(items) | set(first)) - done
        differing = {s for s in shards if rebuild.change(rebuild_store.item_of(items, s).counts, first.get(s, {}))}
        done |= shards - differing
        if not differing:
            return checked
        sleep(max(0.0, read_at + settle - time.monotonic()))
        second = rebuild.expected(rebuild_store.ledger_of_day(project, day))
        moving = {s for s in differing if second.get(s, {}) != first.get(s, {})}
        if not repair:
            again = rebuild_store.day_items(project, day)
            moving |= {s for s in differing if _moved(rebuild_store.item_of(items, s), again, s)}
        for shard in sorted(differing - moving):
            stored = rebuild_store.item_of(items, shard)
            wanted = second.get(shard, {})
            if repair:
                try:
                    rebuild_store.repair(project, day, shard, rebuild.change(stored.counts, wanted), stored)
                except StaleUpdate:  # a booking into the item since it was read: read the day again
                    moving.add(shard)
                    continue
                checked.items_repaired += 1
            checked.differences += rebuild.differences(day, shard, stored.counts, wanted)
            checked.items_differing += 1
            done.add(shard)
        if not moving:
            return checked
    checked.unsettled = sorted(moving)
    return checked


def _moved(read: rebuild.StoredItem, again: dict[int, rebuild.StoredItem], shard: int) -> bool:
    now = rebuild_store.item_of(again, shard)
    return (now.exists, now.writes) != (read.exists, read.writes)
