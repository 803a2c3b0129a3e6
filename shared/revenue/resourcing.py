"""A visitor's acquisition source changed (a PUT): its ledger entries record the new one, and their
rollup contributions move from the old source to the new, in transactions that keep the rollups
equal to the ledger (shared.revenue.rollups). Bounded by the visitor's own charges, found through
its timeline (every charge it owns has its Charge Succeeded event there).

Each transaction checks the entries' versions and that the profile still has the source written:
a charge moved away meanwhile is skipped on the next attempt, and a second change of the source
leaves the rest to its own PUT. Bookings meanwhile check the source they roll up under, so an
entry booked after the PUT already has the new one.
"""

from __future__ import annotations

from dataclasses import replace

from . import keys, sourcing, store, writer
from .intents import Decision, Resource, ScopeWrites
from .items import LedgerItem, ProfileItem, TimelineItem
from .records import ledger_record


def resource_once(project: str, visitor_id: str) -> int:
    """Bring the visitor's entries to its current source; how many changed. StaleUpdate if one of
    them changed meanwhile (the caller runs it again: shared.revenue.engine.on_source_changed)."""
    profile_key = keys.visitor(project, visitor_id)
    profile = store.at(store.batch_get([profile_key]), profile_key)
    if not isinstance(profile, ProfileItem):
        return 0
    source = sourcing.source_of(profile)
    events = store.query_partition(keys.visitor_pk(project, visitor_id), keys.TIMELINE_PREFIX)
    charges = sorted(
        {e.stripe_object_id for e in events if isinstance(e, TimelineItem) and e.type == "Charge Succeeded"} - {None}
    )
    entries = [
        ledger_record(item)
        for item in store.batch_get([keys.ledger(project, str(c)) for c in charges]).values()
        if isinstance(item, LedgerItem)
    ]
    stale = [e for e in entries if e.visitor_id == visitor_id and e.source != source]
    if stale:
        units = [(Resource(e, replace(e, source=source, version=e.version + 1)),) for e in stale]
        writer.commit_each(project, Decision(scopes=[ScopeWrites(root=None, units=list(units))]), lambda _: None)
    return len(stale)
