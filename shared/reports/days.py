"""The whole UTC days of a report's window, month by month: from the report's cache of a month
(shared.reports.cache) for the days whose version is the one they were read at, else from the
days' items, which then go into the month's cache.

A month's cache is built from all of the month's days, so that any later window that touches the
month can use it; a window's partial month pays for reading its whole month once. Live bookings
change today's items: a report reads today's again (one Query of SHARDS items), not the month's;
closed months rarely change (a late refund, a move, a re-sourced visitor). The versions are read
before the day items: a booking in between changes the version, so what was read is never taken
for that booking's day.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from . import cache, store
from .cache import DaySummary


def whole_days(project_id: str, first_day: str | None, last_day: str | None) -> Iterator[DaySummary]:
    """Every day in [first_day, last_day] (None: unbounded) that has rollups, summarised."""
    first_month = first_day[:7] if first_day else None
    last_month = last_day[:7] if last_day else None
    versions = store.month_versions(project_id, first_month, last_month)
    if not versions:
        return
    cached = store.cached_months(project_id, first_month, last_month)
    uncached = []
    for month, version in sorted(versions.items()):
        found = cached.get(month)
        days = cache.decode(found[1]) if found is not None else None
        if found is None or days is None:
            uncached.append(month)
            continue
        if found[0] != version.basis:  # some days changed: read those again
            days = _refreshed(project_id, month, version, days)
        yield from _inside(days, first_day, last_day)
    for run in _runs(uncached):
        # Items come in key order, a month after the other: each month is cached once its last item
        # has passed, so a report cut short (a timeout) leaves the months it read for the next one.
        items = store.rollup_items(project_id, f"{run[0]}-01", f"{run[-1]}-31")
        for month, of_month in itertools.groupby(items, key=lambda item: str(item["day"])[:7]):
            yield from _cached(project_id, month, versions[month], list(of_month), first_day, last_day)
            run.remove(month)
        for month in run:  # versions without any day item left (a removal emptied them)
            yield from _cached(project_id, month, versions[month], [], first_day, last_day)


def _cached(
    project_id: str,
    month: str,
    version: cache.MonthVersion,
    items: list[dict[str, object]],
    first_day: str | None,
    last_day: str | None,
) -> Iterator[DaySummary]:
    """The month's days summarised from all its items, cached, and those inside the window."""
    days = cache.summarise(items, version)
    store.save_cache(project_id, month, version.basis, cache.encode(days))
    yield from _inside(days, first_day, last_day)


def _refreshed(
    project_id: str, month: str, version: cache.MonthVersion, days: dict[str, DaySummary]
) -> dict[str, DaySummary]:
    """A month's cached days, the stale ones (a version that is not the one they were read at, or
    no longer a day of the month's version) read again in one Query; its cache written anew."""
    stale = sorted(
        day for day in set(version.days) | set(days) if day not in days or version.days.get(day) != days[day].basis
    )
    current = {day: summary for day, summary in days.items() if day not in stale}
    if stale:
        bases = cache.MonthVersion(version.basis, {day: version.days[day] for day in stale if day in version.days})
        items = [item for item in store.rollup_items(project_id, min(stale), max(stale)) if item["day"] in bases.days]
        current.update(cache.summarise(items, bases))
    store.save_cache(project_id, month, version.basis, cache.encode(current))
    return current


def _inside(days: dict[str, DaySummary], first_day: str | None, last_day: str | None) -> Iterator[DaySummary]:
    for day, summary in days.items():
        if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
            yield summary


def _runs(months: list[str]) -> list[list[str]]:
    """Sorted months grouped into runs of consecutive months (one Query of day items each)."""
    runs: list[list[str]] = []
    for month in months:
        if runs and _next(runs[-1][-1]) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    return runs


def _next(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"
