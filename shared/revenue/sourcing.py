"""The acquisition source of the visitors a decision gives money to, for the rollups.

Every ledger entry a decision writes with an owner records that owner's `acquisition.source` as it
is now (read with the decision, or here in one batch); the writer rolls the entry up under it and
checks, in the same transaction, that the profile still has it (a PUT changing it meanwhile makes
the decision run again). A refund re-sources its entry too, so an entry whose owner's source
changed is brought up to date by whichever write comes first (shared.revenue.resourcing, or this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from . import keys, store
from .intents import BookCharge, BookRefund, Decision, Intent, MoveCharge, ScopeWrites
from .items import ProfileItem
from .records import LedgerRecord, Profile


def attach(
    project: str, decision: Decision, known: dict[str, Profile] | None = None, reads: store.Reads | None = None
) -> Decision:
    """The decision with the current source on every entry it gives an owner (profiles not already
    `known` read in one batch, through `reads` when the attempt has one)."""
    owners = {r.visitor_id for r in _gaining(decision) if r.visitor_id}
    if not owners:
        return decision
    sources = {v: p.source for v, p in (known or {}).items() if v in owners}
    missing = sorted(owners - set(sources))
    if missing:
        found = (reads or store.Reads()).get([keys.visitor(project, v) for v in missing])
        sources |= {i.visitor_id: source_of(i) for i in found.values() if isinstance(i, ProfileItem)}

    def sourced(record: LedgerRecord) -> LedgerRecord:
        source = sources.get(record.visitor_id) if record.visitor_id else None
        return record if record.source == source else replace(record, source=source)

    return _map(decision, sourced)


def source_of(item: ProfileItem) -> str | None:
    acquisition = item.acquisition
    return acquisition.source if acquisition is not None else None


def _gaining(decision: Decision) -> list[LedgerRecord]:
    return [r for intent in _intents(decision) if (r := _after(intent)) is not None]


def _after(intent: Intent) -> LedgerRecord | None:
    match intent:
        case BookCharge(record, _):
            return record
        case MoveCharge(_, after) | BookRefund(after=after):
            return after
    return None


def _intents(decision: Decision) -> list[Intent]:
    found = [*decision.first, *decision.last]
    for scope in decision.scopes:
        found += scope.first
        found += [i for unit in scope.units for i in unit]
    return found


def _map(decision: Decision, sourced: Callable[[LedgerRecord], LedgerRecord]) -> Decision:
    def one(intent: Intent) -> Intent:
        match intent:
            case BookCharge(record, join):
                return BookCharge(sourced(record), join)
            case MoveCharge(before, after):
                return MoveCharge(before, sourced(after))
            case BookRefund(before, after, entry):
                return BookRefund(before, sourced(after), entry)
        return intent

    scopes = [
        ScopeWrites(s.root, [one(i) for i in s.first], [tuple(one(i) for i in unit) for unit in s.units])
        for s in decision.scopes
    ]
    return Decision(scopes, [one(i) for i in decision.first], [one(i) for i in decision.last])
