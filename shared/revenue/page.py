"""What a page read from Stripe's list (backfill, reconcile) reads, in a few batched reads.

The first read takes, for the whole page, the ledger entries (which charges are booked), the
customers' items, the PaymentIntent joins, and the heads of the emails and the profiles of the
visitors the page names: one BatchGetItem per 100 keys. The sessions on those joins follow, then
whatever names and emails they add. A new charge of a stored customer that can change nothing else
in it (decision.follow_root) is decided from these reads alone; every other scope is decided
whole by loading.load through the same `store.Reads`, so nothing is read twice. No Query is made
but for a stored customer whose link a new charge could change. A page of Checkout Sessions is
read the same way (`read_sessions`; decision.sessions_follow_root).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..identity import email_key
from . import keys, loading, store
from .decision import State, follow_root, scope_key
from .intents import ScopeWrites
from .items import ContextItem, CustomerItem, LedgerItem, PaymentItem, SessionItem
from .models import ChargeFacts, CustomerRecord, SessionFacts
from .placement import placed_from_item
from .records import (
    CustomerRoot,
    LedgerRecord,
    PaymentJoin,
    customer_root,
    ledger_record,
    payment_join,
    session_facts,
)


@dataclass
class FirstRead:
    booked: dict[str, LedgerRecord]  # charge -> its entry, for the page's booked charges
    roots: dict[str, CustomerRoot]  # customer -> its item as read (version None: none yet)


def first_read(
    project: str, charges: dict[str, ChargeFacts], customers: dict[str, CustomerRecord], reads: store.Reads
) -> FirstRead:
    booking = [f for f in charges.values() if f.books_revenue]
    customer_ids = sorted({f.customer_id for f in booking if f.customer_id})
    emails = {e for f in booking for e in (email_key(f.billing_email), email_key(f.receipt_email)) if e}
    emails |= {e for c in customers.values() if (e := email_key(c.email))}
    names = {n for f in booking if (n := f.meta_visitor)} | {n for c in customers.values() if (n := c.meta_visitor)}
    found = reads.get(
        [keys.ledger(project, c) for c in charges]
        + [keys.customer_link(project, c) for c in customer_ids]
        + [keys.payment(project, p) for p in sorted({f.payment_intent for f in booking if f.payment_intent})]
        + [keys.email_head(project, e) for e in sorted(emails)]
        + [keys.visitor(project, n) for n in sorted(names)]
    )
    booked, roots = {}, {}
    for item in found.values():
        if isinstance(item, LedgerItem):
            booked[item.charge_id] = ledger_record(item)
        elif isinstance(item, CustomerItem):
            roots[item.customer_id] = customer_root(item.customer_id, item)
    for customer in customer_ids:
        roots.setdefault(customer, customer_root(customer, None))
    return FirstRead(booked, roots)


@dataclass
class Split:
    """New charges: the scopes booked from the page's reads, and the scopes to decide whole."""

    following: list[ScopeWrites] = field(default_factory=list)
    whole: set[str] = field(default_factory=set)
    whole_charges: dict[str, ChargeFacts] = field(default_factory=dict)


def split(project: str, new: dict[str, ChargeFacts], read: FirstRead, reads: store.Reads) -> Split:
    state = State()
    pis = {f.payment_intent for f in new.values() if f.payment_intent}
    for item in reads.get(keys.payment(project, p) for p in sorted(pis)).values():
        if isinstance(item, PaymentItem):
            state.joins[item.payment_intent] = payment_join(item)
    on_joins = {s for join in state.joins.values() for s in join.sessions}
    for item in reads.get(keys.session(project, s) for s in sorted(on_joins)).values():
        if isinstance(item, SessionItem):
            state.sessions[item.session_id] = session_facts(item)
    names = {n for f in new.values() if (n := f.meta_visitor)}
    names |= {n for s in state.sessions.values() for n in (s.meta_visitor, s.client_reference_id) if n}
    names |= {n for r in read.roots.values() if (n := r.record.meta_visitor)}
    emails = {e for f in new.values() for e in (email_key(f.billing_email), email_key(f.receipt_email)) if e}
    emails |= {e for s in state.sessions.values() if (e := email_key(s.email))}
    emails |= {e for r in read.roots.values() if (e := email_key(r.record.email))}
    loading.read_names(state, project, names, emails, (), reads)

    by_customer: dict[str, list[ChargeFacts]] = {}
    out = Split()
    for f in new.values():
        if f.customer_id:
            by_customer.setdefault(f.customer_id, []).append(f)
        else:
            out.whole.add(scope_key(None, f.id))
            out.whole_charges[f.id] = f
    for customer, charges in sorted(by_customer.items()):
        writes = follow_root(state, read.roots[customer], charges)
        if writes is not None:
            out.following.append(writes)
            continue
        out.whole.add(scope_key(customer, charges[0].id))
        out.whole_charges.update((f.id, f) for f in charges)
    return out


def read_sessions(project: str, sessions: dict[str, SessionFacts], reads: store.Reads) -> State:
    """What a page of Checkout Sessions reads first, in batches: their PaymentIntents' joins, their
    customers' items and Checkout Completed placements, then the entries of the charges on the
    joins, and the names and email heads of the sessions and customers."""
    state = State(sessions=dict(sessions))
    pis = sorted({p for f in sessions.values() for p in f.payment_intents})
    with_customer = [f for f in sessions.values() if f.customer_id]
    found = reads.get(
        [keys.payment(project, p) for p in pis]
        + [keys.customer_link(project, c) for c in sorted({f.customer_id for f in with_customer if f.customer_id})]
        + [keys.customer_context(project, f.customer_id, f"{f.id}:completed") for f in with_customer if f.customer_id]
    )
    for item in found.values():
        if isinstance(item, PaymentItem):
            state.joins[item.payment_intent] = payment_join(item)
        elif isinstance(item, CustomerItem):
            state.roots[item.customer_id] = customer_root(item.customer_id, item)
        elif isinstance(item, ContextItem):
            customer = item.pk.rsplit("#CUS#", 1)[1]
            state.placed.setdefault(customer, {})[item.sk] = placed_from_item(item)
    paid = sorted({c for join in state.joins.values() for c in join.charges})
    for item in reads.get(keys.ledger(project, c) for c in paid).values():
        if isinstance(item, LedgerItem):
            state.ledger[item.charge_id] = ledger_record(item)
    names = {n for f in sessions.values() for n in (f.meta_visitor, f.client_reference_id) if n}
    names |= {n for r in state.roots.values() if (n := r.record.meta_visitor)}
    emails = {e for f in sessions.values() if (e := email_key(f.email))}
    emails |= {e for r in state.roots.values() if (e := email_key(r.record.email))}
    loading.read_names(state, project, names, emails, (), reads)
    return state


def paid(state: State, session: SessionFacts) -> dict[str, LedgerRecord]:
    """The booked charges on the session's PaymentIntents."""
    charges = {c for p in session.payment_intents for c in state.joins.get(p, PaymentJoin()).charges}
    return {c: state.ledger[c] for c in sorted(charges) if c in state.ledger}
