"""Removing a project's Stripe data (domain rule 7: re-sync, disconnect without keeping data), one
bounded step at a time.

A scope (a customer with its charges, context events and subscriptions; a Checkout Session; a
charge without customer) is removed whole, in transactions that keep rule 4: a ledger entry leaves
with its owner's total, its timeline events and its membership in one transaction. A customer too
large for one transaction is removed as a chain, like the writer's: each transaction checks and
bumps the customer item's version (marking it `dirty`), the last deletes it. So a webhook deciding
on the same customer meanwhile fails its version check and decides again on what is left, and what
it books after the removal passed stays whole (the re-sync's backfill then finds it booked).

Scopes are found through the GSI: customers and sessions carry `keys.scope_index`, ledger entries
`keys.ledger_index`. A step removes what the first page of one of them lists, so a step read again
(a redelivered message) starts from what is left, and ends when all three are empty.

Left behind, harmlessly: references (`R#<scope>` under an email or a visitor id, found only through
what named them; a reference to a scope that no longer exists re-decides nothing) and event marks
(TTL): a redelivered event the mark dedups was imported again by the re-sync's backfill.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from .. import budget, dynamo, tables
from ..errors import ServiceUnavailable, StaleUpdate
from ..identity import email_key
from . import keys, rollups
from .items import (
    ChargeMemberItem,
    ContextItem,
    CustomerItem,
    GuestCheckoutItem,
    LedgerItem,
    ProfileBooking,
    ProfileItem,
    RevenueItem,
    RollupItem,
    SessionItem,
    SubscriptionItem,
    UnattributedItem,
)
from .placement import ContextEvent
from .plans import visitor_plan
from .records import LedgerRecord, Profile, ledger_record, plain, profile
from .store import Key, batch_get, pk_sk, query_partition
from .timeline import TimelineEntry, charge_events

SCOPES_PER_STEP = 25
MAX_ITEMS = 100  # DynamoDB's limit per TransactWriteItems


@dataclass
class Removed:
    """What a step removed, and whether nothing is left."""

    charges: int = 0  # ledger entries
    scopes: int = 0
    done: bool = False


def step(project: str) -> Removed:
    """Remove the scopes of one page of the registry (customers and sessions), else of the ledger."""
    removed = Removed()
    scopes = _index_page(f"P#{project}#{keys.SCOPES}", SCOPES_PER_STEP)
    for scope in scopes:
        if scope.startswith("CUS#"):
            _retrying(partial(_remove_customer, project, scope.removeprefix("CUS#"), removed))
        else:
            _retrying(partial(_remove_session, project, scope.removeprefix("CS#"), removed))
    if scopes:
        return removed
    entries = _index_page(keys.ledger_index(project, 0, "")["gsi1pk"], SCOPES_PER_STEP)
    for entry in entries:
        charge_id = entry.split("#", 1)[1]
        _retrying(partial(_remove_charge, project, charge_id, removed))
    if not entries:
        _remove_zero_totals(project)
        removed.done = True
    return removed


def _retrying(attempt: Callable[[], None]) -> None:
    """A removal that met a concurrent decision reads what is left and goes on."""
    for n in range(budget.DECISION_ATTEMPTS):
        try:
            attempt()
            return
        except StaleUpdate:
            time.sleep(random.uniform(0, budget.DECISION_JITTER_SECONDS * 2**n))  # jitter, not security
    raise ServiceUnavailable("Removing the project's data kept conflicting with concurrent writes.")


def _index_page(gsi1pk: str, limit: int) -> list[str]:
    """The first `limit` gsi1sk values under `gsi1pk` (the index is eventually consistent: a scope
    removed a moment ago may be listed again, and is then found gone)."""
    tables.bind()
    connection = LedgerItem._get_connection()
    with dynamo.translate_errors():
        response = connection.query(
            gsi1pk,
            index_name=keys.LEDGER_INDEX,
            limit=limit,
            attributes_to_get=["gsi1sk"],
            select="SPECIFIC_ATTRIBUTES",
        )
    return [item["gsi1sk"]["S"] for item in response.get("Items", [])]


# ---- scopes ------------------------------------------------------------------------------------------


def _remove_customer(project: str, customer_id: str, removed: Removed) -> None:
    items = query_partition(keys.customer_pk(project, customer_id))
    root = next((i for i in items if isinstance(i, CustomerItem)), None)
    members = [i for i in items if not isinstance(i, CustomerItem)]
    charge_ids = [i.charge_id for i in members if isinstance(i, ChargeMemberItem)]
    ledger = _ledger(project, charge_ids)
    subscriptions = [i for i in members if isinstance(i, SubscriptionItem)]
    chain = _Chain(project, root)
    chain.profiles = _profiles(project, {i.placed_visitor for i in subscriptions if i.placed_visitor})
    for item in members:
        if isinstance(item, ChargeMemberItem):
            record = ledger.get(item.charge_id)
            chain.unit(_charge_unit(project, record, f"CUS#{customer_id}") if record else _Unit(), [item])
        elif isinstance(item, ContextItem):
            entry = ContextEvent(**plain(item.context)).timeline()
            chain.unit(_Unit(timeline=[(item.placed_visitor, entry)] if item.placed_visitor else []), [item])
    for item in subscriptions:
        leaving = _Unit()
        if item.placed_visitor:
            leaving.subscriptions[item.placed_visitor] = {item.sk.removeprefix(keys.SUBSCRIPTION_PREFIX)}
        chain.unit(leaving, [item])
    for item in members:
        if not isinstance(item, (ChargeMemberItem, ContextItem, SubscriptionItem)):
            chain.unit(_Unit(), [item])  # a session's membership
    last = _Unit()
    if root is not None:
        if root.visitor_id:
            last.unlinked.setdefault(root.visitor_id, set()).add(customer_id)
        last.refs = _refs(project, f"CUS#{customer_id}", [root.email], [root.meta_visitor])
    chain.finish(last)
    removed.charges += len(ledger)
    removed.scopes += 1


def _remove_session(project: str, session_id: str, removed: Removed) -> None:
    items = query_partition(f"P#{project}#CS#{session_id}")
    unit = _Unit()
    for item in items:
        if isinstance(item, GuestCheckoutItem):  # moved by decisions that check its version
            unit.deletes.append((_delete(item)[0], GuestCheckoutItem.version == item.version))
            if item.placed_visitor:
                unit.timeline.append((item.placed_visitor, ContextEvent(**plain(item.context)).timeline()))
            continue
        unit.deletes.append(_delete(item))
        if isinstance(item, SessionItem):
            unit.deletes += [(keys.payment(project, pi), None) for pi in item.payment_intents or ()]
            scopes = [f"CS#{session_id}"] + ([f"CUS#{item.customer_id}"] if item.customer_id else [])
            for scope in scopes:
                unit.refs += _refs(project, scope, [item.email], [item.meta_visitor, item.client_reference_id])
    chain = _Chain(project, None)
    chain.finish(unit)
    removed.scopes += 1


def _remove_charge(project: str, charge_id: str, removed: Removed) -> None:
    """A ledger entry left after the registry's scopes: a charge without customer (or one whose
    customer was booked after the registry was read: its whole scope goes)."""
    record = _ledger(project, [charge_id]).get(charge_id)
    if record is None:
        return
    if record.facts.customer_id:
        _remove_customer(project, record.facts.customer_id, removed)
        return
    chain = _Chain(project, None)
    chain.finish(_charge_unit(project, record, f"CH#{charge_id}"))
    removed.charges += 1


def _remove_zero_totals(project: str) -> None:
    """Unattributed totals and rollup items left at zero (a concurrent booking's non-zero one stays:
    a rollup item is deleted only at the count of writes read), and the report's caches of months
    (what they summarise is gone; a month's version item stays, holding no revenue, so that a cache
    built before is never taken for current: shared.revenue.rollups)."""
    for cached in query_partition(keys.rollup_pk(project), keys.REPORT_CACHE_PREFIX):
        _delete_if(cached, RevenueItem.pk.exists())
    for item in query_partition(f"P#{project}#UNATTRIBUTED"):
        if isinstance(item, UnattributedItem) and not int(item.amount or 0):
            _delete_if(item, UnattributedItem.amount == 0)
    for raw in rollups.read(project):
        if not any(value for name, value in raw.items() if rollups.is_rollup_attribute(name)):
            _delete_if(RollupItem(raw["pk"], raw["sk"]), RollupItem.writes == raw.get("writes", 0))


def _delete_if(item: RevenueItem, condition: Condition) -> None:
    try:
        with dynamo.translate_errors():
            item.delete(condition)
    except StaleUpdate:
        pass


# ---- what a scope's items remove ------------------------------------------------------------------


@dataclass
class _Unit:
    """What must go in one transaction: items, owners' money, timeline events, links, plans."""

    deletes: list[tuple[Key, Any]] = field(default_factory=list)  # (key, condition or None)
    totals: dict[tuple[str | None, str], int] = field(default_factory=dict)  # (owner, currency) -> delta
    timeline: list[tuple[str, TimelineEntry]] = field(default_factory=list)
    unlinked: dict[str, set[str]] = field(default_factory=dict)  # visitor -> customers
    subscriptions: dict[str, set[str]] = field(default_factory=dict)  # visitor -> subscriptions leaving
    refs: list[Key] = field(default_factory=list)
    rollups: dict[tuple[str, int], Counter[str]] = field(default_factory=dict)  # (day, shard) -> change

    def merge(self, other: _Unit) -> None:
        self.deletes += other.deletes
        for place, change in other.rollups.items():
            self.rollups.setdefault(place, Counter()).update(change)
        for key, amount in other.totals.items():
            self.totals[key] = self.totals.get(key, 0) + amount
        self.timeline += other.timeline
        for visitor, customers in other.unlinked.items():
            self.unlinked.setdefault(visitor, set()).update(customers)
        for visitor, subs in other.subscriptions.items():
            self.subscriptions.setdefault(visitor, set()).update(subs)
        self.refs += other.refs

    def items(self, project: str) -> dict[tuple[str, str], Any]:
        """Every item deleted, once (a transaction names an item once), with its condition if any."""
        found: dict[tuple[str, str], Any] = {pk_sk(k): None for k in self.refs}
        found |= {pk_sk(keys.timeline_event(project, v, e.at, e.event_id)): None for v, e in self.timeline}
        for key, condition in self.deletes:
            found[pk_sk(key)] = condition if condition is not None else found.get(pk_sk(key))
        return found

    def size(self) -> int:
        items = len(self.items(""))
        owners = {("V", v) for v, _ in self.totals if v} | {("U", c) for v, c in self.totals if v is None}
        owners |= {("V", v) for v in self.unlinked} | {("V", v) for v in self.subscriptions}
        months = {(rollups.month_of(day), shard) for day, shard in self.rollups}
        return items + len(owners) + len(self.rollups) + len(months)


def _charge_unit(project: str, record: LedgerRecord, scope: str) -> _Unit:
    f = record.facts
    unit = _Unit(deletes=[(keys.ledger(project, f.id), LedgerItem.version == record.version)])
    unit.totals[(record.visitor_id, f.currency)] = -record.net
    unit.rollups[rollups.place(record)] = Counter({k: -v for k, v in rollups.contribution(record).items()})
    if record.visitor_id:
        unit.timeline = [(record.visitor_id, entry) for entry in charge_events(record)]
    if f.payment_intent:
        unit.deletes.append((keys.payment(project, f.payment_intent), None))
    unit.refs = _refs(project, scope, [f.billing_email, f.receipt_email], [f.meta_visitor])
    return unit


def _refs(project: str, scope: str, emails: Iterable[str | None], names: Iterable[str | None]) -> list[Key]:
    refs = [keys.email_ref(project, e, scope) for e in {email_key(x) for x in emails} if e]
    return refs + [keys.visitor_ref(project, n, scope) for n in set(names) if n]


def _delete(item: RevenueItem) -> tuple[Key, Any]:
    return {"pk": {"S": item.pk}, "sk": {"S": item.sk}}, None


def _ledger(project: str, charge_ids: list[str]) -> dict[str, LedgerRecord]:
    found = batch_get(keys.ledger(project, c) for c in charge_ids)
    return {i.charge_id: ledger_record(i) for i in found.values() if isinstance(i, LedgerItem)}


def _profiles(project: str, visitors: set[str]) -> dict[str, Profile]:
    found = batch_get(keys.visitor(project, v) for v in visitors)
    return {i.visitor_id: profile(i) for i in found.values() if isinstance(i, ProfileItem)}


# ---- transactions ------------------------------------------------------------------------------------


class _Chain:
    """A scope's units packed into transactions of at most 100 items; with a customer item, every
    transaction checks its version and bumps it, and the last deletes it."""

    def __init__(self, project: str, root: CustomerItem | None) -> None:
        self.project = project
        self.root = root
        self.version = int(root.version) if root is not None and root.version is not None else None
        self.pending = _Unit()
        self.profiles: dict[str, Profile] = {}
        self.after_commit: dict[str, Profile] = {}

    def unit(self, unit: _Unit, items: list[RevenueItem]) -> None:
        unit.deletes += [_delete(i) for i in items]
        if self.pending.size() + unit.size() + 1 > MAX_ITEMS:
            self._commit(self.pending, last=False)
            self.pending = _Unit()
        self.pending.merge(unit)

    def finish(self, last: _Unit) -> None:
        if self.pending.size() + last.size() + 1 > MAX_ITEMS:
            self._commit(self.pending, last=False)
            self.pending = _Unit()
        self.pending.merge(last)
        self._commit(self.pending, last=True)

    def _commit(self, unit: _Unit, *, last: bool) -> None:
        p = self.project
        with dynamo.translate_errors(), TransactWrite(connection=tables.revenue_connection()) as tx:
            if self.root is not None:
                root = CustomerItem(self.root.pk, self.root.sk, version=self.version)
                if last:
                    tx.delete(root)
                else:
                    tx.update(root, [CustomerItem.dirty.set(True)])
            for (pk, sk), condition in unit.items(p).items():
                tx.delete(RevenueItem(pk, sk), condition)
            for currency, amount in _amounts(unit, None).items():
                pk, sk = pk_sk(keys.unattributed(p, currency))
                tx.update(UnattributedItem(pk, sk), [UnattributedItem.amount.add(amount)])
            for visitor in sorted({v for v, _ in unit.totals if v} | set(unit.unlinked) | set(unit.subscriptions)):
                self._update_visitor(tx, visitor, unit)
            changed = []
            for (day, shard), change in sorted(unit.rollups.items()):
                if (found := rollups.update(p, day, shard, change)) is not None:
                    tx.update(*found)
                    changed.append((day, shard))
            for month, actions in rollups.month_versions(p, changed):
                tx.update(month, actions)
        if self.version is not None:
            self.version += 1
        self.profiles.update(self.after_commit)
        self.after_commit = {}

    def _update_visitor(self, tx: TransactWrite, visitor: str, unit: _Unit) -> None:
        b = ProfileBooking
        actions: list[Action] = [b.revenue[c].add(a) for c, a in sorted(_amounts(unit, visitor).items())]
        actions += [b.linked[c].remove() for c in sorted(unit.unlinked.get(visitor, ()))]
        leaving = unit.subscriptions.get(visitor, set())
        condition = b.pk.exists()
        read = self.profiles.get(visitor)
        if leaving and read is not None:
            actions += [b.subscriptions[s].remove() for s in sorted(leaving)]
            chosen = visitor_plan(s for sid, s in read.subscriptions.items() if sid not in leaving)
            version = read.plan_version
            actions += [b.plan.remove() if chosen is None else b.plan.set(chosen), b.plan_version.set(version + 1)]
            expected = b.plan_version == version
            condition &= (b.plan_version.does_not_exist() | expected) if version == 0 else expected
            # what the chain's next transaction reads: the profile as this one leaves it
            left = {sid: state for sid, state in read.subscriptions.items() if sid not in leaving}
            self.after_commit[visitor] = replace(read, subscriptions=left, plan_version=version + 1)
        if actions:
            pk, sk = pk_sk(keys.visitor(self.project, visitor))
            tx.update(b(pk, sk), actions, condition)


def _amounts(unit: _Unit, owner: str | None) -> dict[str, int]:
    return {c: a for (v, c), a in unit.totals.items() if v == owner and a}
