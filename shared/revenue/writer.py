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

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import dynamo
from ..isotime import iso_seconds
from ..settings import get_settings
from . import keys
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
    PlaceSubscription,
    SaveRoot,
    SaveSession,
    SetPlan,
    ShowOnTimeline,
)
from .plans import SubscriptionState
from .records import LedgerRecord, PaymentJoin
from .timeline import TimelineEntry, charge_events

MAX_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
EVENT_MARK_DAYS = 35  # Stripe retries for up to 3 days; the ledger guards money for ever


def commit(project: str, decision: Decision) -> int:
    """Write the decision, transaction after transaction; returns how many were written."""
    transactions = plan(project, decision)
    for tx in transactions:
        tx.commit()
    return len(transactions)


def plan(project: str, decision: Decision) -> list[Transaction]:
    """The transactions of a decision, in the order they must be written.

    Small scopes share a transaction; a scope too large for the one at hand starts its own chain.
    The decision's new evidence goes first, the event mark last (a redelivery of an event whose
    chain was cut short is then decided again and finishes it).
    """
    limit = MAX_ITEMS - len(decision.last)
    txs = [Transaction(project)]
    txs[0].add_all(decision.first, limit)
    shared = False  # the transaction at hand already holds another scope's writes
    for scope in decision.scopes:
        whole = [*scope.first, *(i for unit in scope.units for i in unit)]
        if txs[-1].try_add(whole, limit, root=scope.root):
            shared = True
            continue
        if shared:
            txs.append(Transaction(project))
        shared = True
        tx = txs[-1]
        tx.add_all(scope.first, limit, root=scope.root)
        for unit in scope.units:
            if not tx.try_add(list(unit), limit, root=scope.root):
                tx = Transaction(project)
                txs.append(tx)
                tx.add_all(list(unit), limit, root=scope.root)
    txs[-1].add_all(decision.last, MAX_ITEMS)
    _chain_roots(txs)
    return [tx for tx in txs if len(tx)]


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


@dataclass
class _JoinChange:
    join: PaymentJoin
    sessions: set[str] = field(default_factory=set)
    charges: set[str] = field(default_factory=set)


class Transaction:
    """One TransactWriteItems, built intent by intent; each item's label says what a cancellation means.

    One operation per item (DynamoDB's rule): totals and plan changes are merged into one update per
    owner, join changes into one write per PaymentIntent, a condition check on an item the
    transaction also writes is dropped (the write carries its own condition), and writing the same
    membership or reference twice is writing it once.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self.table = get_settings().revenue_table
        self.roots: dict[str, _RootWrite] = {}
        self._items: list[dict[str, Any]] = []
        self._labels: list[str] = []
        self._keys: dict[str, int] = {}
        self._owners: dict[str | None, _OwnerChange] = {}
        self._joins: dict[str, _JoinChange] = {}

    def __len__(self) -> int:
        return len(self._items) + len(self.roots) + len(self._owners) + len(self._joins)

    # -- building ---------------------------------------------------------------------------------

    def add_all(self, intents: list[Intent], limit: int, root: SaveRoot | None = None) -> None:
        if not self.try_add(intents, limit, root):
            raise ValueError(f"{len(intents)} intents that must be written together exceed {limit} items")

    def try_add(self, intents: list[Intent], limit: int, root: SaveRoot | None = None) -> bool:
        """Add the intents (and the scope's customer item) if all of them fit, else change nothing."""
        saved = (
            list(self._items),
            list(self._labels),
            dict(self._keys),
            dict(self.roots),
            copy.deepcopy(self._owners),
            copy.deepcopy(self._joins),
        )
        if root is not None:
            self.roots.setdefault(root.before.record.customer_id, _RootWrite(root))
        for intent in intents:
            self._apply(intent)
        if len(self) <= limit:
            return True
        self._items, self._labels, self._keys, self.roots, self._owners, self._joins = saved
        return False

    def _apply(self, intent: Intent) -> None:
        p = self.project
        match intent:
            case ExpectHead(email, version):
                self._check("head", keys.email_head(p, email), version)
            case ExpectNoVisitor(visitor_id):
                self._add("visitor", keys.visitor(p, visitor_id), "ConditionCheck", _absent())
            case ExpectJoin(payment_intent, version):
                self._check("payment", keys.payment(p, payment_intent), version)
            case ExpectLedger(charge_id, version):
                self._check("ledger", keys.ledger(p, charge_id), version)
            case SaveSession(session):
                values = {"session_id": session.id, **{k: v for k, v in asdict(session).items() if k != "id"}}
                values["payment_intents"] = list(session.payment_intents) or None
                self._put("session", keys.session(p, session.id), values)
            case JoinPayment(payment_intent, join, session, charge):
                self._join(payment_intent, join, session, charge)
            case AddSessionMember(customer_id, session_id):
                self._put_once("member", keys.customer_session(p, customer_id, session_id), {"session_id": session_id})
            case AddRef(scope, email, visitor_id):
                if email:
                    self._put_once("ref", keys.email_ref(p, email, scope), {"scope": scope})
                if visitor_id:
                    self._put_once("ref", keys.visitor_ref(p, visitor_id, scope), {"scope": scope})
            case LinkCustomer(visitor_id, customer_id, linked):
                owner = self._owner(visitor_id)
                (owner.linked if linked else owner.unlinked).add(customer_id)
            case ShowOnTimeline(visitor_id, entry):
                self._put_timeline(visitor_id, entry)
            case MarkEvent(event_id):
                values = {"event_id": event_id, "expires_at": int(time.time()) + EVENT_MARK_DAYS * 86_400}
                self._put("event", keys.event_mark(p, event_id), values, _absent())
            case BookCharge(record, join):
                self._book(record, join)
            case MoveCharge(before, after):
                self._move(before, after)
            case BookRefund(before, after, entry):
                self._put(
                    "ledger", keys.ledger(p, after.facts.id), self._ledger_values(after), _version(before.version)
                )
                self._add_total(before.visitor_id, before.facts.currency, -(after.refunded - before.refunded))
                if after.visitor_id:
                    self._put_timeline(after.visitor_id, entry)
            case PlaceContext(customer_id, event_key, context, entry, before, after, _stored):
                if before and before != after:
                    self._delete_timeline(before, entry)
                if after:
                    self._put_timeline(after, entry)
                item = {"context": context, "placed_visitor": after}
                self._put("context", keys.customer_context(p, customer_id, event_key), item)
            case PlaceSubscription(customer_id, state, after):
                item = {"state": asdict(state), "placed_visitor": after}
                self._put("subscription", keys.customer_subscription(p, customer_id, state.subscription_id), item)
            case SetPlan(visitor_id, changes, chosen, expected_version):
                owner = self._owner(visitor_id)
                owner.subscriptions.update(changes)
                owner.plan = (chosen, expected_version)

    def _book(self, record: LedgerRecord, join: PaymentJoin | None) -> None:
        p, facts = self.project, record.facts
        self._put("ledger", keys.ledger(p, facts.id), self._ledger_values(record), _absent())
        self._add_total(record.visitor_id, facts.currency, record.net)
        if record.visitor_id:
            for entry in charge_events(record):
                self._put_timeline(record.visitor_id, entry)
        if facts.customer_id:
            self._put_once("member", keys.customer_charge(p, facts.customer_id, facts.id), {"charge_id": facts.id})
        if facts.payment_intent and join is not None:
            self._join(facts.payment_intent, join, None, facts.id)

    def _move(self, before: LedgerRecord, after: LedgerRecord) -> None:
        self._put(
            "ledger", keys.ledger(self.project, after.facts.id), self._ledger_values(after), _version(before.version)
        )
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

    def _add(self, label: str, key: dict[str, Any], operation: str, body: dict[str, Any]) -> None:
        identity = json.dumps(key, sort_keys=True)
        if identity in self._keys:
            index = self._keys[identity]
            if operation == "ConditionCheck":
                return
            if "ConditionCheck" in self._items[index]:  # a write supersedes a mere check
                self._items[index] = self._operation(operation, key, body)
                self._labels[index] = label
                return
            raise ValueError(f"two writes to one item in a transaction: {label}")
        self._keys[identity] = len(self._items)
        self._labels.append(label)
        self._items.append(self._operation(operation, key, body))

    def _operation(self, operation: str, key: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if operation == "Put":
            rest = {k: v for k, v in body.items() if k != "Item"}
            return {"Put": {"TableName": self.table, "Item": {**key, **body["Item"]}, **rest}}
        return {operation: {"TableName": self.table, "Key": key, **body}}

    def _check(self, label: str, key: dict[str, Any], version: int | None) -> None:
        self._add(label, key, "ConditionCheck", _version(version))

    def _put(
        self, label: str, key: dict[str, Any], values: dict[str, Any], condition: dict[str, Any] | None = None
    ) -> None:
        body = {"Item": dynamo.to_item({"project_id": self.project, **values}), **(condition or {})}
        self._add(label, key, "Put", body)

    def _put_once(self, label: str, key: dict[str, Any], values: dict[str, Any]) -> None:
        if json.dumps(key, sort_keys=True) not in self._keys:
            self._put(label, key, values)

    def _put_timeline(self, visitor_id: str, entry: TimelineEntry) -> None:
        values = {
            "visitor_id": visitor_id,
            "event_id": entry.event_id,
            "type": entry.type,
            "occurred_at": iso_seconds(entry.at),
            "amount": entry.amount,
            "currency": entry.currency,
            "revenue": entry.revenue,
            "stripe_object_id": entry.stripe_object_id,
            "attribution_tier": entry.tier,
        }
        self._put("timeline", keys.timeline_event(self.project, visitor_id, entry.at, entry.event_id), values)

    def _delete_timeline(self, visitor_id: str, entry: TimelineEntry) -> None:
        self._add("timeline", keys.timeline_event(self.project, visitor_id, entry.at, entry.event_id), "Delete", {})

    def _ledger_values(self, record: LedgerRecord) -> dict[str, Any]:
        f = record.facts
        return {
            "charge_id": f.id,
            "created": f.created,
            "currency": f.currency,
            "amount": record.amount,
            "refunded": record.refunded,
            "refund_steps": [list(step) for step in record.refund_steps] or None,
            "visitor_id": record.visitor_id,
            "tier": record.tier,
            "customer_id": f.customer_id,
            "payment_intent": f.payment_intent,
            "meta_visitor": f.meta_visitor,
            "billing_email": f.billing_email,
            "receipt_email": f.receipt_email,
            "version": record.version,
            **keys.ledger_index(self.project, f.created, f.id),
        }

    # -- merged per item ----------------------------------------------------------------------------

    def _add_total(self, visitor_id: str | None, currency: str, amount: int) -> None:
        amounts = self._owner(visitor_id).amounts
        amounts[currency] = amounts.get(currency, 0) + amount

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
            self._flush_owner(visitor_id, change)
        for payment_intent, join_change in self._joins.items():
            join = join_change.join
            values = {
                "payment_intent": payment_intent,
                "sessions": set(join.sessions | join_change.sessions) or None,
                "charges": set(join.charges | join_change.charges) or None,
                "version": (join.version or 0) + 1,
            }
            self._put("payment", keys.payment(self.project, payment_intent), values, _version(join.version))
        self.roots, self._owners, self._joins = {}, {}, {}

    def _flush_root(self, customer: str, write: _RootWrite) -> None:
        save, record, link = write.save, write.save.record, write.save.link
        read = save.before.version
        expected = read if write.step == 0 else (read or 0) + write.step
        values = {
            "customer_id": customer,
            "email": record.email,
            "meta_visitor": record.meta_visitor,
            "fetched": save.fetched,
            "visitor_id": link.visitor_id if link else None,
            "tier": link.tier if link else None,
            "link_created": link.evidence[0] if link else None,
            "link_id": link.evidence[1] if link else None,
            "dirty": write.dirty or None,
            "version": (read or 0) + write.step + 1,
        }
        self._put("customer", keys.customer_link(self.project, customer), values, _version(expected))

    def _flush_owner(self, visitor_id: str | None, change: _OwnerChange) -> None:
        """One update per owner item: every currency, link and plan change at once."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []
        adds: list[str] = []
        removes: list[str] = []
        for i, (currency, amount) in enumerate(sorted(change.amounts.items())):
            if amount:
                names[f"#r{i}"], values[f":r{i}"] = keys.REVENUE_PREFIX + currency, {"N": str(amount)}
                adds.append(f"#r{i} :r{i}")
        for i, customer in enumerate(sorted(change.linked ^ change.unlinked)):
            names[f"#l{i}"] = keys.LINKED_PREFIX + customer
            if customer in change.linked:
                values[":linked"] = {"BOOL": True}
                sets.append(f"#l{i} = :linked")
            else:
                removes.append(f"#l{i}")
        for i, (subscription_id, state) in enumerate(sorted(change.subscriptions.items())):
            names[f"#s{i}"] = keys.SUBSCRIPTION_ATTR_PREFIX + subscription_id
            if state is None:
                removes.append(f"#s{i}")
            else:
                values[f":s{i}"] = _value(asdict(state))
                sets.append(f"#s{i} = :s{i}")
        conditions = []
        if change.plan is not None:
            chosen, expected = change.plan
            names["#plan"], names["#pv"] = "plan", "plan_version"
            values[":pv"] = {"N": str(expected + 1)}
            sets.append("#pv = :pv")
            if chosen is None:
                removes.append("#plan")
            else:
                values[":plan"] = _value(chosen)
                sets.append("#plan = :plan")
            values[":pv_read"] = {"N": str(expected)}
            conditions.append("(attribute_not_exists(#pv) OR #pv = :pv_read)" if expected == 0 else "#pv = :pv_read")
        if visitor_id is None:
            names["#project"], values[":project"] = "project_id", {"S": self.project}
            sets.append("#project = :project")
            key, label = keys.unattributed(self.project), "unattributed"
        else:
            conditions.insert(0, "attribute_exists(pk)")  # totals only on a visitor that exists
            key, label = keys.visitor(self.project, visitor_id), "visitor"
        clauses = [
            f"{verb} {', '.join(parts)}" for verb, parts in (("SET", sets), ("ADD", adds), ("REMOVE", removes)) if parts
        ]
        if not clauses:
            return
        body: dict[str, Any] = {"UpdateExpression": " ".join(clauses), "ExpressionAttributeNames": names}
        if values:
            body["ExpressionAttributeValues"] = values
        if conditions:
            body["ConditionExpression"] = " AND ".join(conditions)
        self._add(label, key, "Update", body)

    # -- writing ------------------------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """The TransactItems (after merging totals, joins and customer items); for tests and commit."""
        self._flush()
        return self._items

    def commit(self) -> None:
        """Write everything or nothing; a failed condition becomes the domain error it means."""
        items = self.requests()
        if not items:
            return
        with dynamo.translate_errors(self._labels):
            dynamo.client().transact_write_items(TransactItems=items)  # type: ignore[arg-type]


def _absent() -> dict[str, Any]:
    return {"ConditionExpression": "attribute_not_exists(pk)"}


def _version(version: int | None) -> dict[str, Any]:
    """The item is as read: absent (None), or at `version` (0: written before it carried one)."""
    if version is None:
        return _absent()
    if version == 0:
        return {
            "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(#v) OR #v = :v)",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": "0"}},
        }
    return {
        "ConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": {"N": str(version)}},
    }


def _value(value: Any) -> dict[str, Any]:
    return dynamo.to_item({"v": value})["v"]  # type: ignore[no-any-return]
