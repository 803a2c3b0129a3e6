"""A decision's intents as TransactWriteItems: at most 100 items each, each keeping rule 4.

Every transaction that writes into a customer's partition also writes the customer item, bumping
its version from the one it was decided on: that is how every other decision on the customer
(which checks the same version) learns that what it read changed. A decision too large for one
transaction (a link move of a customer with hundreds of charges) is written as a chain: the
customer item's version goes up by one per transaction and it stays `dirty` until the last one, so
a crash in the middle leaves a customer whose next decision re-resolves it whole (never the fast
path) and finishes the move. Each unit (a charge with its totals and timeline) is inside one
transaction, so the ledger/total invariant holds after every one of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from .. import dynamo, tables
from ..errors import StaleUpdate
from ..isotime import iso_seconds
from . import keys, rollups
from .intents import (
    AddRef,
    AddSessionMember,
    BookCharge,
    BookRefund,
    Decision,
    ExpectHead,
    ExpectJoin,
    ExpectLedger,
    ExpectNoVisitor,
    Intent,
    JoinPayment,
    LinkCustomer,
    MarkEvent,
    MoveCharge,
    PlaceContext,
    PlaceGuestCheckout,
    PlaceSubscription,
    Resource,
    SaveRoot,
    SaveSession,
    SetPlan,
    Unit,
)
from .items import (
    ChargeMemberItem,
    ContextItem,
    CustomerItem,
    EmailHeadItem,
    EventMarkItem,
    GuestCheckoutItem,
    LedgerItem,
    PaymentItem,
    ProfileBooking,
    ProfileItem,
    RefItem,
    RevenueItem,
    SessionItem,
    SessionMemberItem,
    SubscriptionItem,
    TimelineItem,
    UnattributedItem,
)
from .plans import SubscriptionState
from .records import LedgerRecord, PaymentJoin
from .store import Key, pk_sk
from .timeline import TimelineEntry, charge_events

MAX_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
EVENT_MARK_DAYS = 35  # Stripe retries for up to 3 days; the ledger guards money for ever


def commit(project: str, decision: Decision) -> int:
    """Write the decision, transaction after transaction; returns how many were written."""
    transactions = plan(project, decision)
    for tx in transactions:
        tx.commit()
    return len(transactions)


def commit_each(project: str, decision: Decision, committed: Callable[[list[Intent]], None]) -> int:
    """Write every transaction of a decision without an event mark (a page's), each on its own: one
    that meets a concurrent write does not stop the others, so a page over a hundred customers
    makes progress while webhooks and other slices write some of them. `committed` hears the
    intents of each transaction written (the ones that fail are decided again, and counted then).
    Raises the first StaleUpdate after trying them all (the caller decides again what is not
    written yet); a customer split over several transactions stays `dirty` where its chain stopped."""
    if decision.last:
        raise ValueError("an event mark must follow every other write of its decision")
    failed: StaleUpdate | None = None
    stopped: set[str] = set()  # customers whose chain stopped: their later steps are not tried
    transactions = plan(project, decision)
    for n, tx in enumerate(transactions):
        roots = set(tx.roots)  # (committing empties them)
        if stopped & roots:
            continue
        try:
            tx.commit()
            committed(tx.intents)
        except StaleUpdate as exc:
            if n == 0 and decision.first:
                raise  # it holds the decision's new evidence, which the others may presuppose
            failed = failed or exc
            stopped |= roots
    if failed is not None:
        raise failed
    return len(transactions)


def plan(project: str, decision: Decision) -> list[Transaction]:
    """The transactions of a decision, in the order they must be written.

    Small scopes share a transaction; a scope too large for the one at hand starts its own chain.
    The decision's new evidence goes first, the event mark last (a redelivery of an event whose
    chain was cut short is then decided again and finishes it).
    """
    limit = MAX_ITEMS - len(decision.last)
    txs = [Transaction(project)]
    _pack(txs, [(i,) for i in decision.first], limit, None)
    shared = False  # the transaction at hand already holds another scope's writes
    for scope in decision.scopes:
        whole = [*scope.first, *(i for unit in scope.units for i in unit)]
        if txs[-1].try_add(whole, limit, root=scope.root):
            shared = True
            continue
        if shared:
            txs.append(Transaction(project))
        shared = True
        # Too large for one transaction: its first intents (checks, links, evidence: each stands
        # alone) then its units, as many to a transaction as fit.
        _pack(txs, [*((i,) for i in scope.first), *scope.units], limit, scope.root)
    txs[-1].add_all(decision.last, MAX_ITEMS)
    _chain_roots(txs)
    return [tx for tx in txs if len(tx)]


def _pack(txs: list[Transaction], units: list[Unit], limit: int, root: SaveRoot | None) -> None:
    """Append the units to the last transaction, starting a new one whenever the next does not fit."""
    for unit in units:
        if not txs[-1].try_add(list(unit), limit, root=root):
            txs.append(Transaction(project=txs[-1].project))
            txs[-1].add_all(list(unit), limit, root=root)


def _chain_roots(txs: list[Transaction]) -> None:
    """Each customer item is written by every transaction of its scope: version by version, dirty
    until the last."""
    chains: dict[str, list[Transaction]] = {}
    for tx in txs:
        for customer in tx.roots:
            chains.setdefault(customer, []).append(tx)
    for customer, chain in chains.items():
        for step, tx in enumerate(chain):
            tx.roots[customer].step = step
            tx.roots[customer].dirty = step < len(chain) - 1


@dataclass
class _RootWrite:
    save: SaveRoot
    step: int = 0
    dirty: bool = False


@dataclass
class _OwnerChange:
    amounts: dict[str, int] = field(default_factory=dict)
    linked: set[str] = field(default_factory=set)
    unlinked: set[str] = field(default_factory=set)
    subscriptions: dict[str, SubscriptionState | None] = field(default_factory=dict)
    plan: tuple[dict[str, Any] | None, int] | None = None  # (plan, expected plan_version)
    source: tuple[str | None] | None = None  # (acquisition.source the profile must have), None: unchecked


@dataclass
class _JoinChange:
    join: PaymentJoin
    sessions: set[str] = field(default_factory=set)
    charges: set[str] = field(default_factory=set)


@dataclass
class _Op:
    kind: str  # check | delete | put | update: the order TransactWriteItems lists them in (pynamodb's)
    label: str  # what a failed condition on this item means
    add: Callable[[TransactWrite], None]


_ORDER = ("check", "delete", "put", "update")


class Transaction:
    """One TransactWriteItems, built intent by intent; each item's label says what a cancellation means.

    One operation per item (DynamoDB's rule): totals and plan changes are merged into one update per
    owner, join changes into one write per PaymentIntent, a condition check on an item the
    transaction also writes is dropped (the write carries its own condition), and writing the same
    membership or reference twice is writing it once. Versions are pynamodb's `VersionAttribute`s:
    an item saved with the version it was read at is written only if it is still at that version,
    and one higher.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self.roots: dict[str, _RootWrite] = {}
        self._ops: dict[tuple[str, str], _Op] = {}
        self._owners: dict[str | None, _OwnerChange] = {}
        self._joins: dict[str, _JoinChange] = {}
        self._rollups: dict[tuple[str, int], Counter[str]] = {}
        self.intents: list[Intent] = []  # what it writes, for the metrics of what was committed

    def __len__(self) -> int:
        return len(self._footprint())

    def _footprint(self) -> set[tuple[str, ...]]:
        """Every item the transaction will write or check, once each (as DynamoDB counts them)."""
        items: set[tuple[str, ...]] = set(self._ops)
        items |= {("customer", c) for c in self.roots}
        items |= {("payment", pi) for pi in self._joins}
        items |= {("rollup", day, str(shard)) for day, shard in self._rollups}
        items |= {("rollup_month", rollups.month_of(day), str(shard)) for day, shard in self._rollups}
        for visitor_id, change in self._owners.items():
            if visitor_id is not None:
                items.add(("visitor", visitor_id))
            else:
                items |= {("unattributed", c) for c in change.amounts}
        return items

    # -- building ---------------------------------------------------------------------------------

    def add_all(self, intents: list[Intent], limit: int, root: SaveRoot | None = None) -> None:
        if not self.try_add(intents, limit, root):
            raise ValueError(f"{len(intents)} intents that must be written together exceed {limit} items")

    def try_add(self, intents: list[Intent], limit: int, root: SaveRoot | None = None) -> bool:
        """Add the intents (and the scope's customer item) if all of them fit, else change nothing."""
        scratch = Transaction(self.project)
        scratch._add_intents(intents, root)
        if len(self._footprint() | scratch._footprint()) > limit:
            return False
        self._add_intents(intents, root)
        return True

    def _add_intents(self, intents: list[Intent], root: SaveRoot | None) -> None:
        if root is not None:
            self.roots.setdefault(root.before.record.customer_id, _RootWrite(root))
        self.intents += intents
        for intent in intents:
            self._apply(intent)

    def _apply(self, intent: Intent) -> None:
        p = self.project
        match intent:
            case ExpectHead(email, version):
                self._check("head", EmailHeadItem, keys.email_head(p, email), version)
            case ExpectNoVisitor(visitor_id):
                self._check("visitor", ProfileItem, keys.visitor(p, visitor_id), None)
            case ExpectJoin(payment_intent, version):
                self._check("payment", PaymentItem, keys.payment(p, payment_intent), version)
            case ExpectLedger(charge_id, version):
                self._check("ledger", LedgerItem, keys.ledger(p, charge_id), version)
            case SaveSession(session):
                values = {k: v for k, v in asdict(session).items() if k not in ("id", "payment_intents")}
                self._save(
                    "session",
                    SessionItem,
                    keys.session(p, session.id),
                    session_id=session.id,
                    **values,
                    payment_intents=list(session.payment_intents) or None,
                    **keys.scope_index(p, f"CS#{session.id}"),
                )
            case JoinPayment(payment_intent, join, session, charge):
                self._join(payment_intent, join, session, charge)
            case AddSessionMember(customer_id, session_id):
                self._save(
                    "member",
                    SessionMemberItem,
                    keys.customer_session(p, customer_id, session_id),
                    once=True,
                    session_id=session_id,
                )
            case AddRef(scope, email, visitor_id):
                if email:
                    self._save("ref", RefItem, keys.email_ref(p, email, scope), once=True, scope=scope)
                if visitor_id:
                    self._save("ref", RefItem, keys.visitor_ref(p, visitor_id, scope), once=True, scope=scope)
            case LinkCustomer(visitor_id, customer_id, linked):
                owner = self._owner(visitor_id)
                (owner.linked if linked else owner.unlinked).add(customer_id)
            case MarkEvent(event_id):
                expires = timedelta(days=EVENT_MARK_DAYS)  # TTL: DynamoDB deletes it then
                self._save(
                    "event",
                    EventMarkItem,
                    keys.event_mark(p, event_id),
                    absent=True,
                    event_id=event_id,
                    expires_at=expires,
                )
            case BookCharge(record, join):
                self._book(record, join)
            case MoveCharge(before, after):
                self._move(before, after)
            case BookRefund(before, after, entry):
                self._save_ledger(after, expected=before.version)
                self._add_total(before.visitor_id, before.facts.currency, -(after.refunded - before.refunded))
                self._roll(before, after)
                if after.visitor_id:
                    self._put_timeline(after.visitor_id, entry)
            case Resource(before, after):
                self._save_ledger(after, expected=before.version)
                self._roll(before, after)
            case PlaceContext(customer_id, event_key, context, entry, before, after, _stored):
                if before and before != after:
                    self._delete_timeline(before, entry)
                if after:
                    self._put_timeline(after, entry)
                self._save(
                    "context",
                    ContextItem,
                    keys.customer_context(p, customer_id, event_key),
                    context=context,
                    placed_visitor=after,
                )
            case PlaceGuestCheckout(session_id, context, entry, before, after, version):
                if before and before != after:
                    self._delete_timeline(before, entry)
                if after:
                    self._put_timeline(after, entry)
                key = keys.guest_checkout(p, session_id)
                self._save("guest", GuestCheckoutItem, key, context=context, placed_visitor=after, version=version)
            case PlaceSubscription(customer_id, state, after):
                key = keys.customer_subscription(p, customer_id, state.subscription_id)
                self._save("subscription", SubscriptionItem, key, state=asdict(state), placed_visitor=after)
            case SetPlan(visitor_id, changes, chosen, expected_version):
                owner = self._owner(visitor_id)
                owner.subscriptions.update(changes)
                owner.plan = (chosen, expected_version)

    def _book(self, record: LedgerRecord, join: PaymentJoin | None) -> None:
        p, facts = self.project, record.facts
        self._save_ledger(record, expected=None)
        self._add_total(record.visitor_id, facts.currency, record.net)
        self._roll(None, record)
        if record.visitor_id:
            for entry in charge_events(record):
                self._put_timeline(record.visitor_id, entry)
        if facts.customer_id:
            key = keys.customer_charge(p, facts.customer_id, facts.id)
            self._save("member", ChargeMemberItem, key, once=True, charge_id=facts.id)
        if facts.payment_intent and join is not None:
            self._join(facts.payment_intent, join, None, facts.id)

    def _move(self, before: LedgerRecord, after: LedgerRecord) -> None:
        self._save_ledger(after, expected=before.version)
        self._roll(before, after)
        if before.visitor_id != after.visitor_id:
            self._add_total(before.visitor_id, before.facts.currency, -before.net)
            self._add_total(after.visitor_id, after.facts.currency, after.net)
            if before.visitor_id:
                for entry in charge_events(before):
                    self._delete_timeline(before.visitor_id, entry)
        if after.visitor_id:
            for entry in charge_events(after):
                self._put_timeline(after.visitor_id, entry)

    # -- items --------------------------------------------------------------------------------------

    def _add(self, key: tuple[str, str], op: _Op) -> None:
        current = self._ops.get(key)
        if current is not None:
            if op.kind == "check":
                return
            if current.kind != "check":  # a write supersedes a mere check; two writes are a bug
                raise ValueError(f"two writes to one item in a transaction: {op.label}")
        self._ops[key] = op

    def _check(self, label: str, model: type[RevenueItem], key: Key, version: int | None) -> None:
        """The item is as read: absent (None), or at `version`."""
        condition = model.pk.does_not_exist() if version is None else model.version == version  # type: ignore[attr-defined]
        pk, sk = pk_sk(key)
        self._add((pk, sk), _Op("check", label, lambda tx: tx.condition_check(model, pk, sk, condition)))

    def _save(
        self, label: str, model: type[RevenueItem], key: Key, *, once: bool = False, absent: bool = False, **values: Any
    ) -> None:
        pk, sk = pk_sk(key)
        if once and (pk, sk) in self._ops:
            return
        if values.get("version", 0) is None:  # never written: pynamodb expects it absent
            del values["version"]
        values["project_id"] = self.project
        condition = model.pk.does_not_exist() if absent else None
        # The model is built at commit only: planning (which tries units on scratch transactions)
        # stays cheap.
        self._add((pk, sk), _Op("put", label, lambda tx: tx.save(model(pk, sk, **values), condition)))

    def _save_ledger(self, record: LedgerRecord, *, expected: int | None) -> None:
        """The entry, written only if it is still at the version read (None: only if absent)."""
        f = record.facts
        values: dict[str, Any] = {
            "charge_id": f.id,
            "created": f.created,
            "currency": f.currency,
            "amount": record.amount,
            "refunded": record.refunded,
            "refund_steps": [list(step) for step in record.refund_steps] or None,
            "visitor_id": record.visitor_id,
            "tier": record.tier,
            "source": record.source,
            "customer_id": f.customer_id,
            "payment_intent": f.payment_intent,
            "meta_visitor": f.meta_visitor,
            "billing_email": f.billing_email,
            "receipt_email": f.receipt_email,
            **keys.ledger_index(self.project, f.created, f.id),
        }
        self._save("ledger", LedgerItem, keys.ledger(self.project, f.id), version=expected, **values)

    def _put_timeline(self, visitor_id: str, entry: TimelineEntry) -> None:
        key = keys.timeline_event(self.project, visitor_id, entry.at, entry.event_id)
        self._save(
            "timeline",
            TimelineItem,
            key,
            visitor_id=visitor_id,
            event_id=entry.event_id,
            type=entry.type,
            occurred_at=iso_seconds(entry.at),
            amount=entry.amount,
            currency=entry.currency,
            revenue=entry.revenue,
            stripe_object_id=entry.stripe_object_id,
            attribution_tier=entry.tier,
        )

    def _delete_timeline(self, visitor_id: str, entry: TimelineEntry) -> None:
        pk, sk = pk_sk(keys.timeline_event(self.project, visitor_id, entry.at, entry.event_id))
        self._add((pk, sk), _Op("delete", "timeline", lambda tx: tx.delete(TimelineItem(pk, sk))))

    # -- merged per item ----------------------------------------------------------------------------

    def _add_total(self, visitor_id: str | None, currency: str, amount: int) -> None:
        amounts = self._owner(visitor_id).amounts
        amounts[currency] = amounts.get(currency, 0) + amount

    def _roll(self, before: LedgerRecord | None, after: LedgerRecord) -> None:
        """The entry's contribution to its rollup moves from `before` to `after` (None: new), and
        the owner that gains it must still have the source it is rolled up under."""
        if before is not None:
            self._rollup(before).subtract(rollups.contribution(before))
        self._rollup(after).update(rollups.contribution(after))
        if after.visitor_id is not None:
            owner = self._owner(after.visitor_id)
            if owner.source is not None and owner.source != (after.source,):
                raise ValueError(f"two sources for visitor {after.visitor_id} in one transaction")
            owner.source = (after.source,)

    def _rollup(self, record: LedgerRecord) -> Counter[str]:
        return self._rollups.setdefault(rollups.place(record), Counter())

    def _owner(self, visitor_id: str | None) -> _OwnerChange:
        return self._owners.setdefault(visitor_id, _OwnerChange())

    def _join(self, payment_intent: str, join: PaymentJoin, session: str | None, charge: str | None) -> None:
        change = self._joins.setdefault(payment_intent, _JoinChange(join))
        change.sessions |= {session} if session else set()
        change.charges |= {charge} if charge else set()

    def _flush(self) -> None:
        for customer, write in self.roots.items():
            self._flush_root(customer, write)
        for visitor_id, change in self._owners.items():
            if visitor_id is None:
                self._flush_unattributed(change)
            else:
                self._flush_visitor(visitor_id, change)
        for payment_intent, join_change in self._joins.items():
            join = join_change.join
            self._save(
                "payment",
                PaymentItem,
                keys.payment(self.project, payment_intent),
                payment_intent=payment_intent,
                sessions=set(join.sessions | join_change.sessions) or None,
                charges=set(join.charges | join_change.charges) or None,
                version=join.version,
            )
        self._flush_rollups()
        self.roots, self._owners, self._joins, self._rollups = {}, {}, {}, {}

    def _flush_root(self, customer: str, write: _RootWrite) -> None:
        save, record, link = write.save, write.save.record, write.save.link
        read = save.before.version
        self._save(
            "customer",
            CustomerItem,
            keys.customer_link(self.project, customer),
            customer_id=customer,
            email=record.email,
            meta_visitor=record.meta_visitor,
            fetched=save.fetched,
            visitor_id=link.visitor_id if link else None,
            tier=link.tier if link else None,
            link_created=link.evidence[0] if link else None,
            link_id=link.evidence[1] if link else None,
            dirty=write.dirty or None,
            **keys.scope_index(self.project, f"CUS#{customer}"),
            version=read if write.step == 0 else (read or 0) + write.step,  # the version this step expects
        )

    def _flush_unattributed(self, change: _OwnerChange) -> None:
        """The unattributed total: one item per currency, created by its first ADD."""
        for currency, amount in sorted(change.amounts.items()):
            if not amount:
                continue
            pk, sk = pk_sk(keys.unattributed(self.project, currency))
            actions: list[Action] = [
                UnattributedItem.amount.add(amount),
                UnattributedItem.kind.set(UnattributedItem),
                UnattributedItem.project_id.set(self.project),
                UnattributedItem.currency.set(currency),
            ]
            self._add((pk, sk), _Op("update", "unattributed", _update(UnattributedItem(pk, sk), actions)))

    def _flush_rollups(self) -> None:
        """The day items that change, and their months' versions (shared.revenue.rollups)."""
        changed = []
        for (day, shard), change in sorted(self._rollups.items()):
            if (found := rollups.update(self.project, day, shard, change)) is not None:
                item, actions = found
                self._add((item.pk, item.sk), _Op("update", "rollup", _update(item, actions)))
                changed.append((day, shard))
        for month, actions in rollups.month_versions(self.project, changed):
            self._add((month.pk, month.sk), _Op("update", "rollup_month", _update(month, actions)))

    def _flush_visitor(self, visitor_id: str, change: _OwnerChange) -> None:
        """One update of the visitor's profile: every currency, link and plan change at once."""
        b = ProfileBooking
        actions: list[Action] = [b.revenue[c].add(a) for c, a in sorted(change.amounts.items()) if a]
        for customer in sorted(change.linked ^ change.unlinked):
            actions.append(b.linked[customer].set(True) if customer in change.linked else b.linked[customer].remove())
        for subscription_id, state in sorted(change.subscriptions.items()):
            slot = b.subscriptions[subscription_id]
            actions.append(slot.remove() if state is None else slot.set(asdict(state)))
        condition = b.pk.exists()  # totals only on a visitor that exists
        if change.source is not None:  # the source its new or moved entries are rolled up under
            source = change.source[0]
            held = b.acquisition.source  # (typed str by pynamodb; a path here)
            condition &= held == source if source is not None else held.does_not_exist()  # type: ignore[attr-defined]
        if change.plan is not None:
            chosen, expected = change.plan
            actions.append(b.plan.remove() if chosen is None else b.plan.set(chosen))
            actions.append(b.plan_version.set(expected + 1))
            read = b.plan_version == expected
            condition &= (b.plan_version.does_not_exist() | read) if expected == 0 else read
        pk, sk = pk_sk(keys.visitor(self.project, visitor_id))
        if actions:
            self._add((pk, sk), _Op("update", "visitor", _update(b(pk, sk), actions, condition)))
        elif change.source is not None:  # entries re-sourced: nothing to add, the source still checked
            self._add((pk, sk), _Op("check", "visitor", lambda tx: tx.condition_check(b, pk, sk, condition)))

    # -- writing ------------------------------------------------------------------------------------

    def commit(self) -> None:
        """Write everything or nothing; a failed condition becomes the domain error it means."""
        self._flush()
        ops = sorted(self._ops.values(), key=lambda op: _ORDER.index(op.kind))  # stable: pynamodb's order
        if not ops:
            return
        with (
            dynamo.translate_errors([op.label for op in ops]),
            TransactWrite(connection=tables.revenue_connection()) as tx,
        ):
            for op in ops:
                op.add(tx)


def _update(item: Model, actions: list[Action], condition: Condition | None = None) -> Callable[[TransactWrite], None]:
    return lambda tx: tx.update(item, actions, condition)
