"""The attribution engine's entry points, one per kind of evidence (domain rules 1-4 and 6).

Each entry point reads what its decision needs (shared.revenue.loading, or a first batch read for
the fast paths), asks shared.revenue.decision for the intents, and has shared.revenue.writer commit
them. A decision that meets a concurrent one (a version it read moved) is decided again from fresh
reads; a webhook is a batch of one, and the same code books pages of charges.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import budget
from ..errors import DuplicateEvent, NotFound, ServiceUnavailable, StaleUpdate
from ..identity import VISITOR_METADATA_KEY, email_key, visitor_hint
from ..observability import Metric, count, logger
from . import keys, loading, page, resourcing, sourcing, store, writer
from .decision import (
    Arrivals,
    NeedProfiles,
    Outcome,
    State,
    book_on_link,
    book_refund,
    checkout_context,
    decide,
    follows_link,
    place_arrivals,
    record_session,
    scope_key,
    session_follows_link,
    session_recorded,
    sessions_follow_root,
)
from .intents import BookCharge, BookRefund, Decision, Intent, MoveCharge
from .items import LedgerItem, PaymentItem, SessionItem
from .loading import CustomerFetcher
from .models import ChargeFacts, CustomerRecord, SessionFacts
from .placement import ContextEvent, placed_from_item
from .plans import event_title, state_from_event
from .records import customer_root, ledger_record, payment_join, profile, session_facts
from .store import Found, Key, at

__all__ = [
    "CustomerFetcher",
    "IgnoredEvent",
    "Outcome",
    "PageOutcome",
    "on_charge",
    "on_charges_page",
    "on_invoice_paid",
    "on_session",
    "on_subscription",
    "on_subscription_read",
    "on_visitor_saved",
]

MAX_ATTEMPTS = budget.DECISION_ATTEMPTS
T = TypeVar("T")


@dataclass(frozen=True)
class PageOutcome:
    charges: int  # read
    booked: int  # new ones that book revenue (a few may have been booked meanwhile by a webhook)
    refunds: int  # booked ones whose refunds grew


class IgnoredEvent(Exception):
    """An event of the other mode than the connected key's: acknowledged, never booked."""


def _retrying(what: str, attempt_once: Callable[[], Outcome]) -> Outcome:
    try:
        return _attempts(what, attempt_once)
    except DuplicateEvent:
        return Outcome("duplicate")


def _attempts(what: str, attempt_once: Callable[[], T]) -> T:
    """Decide again from fresh reads while a concurrent decision changed what this one read."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return attempt_once()
        except StaleUpdate as exc:
            logger.info("decision raced, retrying", what=what, conflict=str(exc), attempt=attempt)
            time.sleep(random.uniform(0, budget.DECISION_JITTER_SECONDS * 2**attempt))  # jitter, not security
    raise ServiceUnavailable("The decision kept conflicting with concurrent writes; retry later.")


def _first_read(project: str, event: dict[str, Any], wanted: list[Key]) -> Found | None:
    """The integration and the event's first items in one TransactGetItems; None for a duplicate.
    Raises NotFound (not connected) or IgnoredEvent (the other mode) before anything else happens."""
    mark = keys.event_mark(project, event["id"])
    found, integration = store.first_read([mark, *wanted], project)
    if integration is None or integration.status != "connected":
        raise NotFound("No Stripe integration is connected for this project.")
    if bool(event.get("livemode")) != (integration.mode == "live"):
        raise IgnoredEvent()
    if at(found, mark) is not None:
        count(Metric.DUPLICATE_EVENTS)
        return None
    return found


def _decide(
    project: str,
    scopes: set[str],
    arrivals: Arrivals,
    fetch_customer: CustomerFetcher,
    customers: dict[str, CustomerRecord] | None = None,
    reads: store.Reads | None = None,
) -> Outcome:
    """Load the scopes, decide on all their evidence, commit."""
    state = loading.load(project, scopes, arrivals, customers or {}, fetch_customer, reads)
    return _commit(project, state, lambda: decide(state, scopes, arrivals))


def _commit(project: str, state: State, deciding: Callable[[], tuple[Decision, Outcome]]) -> Outcome:
    decision, outcome = _deciding(project, state, deciding)
    writer.commit(project, sourcing.attach(project, decision, state.profiles))
    _report(decision)
    return outcome


def _deciding(project: str, state: State, deciding: Callable[[], tuple[Decision, Outcome]]) -> tuple[Decision, Outcome]:
    try:
        return deciding()
    except NeedProfiles as need:  # a plan set on a visitor found through an email head: read it, decide again
        loading.read_profiles(state, project, need.visitors)
        return deciding()


def _report(decision: Decision) -> None:
    _report_intents([intent for scope in decision.scopes for unit in scope.units for intent in unit])


def _report_intents(intents: list[Intent]) -> None:
    """Metrics and a log line for the money a committed transaction wrote."""
    for intent in intents:
        if isinstance(intent, BookCharge):
            record = intent.record
            count(Metric.CHARGES_BOOKED)
            count(Metric.tier(record.tier))
            logger.info(
                "charge booked", charge_id=record.facts.id, tier=record.tier, attributed=bool(record.visitor_id)
            )
        elif isinstance(intent, MoveCharge):
            count(Metric.CHARGES_REATTRIBUTED)
            logger.info(
                "charge re-attributed",
                charge_id=intent.after.facts.id,
                tier=intent.after.tier,
                attributed=bool(intent.after.visitor_id),
            )
        elif isinstance(intent, BookRefund):
            count(Metric.REFUNDS_BOOKED)
            logger.info("refund booked", charge_id=intent.after.facts.id, amount=-intent.entry.revenue)


# ---- charges --------------------------------------------------------------------------------------


def on_charge(project: str, event: dict[str, Any], fetch_customer: CustomerFetcher) -> Outcome:
    """charge.succeeded / charge.captured / charge.refunded: book it, or book its new refunds."""
    charge = event["data"]["object"]
    facts = ChargeFacts.from_stripe(charge)
    expanded = _expanded_customer(charge)
    return _retrying(facts.id, lambda: _charge_once(project, event, facts, expanded, fetch_customer))


def _expanded_customer(obj: dict[str, Any]) -> CustomerRecord | None:
    """The customer of a charge or session, when Stripe sent it expanded (list pages)."""
    customer = obj.get("customer")
    if not isinstance(customer, dict) or "id" not in customer:
        return None
    return CustomerRecord(
        customer["id"],
        email=customer.get("email") or "",
        meta_visitor=visitor_hint((customer.get("metadata") or {}).get(VISITOR_METADATA_KEY)),
    )


def _charge_once(
    project: str,
    event: dict[str, Any],
    facts: ChargeFacts,
    expanded: CustomerRecord | None,
    fetch_customer: CustomerFetcher,
) -> Outcome:
    ledger = keys.ledger(project, facts.id)
    root_key = keys.customer_link(project, facts.customer_id) if facts.customer_id else None
    join_key = keys.payment(project, facts.payment_intent) if facts.payment_intent else None
    wanted = [k for k in (ledger, root_key, join_key) if k]
    items = _first_read(project, event, wanted)
    if items is None:
        return Outcome("duplicate")
    root = customer_root(facts.customer_id, at(items, root_key)) if facts.customer_id and root_key else None
    scope = {scope_key(facts.customer_id, facts.id)}
    booked = at(items, ledger)
    if booked is not None:
        if root is not None and root.dirty:  # a move was cut short: finish it (no event mark: this
            _decide(project, scope, Arrivals(), fetch_customer)  # event still books its refund below)
            booked = at(_first_read(project, event, [ledger]) or {}, ledger)
            if booked is None:
                return Outcome("duplicate")
        when = int(event.get("created") or time.time())
        decision, outcome = book_refund(ledger_record(booked), facts, when, event["id"])
        writer.commit(project, sourcing.attach(project, decision))
        _report(decision)
        return outcome
    if not facts.books_revenue:
        return Outcome("not_revenue")  # uncaptured, pending or failed: nothing until captured
    join = payment_join(at(items, join_key) if join_key else None)
    if root is not None and follows_link(root, facts, join):
        decision, outcome = book_on_link(root, facts, join, event["id"])
        writer.commit(project, sourcing.attach(project, decision))
        _report(decision)
        return outcome
    arrivals = Arrivals(charges={facts.id: facts}, event_id=event["id"])
    customers = {expanded.customer_id: expanded} if expanded else {}
    return _decide(project, scope, arrivals, fetch_customer, customers, store.Reads(items, wanted))


def on_charges_page(
    project: str, charges: list[dict[str, Any]], fetch_customer: CustomerFetcher, seen_at: int
) -> PageOutcome:
    """Charges read from Stripe's list (backfill, reconcile), customers expanded: the booked ones'
    newer refunds as refund deltas (dated `seen_at`, when we learnt of them), then the new ones that
    book revenue in one decision over their scopes (shared.revenue.page: a few batched reads for the
    page, transactions packed by the writer). A page read again books nothing twice."""
    facts = {str(c["id"]): ChargeFacts.from_stripe(c) for c in charges}
    customers = {record.customer_id: record for c in charges if (record := _expanded_customer(c))}
    return _attempts("page", lambda: _page_once(project, facts, customers, fetch_customer, seen_at))


def _page_once(
    project: str,
    facts: dict[str, ChargeFacts],
    customers: dict[str, CustomerRecord],
    fetch_customer: CustomerFetcher,
    seen_at: int,
) -> PageOutcome:
    reads = store.Reads()
    read = page.first_read(project, facts, customers, reads)
    refunds = [f for f in facts.values() if f.id in read.booked and f.refunded > read.booked[f.id].refunded]
    mid_move = {scope_key(f.customer_id, f.id) for f in refunds if f.customer_id and read.roots[f.customer_id].dirty}
    if mid_move:  # a move was cut short: finish it, then read the page again (the next attempt)
        _decide(project, mid_move, Arrivals(), fetch_customer)
        raise StaleUpdate("a refunded charge's customer was mid-move")
    if refunds:
        decision = Decision(
            scopes=[s for f in refunds for s in book_refund(read.booked[f.id], f, seen_at, None)[0].scopes]
        )
        writer.commit_each(project, sourcing.attach(project, decision, reads=reads), _report_intents)
        reads.forget(keys.ledger(project, f.id) for f in refunds)
    new = {charge_id: f for charge_id, f in facts.items() if charge_id not in read.booked and f.books_revenue}
    split = page.split(project, new, read, reads)
    decision = Decision(scopes=split.following)
    if split.whole:
        arrivals = Arrivals(charges=split.whole_charges)
        state = loading.load(project, split.whole, arrivals, customers, fetch_customer, reads)
        whole, _ = _deciding(project, state, lambda: decide(state, split.whole, arrivals))
        decision = Decision(scopes=decision.scopes + whole.scopes, first=whole.first, last=whole.last)
    writer.commit_each(project, sourcing.attach(project, decision, reads=reads), _report_intents)
    return PageOutcome(charges=len(facts), booked=len(new), refunds=len(refunds))


# ---- Checkout Sessions ------------------------------------------------------------------------------


def on_session(
    project: str,
    event: dict[str, Any],
    fetch_customer: CustomerFetcher,
    invoice_payment_intents: Callable[[str], tuple[str, ...]],
) -> Outcome:
    """checkout.session.completed / async_payment_succeeded: tier-1 evidence for what it paid."""
    session = event["data"]["object"]
    if session.get("status") != "complete":
        return Outcome("ignored")
    paid: list[tuple[str, ...]] = []  # the first invoice's PaymentIntents, asked of Stripe once

    def payment_intents() -> tuple[str, ...]:
        if not paid:
            own = session.get("payment_intent")
            invoice = session.get("invoice")
            if own or not invoice:
                paid.append(())
            else:
                paid.append(invoice_payment_intents(invoice if isinstance(invoice, str) else invoice["id"]))
        return paid[0]

    return _retrying(str(session["id"]), lambda: _session_once(project, event, payment_intents, fetch_customer))


def _session_once(
    project: str,
    event: dict[str, Any],
    payment_intents: Callable[[], tuple[str, ...]],
    fetch_customer: CustomerFetcher,
) -> Outcome:
    session = event["data"]["object"]
    own = _id(session.get("payment_intent"))
    customer = _id(session.get("customer"))
    names = {
        n
        for n in (
            visitor_hint((session.get("metadata") or {}).get(VISITOR_METADATA_KEY)),
            visitor_hint(session.get("client_reference_id")),
        )
        if n
    }
    wanted = [keys.payment(project, own)] if own else []
    if customer:
        wanted.append(keys.customer_link(project, customer))
        wanted.append(keys.customer_context(project, customer, f"{session['id']}:completed"))
    wanted += [keys.visitor(project, n) for n in sorted(names)]
    items = _first_read(project, event, wanted)
    if items is None:
        return Outcome("duplicate")
    reads = store.Reads(items, wanted)
    facts = SessionFacts.from_stripe(session, payment_intents())  # Stripe only after the livemode check
    found = list(reads.get([keys.payment(project, p) for p in facts.payment_intents]).values())
    state = State(joins={item.payment_intent: payment_join(item) for item in found if isinstance(item, PaymentItem)})
    for name in names:
        item = at(items, keys.visitor(project, name))
        (state.known if item is not None else state.unknown).add(name)
    paid = {c for join in state.joins.values() for c in join.charges}
    others = {s for join in state.joins.values() for s in join.sessions} - {facts.id}
    records = []
    for item in reads.get(
        [keys.ledger(project, c) for c in sorted(paid)] + [keys.session(project, s) for s in sorted(others)]
    ).values():
        if isinstance(item, LedgerItem):
            records.append(ledger_record(item))
        elif isinstance(item, SessionItem):
            state.sessions[item.session_id] = session_facts(item)
    if customer:
        root = customer_root(customer, at(items, keys.customer_link(project, customer)))
        if session_follows_link(root, facts, records, frozenset(state.known), bool(state.sessions)):
            state.roots[customer] = root
            state.ledger = {r.facts.id: r for r in records}
            placed = at(items, keys.customer_context(project, customer, f"{facts.id}:completed"))
            state.placed[customer] = {placed.sk: placed_from_item(placed)} if placed else {}
            return _commit(project, state, lambda: record_session(state, root, facts, records, event["id"]))
    scopes = {f"CUS#{facts.customer_id}"} if facts.customer_id else {f"CS#{facts.id}"}
    scopes |= {scope_key(r.facts.customer_id, r.facts.id) for r in records}
    contexts = ((facts.customer_id, checkout_context(facts)),) if facts.customer_id else ()
    arrivals = Arrivals(sessions={facts.id: facts}, contexts=contexts, event_id=event["id"])
    return _decide(project, scopes, arrivals, fetch_customer, reads=reads)


def on_sessions_page(
    project: str,
    sessions: list[dict[str, Any]],
    fetch_customer: CustomerFetcher,
    invoice_payment_intents: Callable[[str], tuple[str, ...]],
) -> int:
    """Completed Checkout Sessions read from Stripe's list (backfill), customers expanded: one
    decision over every scope they can change (their customers, or their own for a session without
    customer, and the scopes of the charges they paid), as the webhook decides one session; stored
    customers' sessions that can change no owner without a Query (shared.revenue.page). A session
    found recorded whole is skipped, so a page read again (or retried) changes nothing twice;
    returns how many sessions the page had."""
    complete = [s for s in sessions if s.get("status") == "complete"]
    if not complete:
        return 0
    customers = {record.customer_id: record for s in complete if (record := _expanded_customer(s))}
    facts: dict[str, SessionFacts] = {}
    for session in complete:  # a subscription-mode session's first invoice is asked of Stripe once
        invoice, own = _id(session.get("invoice")), _id(session.get("payment_intent"))
        paid = invoice_payment_intents(invoice) if invoice and not own else ()
        facts[str(session["id"])] = SessionFacts.from_stripe(session, paid)
    _attempts("sessions", lambda: _sessions_once(project, facts, customers, fetch_customer))
    return len(facts)


def _sessions_once(
    project: str,
    facts: dict[str, SessionFacts],
    customers: dict[str, CustomerRecord],
    fetch_customer: CustomerFetcher,
) -> Outcome:
    reads = store.Reads()
    state = page.read_sessions(project, facts, reads)
    facts = {i: f for i, f in facts.items() if not session_recorded(state, f)}  # (a retry: what is left)
    if not facts:
        return Outcome("resolved")
    by_customer: dict[str, list[SessionFacts]] = {}
    for f in facts.values():
        if f.customer_id:
            by_customer.setdefault(f.customer_id, []).append(f)
    following = {
        customer: writes
        for customer, sessions in sorted(by_customer.items())
        if customer in state.roots and (writes := sessions_follow_root(state, state.roots[customer], sessions))
    }
    rest = {i: f for i, f in facts.items() if f.customer_id not in following}
    scopes = {f"CUS#{f.customer_id}" if f.customer_id else f"CS#{f.id}" for f in rest.values()}
    scopes |= {scope_key(r.facts.customer_id, c) for f in rest.values() for c, r in page.paid(state, f).items()}
    # a scope decided whole is never also written from the page's reads
    following = {c: w for c, w in following.items() if f"CUS#{c}" not in scopes}
    rest = {i: f for i, f in facts.items() if f.customer_id not in following}
    scopes |= {f"CUS#{f.customer_id}" for f in rest.values() if f.customer_id}
    decision = Decision(scopes=list(following.values()))
    if rest:
        contexts = tuple((f.customer_id, checkout_context(f)) for f in rest.values() if f.customer_id)
        arrivals = Arrivals(sessions=rest, contexts=contexts)
        loaded = loading.load(project, scopes, arrivals, customers, fetch_customer, reads)
        whole, _ = _deciding(project, loaded, lambda: decide(loaded, scopes, arrivals))
        decision = Decision(scopes=decision.scopes + whole.scopes, first=whole.first, last=whole.last)
    writer.commit_each(project, sourcing.attach(project, decision, reads=reads), _report_intents)
    return Outcome("resolved")


# ---- context events and subscriptions ---------------------------------------------------------------------


def on_invoice_paid(project: str, event: dict[str, Any], fetch_customer: CustomerFetcher) -> Outcome:
    """invoice.paid: an "Invoice Paid" event (revenue 0) on the customer's visitor; money is on charges."""
    invoice = event["data"]["object"]
    customer = _id(invoice.get("customer"))
    if not customer:
        return Outcome("ignored")
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or event.get("created") or invoice["created"]
    context = ContextEvent(
        event_key=f"{invoice['id']}:paid",
        at=int(paid_at),
        type="Invoice Paid",
        amount=invoice.get("amount_paid"),
        currency=invoice.get("currency"),
        stripe_object_id=invoice["id"],
    )
    arrivals = Arrivals(contexts=((customer, context),), event_id=event["id"])
    return _retrying(invoice["id"], lambda: _context_once(project, event, customer, arrivals, fetch_customer))


def on_subscription(project: str, event: dict[str, Any], fetch_customer: CustomerFetcher) -> Outcome:
    """customer.subscription.*: the visitor's plan (newest state wins) and a timeline event."""
    subscription = event["data"]["object"]
    state = state_from_event(event["type"], subscription, event.get("created"))
    if not state.customer_id:
        return Outcome("ignored")
    context = ContextEvent(
        event_key=f"{state.subscription_id}:{event['type'].rsplit('.', 1)[1]}:{event.get('created')}",
        at=int(event.get("created") or subscription["created"]),
        type=event_title(event["type"]),
        amount=state.amount,
        currency=state.currency,
        stripe_object_id=state.subscription_id,
    )
    customer = state.customer_id
    arrivals = Arrivals(contexts=((customer, context),), subscriptions=(state,), event_id=event["id"])
    return _retrying(state.subscription_id, lambda: _context_once(project, event, customer, arrivals, fetch_customer))


def on_subscription_read(
    project: str, subscription: dict[str, Any], event: dict[str, Any], fetch_customer: CustomerFetcher
) -> Outcome:
    """A subscription read from Stripe's list (backfill): its state for the visitor's plan, ordered
    as a read (plans.order_key), and no timeline event: what it would say depends on when it was
    read. `event` stands for the read (its id dedups it, its livemode is checked)."""
    state = state_from_event(None, subscription, None)
    if not state.customer_id:
        return Outcome("ignored")
    customer = state.customer_id
    arrivals = Arrivals(subscriptions=(state,), event_id=event["id"])
    return _retrying(state.subscription_id, lambda: _context_once(project, event, customer, arrivals, fetch_customer))


def _context_once(
    project: str, event: dict[str, Any], customer: str, arrivals: Arrivals, fetch_customer: CustomerFetcher
) -> Outcome:
    """A customer whose facts are known and whose partition is not mid-move: place just these arrivals
    on its link as stored (3 reads at most); otherwise decide the whole customer."""
    placements = [keys.customer_context(project, customer, c.event_key) for _, c in arrivals.contexts]
    placements += [keys.customer_subscription(project, customer, s.subscription_id) for s in arrivals.subscriptions]
    named = {s.metadata_visitor_id for s in arrivals.subscriptions if s.metadata_visitor_id}
    wanted = [keys.customer_link(project, customer), *placements, *(keys.visitor(project, n) for n in sorted(named))]
    items = _first_read(project, event, wanted)
    if items is None:
        return Outcome("duplicate")
    root = customer_root(customer, at(items, keys.customer_link(project, customer)))
    if not root.fetched or root.dirty:
        return _decide(project, {f"CUS#{customer}"}, arrivals, fetch_customer, reads=store.Reads(items, wanted))
    state = State(roots={customer: root})
    state.placed[customer] = {}
    for key in placements:
        item = at(items, key)
        if item is not None:
            state.placed[customer][item.sk] = placed_from_item(item)
    for name in named:
        item = at(items, keys.visitor(project, name))
        if item is not None:
            state.known.add(name)
            state.profiles[name] = profile(item)
        else:
            state.unknown.add(name)
    names = {root.record.meta_visitor} - {None}
    emails = {e for e in (email_key(root.record.email),) if e and root.link is None}
    visitors = {root.link.visitor_id} if root.link else set()
    visitors |= {p.visitor_id for p in state.placed[customer].values() if p.visitor_id}
    loading.read_names(state, project, {n for n in names if n}, emails, visitors)
    return _commit(project, state, lambda: place_arrivals(state, customer, arrivals))


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# ---- visitors -------------------------------------------------------------------------------------------


def on_source_changed(project: str, visitor_id: str) -> int:
    """A visitor's acquisition source changed: its entries and their rollups follow (resourcing)."""
    return _attempts("resource", lambda: resourcing.resource_once(project, visitor_id))


def on_visitor_saved(
    project: str, visitor_id: str, created: bool, emails: Iterable[str], fetch_customer: CustomerFetcher
) -> Outcome:
    """A visitor appeared or changed email: re-resolve every scope that named it or uses the email."""
    scopes: set[str] = set()
    pks = [keys.visitor_ref_pk(project, visitor_id)] if created else []
    pks += [keys.email_pk(project, e) for e in emails]
    for pk in pks:
        for item in store.query_partition(pk, keys.REF_PREFIX):
            scopes.add(item.sk.removeprefix(keys.REF_PREFIX))
    if not scopes:
        return Outcome("resolved")
    return _retrying(visitor_id, lambda: _decide(project, scopes, Arrivals(), fetch_customer))
