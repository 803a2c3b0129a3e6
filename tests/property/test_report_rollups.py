"""The revenue report from rollups equals the report from the ledger alone (issue 11).

Each example is a small world (tests/property/world.py) whose charges are spread over a few UTC days
of four months, on both sides of month ends (some at midnight, some a second before it), and whose
visitors have acquisition sources (one may change with the visitor's second PUT; some contain `|`,
one is blank), applied to emptied tables through the real engine in an order hypothesis draws, with
redeliveries. Part way, the windows are reported once (so the report caches months,
shared.reports.cache, which what follows makes stale). Then, for random windows (bounds at
midnights, inside days, on a charge's second and next to it, before the first charge and after the
last, open on either side, empty), the rollup-based report (whole days from the rollups, partial
days from the ByCreated index) must equal the report from every ledger entry of the window, and both
must equal the report summed here from the scanned ledger, written out again.

40 examples by default (~20 s); PROPERTY_EXAMPLES=500 searches deeper.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from local.iam.identity import acting_as
from shared.reports.revenue import Window
from shared.reports.service import revenue_report, revenue_report_from_ledger
from shared.revenue import engine, keys
from shared.visitors.models import Acquisition, VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import revenue_checks
from tests.revenue_checks import assert_invariant, assert_sources_current

from .harness import Applier, Replay, Stack
from .world import PROJECT, T0, Input, World, stream, worlds

DAY = 86_400
# The days charges fall on, from T0 (2026-01-01): Nov 30, Dec 31, Jan 1 and 2, Jan 31, Feb 1, Mar 1.
DAYS = (-32, -1, 0, 1, 30, 31, 59)
SOURCES = (None, "google", "bing", "news|letter", " ")  # `|` inside a source; a blank one is "(none)"


@dataclass
class SourcedApplier(Applier):
    """The harness's applier whose visitor PUTs also send acquisition.source: `first` with the
    visitor's first PUT, `second` with its second (an anonymous visitor's identifying PUT)."""

    first: dict[str, str | None] | None = None
    second: dict[str, str | None] | None = None

    def _visitor(self, item: Input) -> str:
        assert item.visitor is not None
        spec = item.visitor
        sources = (self.second if spec.anonymous_first and item.identify else self.first) or {}
        moment = datetime.fromtimestamp(spec.identified_at if item.identify else spec.identified_at - 3600, UTC)
        fields: dict[str, Any] = {"acquisition": Acquisition(source=sources.get(spec.id), medium="cpc")}
        if item.identify and spec.email:
            fields["email"] = spec.email
        changes = VisitorChanges(**fields)
        saved = VisitorService(DynamoVisitorStore.default(), clock=lambda: moment).save(self.project, spec.id, changes)
        result = "visitor unchanged"
        if saved.evidence_changed:
            result = engine.on_visitor_saved(
                self.project, spec.id, saved.created, saved.emails_moved, self.fetch_customer
            ).result
        if saved.visitor.pending is not None and saved.visitor.pending.source:  # as after_visitor_saved
            engine.on_source_changed(self.project, spec.id)
        return result


@st.composite
def spread(draw: st.DrawFn, world: World) -> World:
    """The world's charges moved to seconds of DAYS days, edges of days likely."""
    seconds = st.sampled_from((0, 1, 3_600, 43_200, DAY - 1)) | st.integers(0, DAY - 1)
    charges = tuple(replace(c, created=T0 + draw(st.sampled_from(DAYS)) * DAY + draw(seconds)) for c in world.charges)
    return replace(world, charges=charges)


@st.composite
def windows(draw: st.DrawFn, world: World) -> list[Window]:
    """All time, then random windows over interesting seconds (and some empty ones)."""
    created = [c.created for c in world.charges]
    points = [
        *(
            T0 + (d + e) * DAY for d in DAYS for e in (-1, 0, 1, 2)
        ),  # midnights, before the first charge and after the last
        *(t + delta for t in created for delta in (-1, 0, 1)),  # on a charge's second and next to it
        T0 - 40 * DAY + 17,
        T0 + 70 * DAY + 17,
    ]
    bound = st.none() | st.sampled_from(points) | st.integers(T0 - 33 * DAY, T0 + 60 * DAY)
    found = [Window()]
    for _ in range(draw(st.integers(4, 10))):
        found.append(Window(draw(bound), draw(bound)))  # end <= start: empty
    return found


@dataclass(frozen=True)
class Case:
    world: World
    order: list[Input]
    first: dict[str, str | None]
    second: dict[str, str | None]
    windows: list[Window]
    reported_after: int  # inputs applied before the windows are reported a first time


@st.composite
def cases(draw: st.DrawFn) -> Case:
    world = draw(spread(draw(worlds())))
    canonical = stream(world)
    again = draw(st.lists(st.sampled_from(canonical), max_size=3))
    order = draw(st.permutations([*canonical, *again]))
    ids = [v.id for v in world.visitors]
    first = {v: draw(st.sampled_from(SOURCES)) for v in ids}
    second = {v: draw(st.sampled_from(SOURCES)) if draw(st.booleans()) else first[v] for v in ids}
    return Case(world, order, first, second, draw(windows(world)), draw(st.integers(0, len(order))))


def report_from_scan(items: list[dict[str, Any]], window: Window) -> dict[str, Any]:
    """api.md's report of the window, summed from the scanned ledger entries (not through shared.reports)."""
    totals: Counter[str] = Counter()
    revenue: dict[str, Counter[str]] = defaultdict(Counter)
    payments: Counter[str] = Counter()
    owners: dict[str, set[str]] = defaultdict(set)
    tiers: dict[str, Counter[str]] = {t: Counter() for t in ("1", "2", "3")}
    unattributed: Counter[str] = Counter()
    unattributed_payments = 0
    for item in items:
        if item["sk"] != keys.LEDGER or item["project_id"] != PROJECT or not window.contains(int(item["created"])):
            continue
        net, currency = int(item["amount"]) - int(item["refunded"]), item["currency"]
        totals[currency] += net
        if item.get("visitor_id") is None:
            unattributed[currency] += net
            unattributed_payments += 1
            continue
        source = item.get("source")
        name = source if source and source.strip() else "(none)"
        revenue[name][currency] += net
        payments[name] += 1
        owners[name].add(item["visitor_id"])
        tiers[str(int(item["tier"]))][currency] += net

    def nonzero(amounts: Counter[str]) -> dict[str, int]:
        return {c: a for c, a in sorted(amounts.items()) if a}

    return {
        "totals": nonzero(totals),
        "by_source": [
            {"source": s, "revenue": nonzero(revenue[s]), "payments": payments[s], "visitors": len(owners[s])}
            for s in sorted(payments)
        ],
        "unattributed": {"revenue": nonzero(unattributed), "payments": unattributed_payments},
        "by_tier": {t: nonzero(amounts) for t, amounts in tiers.items()},
    }


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases())
def test_the_report_from_rollups_equals_the_report_from_the_ledger(stack: Stack, case: Case) -> None:
    note(f"charges: {[(c.id, c.created, c.currency) for c in case.world.charges]}")
    note(f"sources: first {case.first}, second {case.second}")
    note(f"order: {case.order}")
    replay = Replay(case.world, stack, check_each_step=False)
    replay.applier = SourcedApplier(case.world, first=case.first, second=case.second)
    replay.apply_all(case.order[: case.reported_after])
    for window in case.windows:  # caches months that the rest of the inputs change
        with acting_as("ReportsApiFunction"):
            assert revenue_report(PROJECT, window) == revenue_report_from_ledger(PROJECT, window)
    replay.apply_all(case.order[case.reported_after :])
    items = replay.items()
    # every entry counts for its owner's source as the profile has it now (a second PUT changed some)
    with mock.patch.object(revenue_checks, "scan", return_value=items):
        assert_sources_current(stack.env.revenue_table)
        assert_invariant(stack.env.revenue_table)

    for window in case.windows:
        with acting_as("ReportsApiFunction"):
            from_rollups = revenue_report(PROJECT, window)
            from_ledger = revenue_report_from_ledger(PROJECT, window)
        assert from_rollups == from_ledger, f"window {window}"
        assert from_ledger == report_from_scan(items, window), f"window {window}"
    # and the caches those reports wrote are the months' day items (assert_invariant checks them)
    with mock.patch.object(revenue_checks, "scan", return_value=replay.items()):
        assert_invariant(stack.env.revenue_table)
