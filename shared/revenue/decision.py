"""Decisions (domain rules 1-4 and 6): from what was read and what arrived, the intents to write.

Pure functions: no I/O. `decide` re-resolves whole scopes (a customer with all its evidence, or a
charge without customer) and returns every difference as intents; the other functions are the fast
paths, each exactly what `decide` would give in its case, from fewer reads. Every decision that
writes into a customer's partition saves the customer item (its version bumped, `SaveRoot`), so two
decisions that read the same customer never both commit on what the other changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from ..errors import StaleUpdate
from ..identity import email_key
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
    PlaceGuestCheckout,
    PlaceSubscription,
    SaveRoot,
    SaveSession,
    ScopeWrites,
    Unit,
)
from .models import UNATTRIBUTED, Attribution, ChargeFacts, CustomerRecord, SessionFacts
from .placement import ContextEvent, Placed, PlanChanges, owner_of, place
from .plans import SubscriptionState, merge
from .records import CustomerRoot, LedgerRecord, PaymentJoin, Profile, new_ledger_record
from .resolve import (
    Scope,
    email_visitor,
    paying_session,
    payment_emails,
    resolve,
    session_visitor,
    tier1_visitor,
)
from .timeline import refund_event


@dataclass(frozen=True)
class Outcome:
    result: str  # booked | refund_booked | already_booked | resolved | duplicate | not_revenue | ignored
    visitor_id: str | None = None
    tier: int | None = None


class NeedProfiles(Exception):
    """The decision sets the plan of visitors whose profiles were not read: read them, decide again."""

    def __init__(self, visitors: set[str]) -> None:
        super().__init__(", ".join(sorted(visitors)))
        self.visitors = visitors


def scope_key(customer_id: str | None, charge_id: str) -> str:
    return f"CUS#{customer_id}" if customer_id else f"CH#{charge_id}"


@dataclass
class State:
    """What a decision read: the scopes' evidence and everything resolution looks up."""

    roots: dict[str, CustomerRoot] = field(default_factory=dict)  # facts fetched now merged in
    fetched_now: set[str] = field(default_factory=set)
    charges: dict[str, set[str]] = field(default_factory=dict)  # customer -> its charge ids
    ledger: dict[str, LedgerRecord] = field(default_factory=dict)
    sessions: dict[str, SessionFacts] = field(default_factory=dict)
    joins: dict[str, PaymentJoin] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    heads: dict[str, str] = field(default_factory=dict)
    head_versions: dict[str, int | None] = field(default_factory=dict)
    placed: dict[str, dict[str, Placed]] = field(default_factory=dict)  # customer -> sk -> placement
    profiles: dict[str, Profile] = field(default_factory=dict)
    guests: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)  # guest session -> placed, version


@dataclass(frozen=True)
class Arrivals:
    """The evidence a decision brings: new charges, sessions, context events, subscription states."""

    charges: dict[str, ChargeFacts] = field(default_factory=dict)
    sessions: dict[str, SessionFacts] = field(default_factory=dict)
    contexts: tuple[tuple[str, ContextEvent], ...] = ()
    subscriptions: tuple[SubscriptionState, ...] = ()
    event_id: str | None = None


# ---- whole scopes ----------------------------------------------------------------------------------


def decide(state: State, scopes: Iterable[str], arrivals: Arrivals) -> tuple[Decision, Outcome]:
    """Re-resolve the scopes on all their evidence; every difference from what is stored, as intents."""
    _merge_arrivals(state, arrivals)
    decision = Decision()
    plans = PlanChanges()
    outcome = Outcome("resolved")
    extra: dict[str, list[Intent]] = {}
    for session in arrivals.sessions.values():
        evidence = _session_evidence(session, state)
        if session.customer_id:  # written with its customer's item: a page can tell it is done
            evidence.append(AddSessionMember(session.customer_id, session.id))
            extra.setdefault(f"CUS#{session.customer_id}", []).extend(evidence)
        else:
            decision.first += evidence
    if set(extra) - set(scopes):
        raise ValueError("a session's customer must be one of the scopes decided")
    if set(arrivals.charges) & set(state.ledger):  # booked by a concurrent decision since the first read
        raise StaleUpdate("the charge was booked meanwhile")
    for key in sorted(scopes):
        if key.startswith("CS#"):
            guest = _decide_guest_checkout(state, key.removeprefix("CS#"))
            if guest is not None:
                decision.scopes.append(guest)
            continue
        writes, booked = _decide_scope(state, key, arrivals.charges, plans, extra.get(key, []))
        outcome = booked or outcome
        if writes is not None:
            decision.scopes.append(writes)
    _set_plans(decision, plans, state.profiles)
    if arrivals.event_id:
        decision.last.append(MarkEvent(arrivals.event_id))
    return decision, outcome


def _merge_arrivals(state: State, arrivals: Arrivals) -> None:
    """New context events and subscription states join the customer's placements (newest state wins)."""
    for customer_id, context in arrivals.contexts:
        sk = "X#" + context.event_key
        state.placed.setdefault(customer_id, {}).setdefault(sk, Placed(context, None, stored=False))
    for subscription in arrivals.subscriptions:
        if subscription.customer_id:
            current = state.placed.setdefault(subscription.customer_id, {})
            sk = "SUB#" + subscription.subscription_id
            before = current.get(sk)
            merged = merge(
                before.value if before and isinstance(before.value, SubscriptionState) else None, subscription
            )
            if before is None or merged != before.value:
                current[sk] = Placed(merged, before.visitor_id if before else None, stored=False)


def _decide_scope(
    state: State, key: str, new_charges: dict[str, ChargeFacts], plans: PlanChanges, extra: list[Intent]
) -> tuple[ScopeWrites | None, Outcome | None]:
    customer_id = key.removeprefix("CUS#") if key.startswith("CUS#") else None
    root = state.roots.get(customer_id) if customer_id else None
    if customer_id:
        ids = state.charges.get(customer_id, set()) | {
            c.id for c in new_charges.values() if c.customer_id == customer_id
        }
    else:
        ids = {key.removeprefix("CH#")}
    charges: dict[str, ChargeFacts] = {}
    for charge_id in ids:
        if charge_id in state.ledger:
            charges[charge_id] = state.ledger[charge_id].facts
        elif charge_id in new_charges:
            charges[charge_id] = new_charges[charge_id]
    known = frozenset(state.known)
    scope = Scope(root.record if root else None, charges, dict(state.sessions), known, state.heads)
    resolution = resolve(scope)
    sessions = list(state.sessions.values())

    writes = ScopeWrites(root=SaveRoot(root, root.record, root.fetched, resolution.link) if root is not None else None)
    # What the decision read must still hold when it is written (the customer item's version is
    # checked by SaveRoot itself).
    checks: list[Intent] = [ExpectHead(e, state.head_versions.get(e)) for e in sorted(_scope_emails(scope, sessions))]
    checks += [ExpectNoVisitor(name) for name in sorted(state.unknown)]
    if root is None:
        # A customer's joins are guarded by its item: a session that joins one of its charges decides
        # the customer too (and bumps it); a charge without customer has only its entry and joins.
        checks += [ExpectJoin(pi, join.version) for pi, join in sorted(state.joins.items())]
    writes.first += extra
    if root is not None:
        old = root.link.visitor_id if root.link else None
        new = resolution.link.visitor_id if resolution.link else None
        if old != new:
            writes.first += [LinkCustomer(v, root.record.customer_id, v == new) for v in (old, new) if v]
        if root.version is None or root.record.customer_id in state.fetched_now:
            writes.first += _customer_refs(key, root)

    outcome: Outcome | None = None
    for charge_id, facts in sorted(charges.items()):
        owner = resolution.charges[charge_id]
        if charge_id not in state.ledger:
            record = new_ledger_record(facts, owner.visitor_id, owner.tier)
            join = state.joins.get(facts.payment_intent or "", PaymentJoin()) if facts.payment_intent else None
            writes.units.append(
                _booking(record, key, join, root.record if root else None, paying_session(facts, sessions))
            )
            outcome = Outcome("booked", owner.visitor_id, owner.tier)
            continue
        record = state.ledger[charge_id]
        if (record.visitor_id, record.tier) != (owner.visitor_id, owner.tier):
            moved = replace(record, visitor_id=owner.visitor_id, tier=owner.tier, version=record.version + 1)
            writes.units.append((MoveCharge(record, moved),))
        elif root is None:
            checks.append(ExpectLedger(charge_id, record.version))
    if root is not None:
        for placed in state.placed.get(root.record.customer_id, {}).values():
            target = owner_of(placed.value, root.record, resolution.link, state.sessions, known, state.heads)
            if target != placed.visitor_id or not placed.stored:
                intent = place(root.record.customer_id, placed, target, plans)
                if intent is not None:
                    writes.units.append((intent,))

    root_changed = root is not None and (
        root.dirty
        or root.version is None
        or resolution.link != root.link
        or root.record.customer_id in state.fetched_now
    )
    if not writes.first and not writes.units and not root_changed:
        return None, outcome  # nothing to write: nothing depends on what was read
    writes.first = checks + writes.first
    return writes, outcome


def _booking(
    record: LedgerRecord,
    scope: str,
    join: PaymentJoin | None,
    customer: CustomerRecord | None,
    session: SessionFacts | None,
) -> Unit:
    """A new ledger entry, and the references that re-resolve its scope when a visitor appears or an
    email's head changes (visitor ids that name the payment may be unknown yet)."""
    facts = record.facts
    emails = payment_emails(facts, session, customer)
    names = {facts.meta_visitor}
    if session is not None:
        names |= {session.meta_visitor, session.client_reference_id}
    refs: list[Intent] = [AddRef(scope, email=e) for e in emails]
    refs += [AddRef(scope, visitor_id=n) for n in sorted(n for n in names if n)]
    return (BookCharge(record, join), *refs)


def _customer_refs(scope: str, root: CustomerRoot) -> list[Intent]:
    refs: list[Intent] = []
    if email := email_key(root.record.email):
        refs.append(AddRef(scope, email=email))
    if root.record.meta_visitor:
        refs.append(AddRef(scope, visitor_id=root.record.meta_visitor))
    return refs


def _scope_emails(scope: Scope, sessions: list[SessionFacts]) -> set[str]:
    """The emails the decision went by: each payment's, and the customer's (placements use it)."""
    emails = {e for e in (email_key(scope.customer.email if scope.customer else None),) if e}
    for charge in scope.charges.values():
        emails |= set(payment_emails(charge, paying_session(charge, sessions), scope.customer))
    return emails


def _session_evidence(session: SessionFacts, state: State) -> list[Intent]:
    """A new session: stored, joined to what it paid, referenced by the scopes it can change."""
    intents: list[Intent] = [SaveSession(session)]
    scopes = {f"CUS#{session.customer_id}"} if session.customer_id else set()
    for pi in session.payment_intents:
        join = state.joins.get(pi, PaymentJoin())
        intents.append(JoinPayment(pi, join, session=session.id))
        for charge_id in join.charges:
            record = state.ledger.get(charge_id)
            scopes.add(scope_key(record.facts.customer_id if record else None, charge_id))
    if not session.customer_id:  # no customer to follow: its Checkout Completed is its own scope
        scopes.add(f"CS#{session.id}")
    for scope in sorted(scopes):
        if email := email_key(session.email):
            intents.append(AddRef(scope, email=email))
        for name in sorted({n for n in (session.meta_visitor, session.client_reference_id) if n}):
            intents.append(AddRef(scope, visitor_id=name))
    return intents


def _decide_guest_checkout(state: State, session_id: str) -> ScopeWrites | None:
    """A customer-less session's Checkout Completed shows on the visitor its own evidence names, else
    on its email's head (re-decided when either appears or changes)."""
    session = state.sessions.get(session_id)
    if session is None or session.customer_id:
        return None
    placed, version = state.guests.get(session_id, (None, None))
    email = email_key(session.email)
    target = session_visitor(session, frozenset(state.known)) or (state.heads.get(email) if email else None)
    if version is not None and target == placed:
        return None
    checks: list[Intent] = [ExpectHead(email, state.head_versions.get(email))] if email else []
    names = {n for n in (session.meta_visitor, session.client_reference_id) if n}
    checks += [ExpectNoVisitor(n) for n in sorted(names & state.unknown)]
    context = checkout_context(session)
    move = PlaceGuestCheckout(session_id, asdict(context), context.timeline(), placed, target, version)
    return ScopeWrites(root=None, first=checks, units=[(move,)])


def checkout_context(session: SessionFacts) -> ContextEvent:
    return ContextEvent(
        event_key=f"{session.id}:completed",
        at=session.created,
        type="Checkout Completed",
        amount=session.amount_total,
        currency=session.currency,
        stripe_object_id=session.id,
        session_id=session.id,
    )


def _set_plans(decision: Decision, plans: PlanChanges, profiles: dict[str, Profile]) -> None:
    """The plans go with the first scope that moves a subscription (one condition per visitor)."""
    if not plans.visitors():
        return
    missing = plans.visitors() - set(profiles)
    if missing:
        raise NeedProfiles(missing)
    target = next(s for s in decision.scopes if any(_moves_subscription(u) for u in s.units))
    target.first += plans.plans(profiles)


def _moves_subscription(unit: Unit) -> bool:
    return any(isinstance(i, PlaceSubscription) for i in unit)


# ---- fast paths --------------------------------------------------------------------------------------


def follows_link(root: CustomerRoot, facts: ChargeFacts, join: PaymentJoin) -> bool:
    """A later charge of a linked customer with no evidence of its own: tier 3, nothing else can change
    (what `decide` would give, without reading the customer's other charges)."""
    return (
        root.link is not None
        and root.fetched
        and not root.dirty
        and root.record.meta_visitor is None
        and facts.meta_visitor is None
        and not join.sessions
        and (facts.created, facts.id) > root.link.evidence
    )


def book_on_link(root: CustomerRoot, facts: ChargeFacts, join: PaymentJoin, event_id: str) -> tuple[Decision, Outcome]:
    assert root.link is not None
    visitor = root.link.visitor_id
    record = new_ledger_record(facts, visitor, 3)
    writes = ScopeWrites(root=SaveRoot(root, root.record, root.fetched, root.link))
    writes.units.append(
        _booking(record, f"CUS#{root.record.customer_id}", join if facts.payment_intent else None, root.record, None)
    )
    return Decision(scopes=[writes], last=[MarkEvent(event_id)]), Outcome("booked", visitor, 3)


def follow_root(state: State, root: CustomerRoot, charges: Iterable[ChargeFacts]) -> ScopeWrites | None:
    """New charges of a stored customer that can change nothing else in it, booked without reading
    its other charges (what `decide` would give); None: the customer must be decided whole.

    `state` holds the joins of the charges' PaymentIntents, the sessions on them, and which visitors
    their evidence names and the heads of their emails. Of a linked customer, a charge later than
    the link's evidence cannot move the link, nor can one without evidence of its own (steps 1 and
    3): it is its own tier-1 visitor's or the link's, tier 3. Of an unlinked customer, a charge
    without evidence stays unattributed (one with evidence would become the link)."""
    if root.version is None or not root.fetched or root.dirty:
        return None
    customer, link = root.record, root.link
    scope = f"CUS#{customer.customer_id}"
    known = frozenset(state.known)
    writes = ScopeWrites(root=SaveRoot(root, customer, True, link))
    emails: set[str] = set()
    names: set[str] = set()
    for facts in sorted(charges, key=lambda f: f.id):
        session = paying_session(facts, state.sessions.values())
        own = tier1_visitor(facts, session, customer, known)
        by_email = email_visitor(payment_emails(facts, session, customer), state.heads)
        later = link is not None and (facts.created, facts.id) > link.evidence
        owner: Attribution
        if link is None:
            if own or by_email:
                return None
            owner = UNATTRIBUTED
        elif own and later:
            owner = Attribution(own, 1)
        elif later or not (own or by_email):
            owner = Attribution(link.visitor_id, 3)
        else:
            return None
        if not later:  # a head appearing for one of its emails would make it evidence
            emails |= set(payment_emails(facts, session, customer))
        names |= {n for n in (facts.meta_visitor, customer.meta_visitor) if n}
        if session is not None:
            names |= {n for n in (session.meta_visitor, session.client_reference_id) if n}
        record = new_ledger_record(facts, owner.visitor_id, owner.tier)
        join = state.joins.get(facts.payment_intent, PaymentJoin()) if facts.payment_intent else None
        stored = _stored_refs(scope, customer, session)
        writes.units.append(tuple(i for i in _booking(record, scope, join, customer, session) if i not in stored))
    writes.first = [ExpectHead(e, state.head_versions.get(e)) for e in sorted(emails)]
    writes.first += [ExpectNoVisitor(n) for n in sorted(names & state.unknown)]
    return writes


def sessions_follow_root(state: State, root: CustomerRoot, sessions: Iterable[SessionFacts]) -> ScopeWrites | None:
    """New sessions of a stored customer that can change no charge's owner nor the link, recorded
    without reading the customer's other charges (what `decide` would give); None: decide it whole.

    Such a session names no visitor of the project and its email has no head, so it is no link
    candidate and gives the charges it paid no evidence; those charges must be this customer's and
    their PaymentIntents paid by no other session (the paying session would be another's). `state`
    holds the joins of its PaymentIntents, the entries of the charges on them, the placements of
    its Checkout Completed event, the names and heads its evidence and the customer's use, and
    every session read with it (the page's)."""
    if root.version is None or not root.fetched or root.dirty:
        return None
    customer, known = root.record, frozenset(state.known)
    sessions = sorted(sessions, key=lambda f: f.id)
    writes = ScopeWrites(root=SaveRoot(root, customer, True, root.link))
    # where its Checkout Completed goes may depend on them (rule 6's lookup)
    if root.link is None and (own := email_key(customer.email)):
        writes.first.append(ExpectHead(own, state.head_versions.get(own)))
    if customer.meta_visitor and customer.meta_visitor in state.unknown:
        writes.first.append(ExpectNoVisitor(customer.meta_visitor))
    for session in sessions:
        email = email_key(session.email)
        if session_visitor(session, known) or (email and email in state.heads):
            return None
        for pi in session.payment_intents:
            join = state.joins.get(pi, PaymentJoin())
            others = join.sessions | {f.id for f in state.sessions.values() if pi in f.payment_intents}
            if others - {session.id} or any(
                c not in state.ledger or state.ledger[c].facts.customer_id != customer.customer_id for c in join.charges
            ):
                return None
        names = {n for n in (session.meta_visitor, session.client_reference_id) if n}
        writes.first += [ExpectNoVisitor(n) for n in sorted(names & state.unknown)]
        writes.first += [ExpectHead(email, None)] if email else []
        writes.first += [*_session_evidence(session, state), AddSessionMember(customer.customer_id, session.id)]
        context = checkout_context(session)
        placed = state.placed.get(customer.customer_id, {}).get("X#" + context.event_key)
        placed = placed or Placed(context, None, stored=False)
        target = owner_of(placed.value, customer, root.link, state.sessions, known, state.heads)
        intent = place(customer.customer_id, placed, target, PlanChanges())
        if intent is not None:
            writes.units.append((intent,))
    return writes


def session_recorded(state: State, session: SessionFacts) -> bool:
    """A session of a customer whose decision is written whole (a page read again, a session the
    webhook brought): its Checkout Completed is placed, which a decision writes with the session's
    evidence or after it, the customer is not mid-move, its PaymentIntents' joins name it, and every
    charge on them is the customer's (a decision moving another scope's charge may have stopped)."""
    customer = session.customer_id
    root = state.roots.get(customer) if customer else None
    if customer is None or root is None or root.version is None or root.dirty:
        return False
    if f"X#{session.id}:completed" not in state.placed.get(customer, {}):
        return False
    joins = [state.joins.get(pi) for pi in session.payment_intents]
    return all(
        join is not None
        and session.id in join.sessions
        and all(c in state.ledger and state.ledger[c].facts.customer_id == customer for c in join.charges)
        for join in joins
    )


def _stored_refs(scope: str, customer: CustomerRecord, session: SessionFacts | None) -> set[Intent]:
    """References a stored, fetched customer's scope has already: its own email's (written when its
    facts were), and those of its own sessions (written with them)."""
    refs: set[Intent] = set()
    if email := email_key(customer.email):
        refs.add(AddRef(scope, email=email))
    if session is not None and session.customer_id == customer.customer_id:
        if email := email_key(session.email):
            refs.add(AddRef(scope, email=email))
        refs |= {AddRef(scope, visitor_id=n) for n in (session.meta_visitor, session.client_reference_id) if n}
    return refs


def book_refund(record: LedgerRecord, facts: ChargeFacts, at: int, event_id: str | None) -> tuple[Decision, Outcome]:
    """Refunds are cumulative on the charge: book what exceeds what is booked (stale ones: nothing).
    `event_id` None: read from a list (backfill, reconcile), no event to mark."""
    delta = facts.refunded - record.refunded
    if delta <= 0:
        return Decision(), Outcome("already_booked")  # a redelivery, a twin event, or an older refund state
    after = replace(
        record,
        refunded=facts.refunded,
        refund_steps=(*record.refund_steps, (facts.refunded, at)),
        version=record.version + 1,
    )
    unit: Unit = (BookRefund(record, after, refund_event(after, facts.refunded, at, delta)),)
    marks: list[Intent] = [MarkEvent(event_id)] if event_id else []
    decision = Decision(scopes=[ScopeWrites(root=None, units=[unit])], last=marks)
    return decision, Outcome("refund_booked", record.visitor_id, record.tier)


def place_arrivals(state: State, customer_id: str, arrivals: Arrivals) -> tuple[Decision, Outcome]:
    """Context events and subscription states of a customer whose facts and link are known: placed by
    rule 6's lookup on the link as stored (they are no evidence for charges, so nothing else moves).
    `state.placed` holds only the stored placements of these arrivals."""
    _merge_arrivals(state, arrivals)
    root = state.roots[customer_id]
    known = frozenset(state.known)
    scope = f"CUS#{customer_id}"
    writes = ScopeWrites(root=SaveRoot(root, root.record, root.fetched, root.link))
    if root.link is None and (email := email_key(root.record.email)):
        writes.first.append(ExpectHead(email, state.head_versions.get(email)))
    writes.first += [ExpectNoVisitor(name) for name in sorted(state.unknown)]
    writes.first += [
        AddRef(scope, visitor_id=s.metadata_visitor_id) for s in arrivals.subscriptions if s.metadata_visitor_id
    ]
    plans = PlanChanges()
    for placed in state.placed.get(customer_id, {}).values():
        target = owner_of(placed.value, root.record, root.link, state.sessions, known, state.heads)
        if target != placed.visitor_id or not placed.stored:
            intent = place(customer_id, placed, target, plans)
            if intent is not None:
                writes.units.append((intent,))
    decision = Decision(scopes=[writes], last=[MarkEvent(arrivals.event_id)] if arrivals.event_id else [])
    _set_plans(decision, plans, state.profiles)
    return decision, Outcome("resolved")


def session_follows_link(
    root: CustomerRoot,
    session: SessionFacts,
    paid: list[LedgerRecord],
    known: frozenset[str],
    other_sessions: bool,
) -> bool:
    """A session of a linked customer that cannot move the link: it names no known visitor, or it
    and every charge it paid are later than the link's evidence (and all those charges are the
    customer's). Then only what it paid and its own Checkout Completed event can change.

    Only this session's names were read: a paid charge naming a visitor of its own, or another
    session on the same PaymentIntents, needs the whole customer decided."""
    if root.link is None or not root.fetched or root.dirty or root.record.meta_visitor is not None:
        return False
    if other_sessions or any(r.facts.customer_id != root.record.customer_id or r.facts.meta_visitor for r in paid):
        return False
    if session_visitor(session, known) is None:
        return True
    later = [(session.created, session.id), *((r.facts.created, r.facts.id) for r in paid)]
    return all(evidence > root.link.evidence for evidence in later)


def record_session(
    state: State, root: CustomerRoot, session: SessionFacts, paid: list[LedgerRecord], event_id: str
) -> tuple[Decision, Outcome]:
    """What `decide` gives for a session that `session_follows_link` (read: the customer item, the
    joins, the charges it paid and the sessions already on their PaymentIntents)."""
    assert root.link is not None
    link, customer = root.link, root.record
    known = frozenset(state.known)
    sessions = {**state.sessions, session.id: session}
    writes = ScopeWrites(root=SaveRoot(root, customer, root.fetched, link))
    writes.first += [ExpectNoVisitor(name) for name in sorted(state.unknown)]
    writes.first += [AddSessionMember(customer.customer_id, session.id)]
    for record in paid:
        own = tier1_visitor(record.facts, paying_session(record.facts, sessions.values()), customer, known)
        if own:
            owner: tuple[str | None, int | None] = (own, 1)
        else:
            establishing = link.evidence == (record.facts.created, record.facts.id)
            owner = (link.visitor_id, link.tier if establishing else 3)
        if (record.visitor_id, record.tier) != owner:
            moved = replace(record, visitor_id=owner[0], tier=owner[1], version=record.version + 1)
            writes.units.append((MoveCharge(record, moved),))
    context = checkout_context(session)
    placed = state.placed.get(customer.customer_id, {}).get("X#" + context.event_key) or Placed(context, None, False)
    target = owner_of(placed.value, customer, link, sessions, known, state.heads)
    if target != placed.visitor_id or not placed.stored:
        intent = place(customer.customer_id, placed, target, PlanChanges())
        if intent is not None:
            writes.units.append((intent,))
    decision = Decision(scopes=[writes], first=_session_evidence(session, state), last=[MarkEvent(event_id)])
    return decision, Outcome("resolved")
