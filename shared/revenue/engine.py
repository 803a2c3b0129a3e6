"""The attribution engine (domain rules 1-4): evidence in, decisions out, money moved atomically.

Every piece of evidence (a charge, a Checkout Session, a customer's facts, a visitor appearing or
identifying) is stored with the scopes it can affect, and those scopes are re-resolved from all
their evidence (`resolve.resolve`); what changed is written in one transaction with the ledger, the
totals and the timeline. A webhook is a batch of one: the same code books pages of charges.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import NotFound, ServiceUnavailable
from ..observability import logger, metrics
from ..settings import get_settings
from . import keys, store
from .errors import DuplicateEvent, StaleUpdate
from .models import ChargeFacts, CustomerRecord, SessionFacts, email_key, visitor_hint
from .placement import ContextEvent, Placed, owner_of, place, placed_from_item, refresh_plans
from .plans import SubscriptionState, event_title, merge, state_from_event
from .resolve import Scope, paying_session, payment_emails, resolve, session_visitor
from .store import CustomerRoot, LedgerRecord, PaymentJoin, Transaction

MAX_ATTEMPTS = 6
CustomerFetcher = Callable[[str], CustomerRecord]  # Stripe customer id -> its email and metadata visitor


@dataclass(frozen=True)
class Outcome:
    result: str  # booked | refund_booked | already_booked | resolved | duplicate | not_revenue | ignored
    visitor_id: str | None = None
    tier: int | None = None


def _retrying(what: str, attempt_once: Callable[[], Outcome]) -> Outcome:
    for attempt in range(MAX_ATTEMPTS):
        try:
            return attempt_once()
        except StaleUpdate as exc:
            logger.info("decision raced, retrying", what=what, conflict=str(exc), attempt=attempt)
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # jitter, not security
        except DuplicateEvent:
            return Outcome("duplicate")
    raise ServiceUnavailable("The decision kept conflicting with concurrent writes; retry later.")


def scope_key(customer_id: str | None, charge_id: str) -> str:
    return f"CUS#{customer_id}" if customer_id else f"CH#{charge_id}"


# ---- charges --------------------------------------------------------------------------------------


def on_charge(project: str, event: dict[str, Any], fetch_customer: CustomerFetcher) -> Outcome:
    """charge.succeeded / charge.captured / charge.refunded: book it, or book its new refunds."""
    charge = event["data"]["object"]
    facts = ChargeFacts.from_stripe(charge)
    expanded = _expanded_customer(charge)
    return _retrying(facts.id, lambda: _charge_once(project, event, facts, expanded, fetch_customer))


def _expanded_customer(charge: dict[str, Any]) -> CustomerRecord | None:
    customer = charge.get("customer")
    if not isinstance(customer, dict) or "id" not in customer:
        return None
    return CustomerRecord(
        customer["id"],
        email=customer.get("email") or "",
        meta_visitor=visitor_hint((customer.get("metadata") or {}).get("ripples_visitor_id")),
    )


def _charge_once(
    project: str,
    event: dict[str, Any],
    facts: ChargeFacts,
    expanded: CustomerRecord | None,
    fetch_customer: CustomerFetcher,
) -> Outcome:
    settings = get_settings()
    wanted = [keys.event_mark(project, event["id"]), keys.ledger(project, facts.id)]
    if facts.customer_id:
        wanted.append(keys.customer_link(project, facts.customer_id))
    if facts.payment_intent:
        wanted.append(keys.payment(project, facts.payment_intent))
    found = store.batch_get(
        {settings.revenue_table: wanted, settings.integrations_table: [{"project_id": {"S": project}}]}
    )
    _check_integration(found[settings.integrations_table], event)
    items = {item["sk"]: item for item in found[settings.revenue_table]}
    if keys.EVENT in items:
        metrics.add_metric(name="DuplicateEvents", unit="Count", value=1)
        return Outcome("duplicate")
    if keys.LEDGER in items:
        return _book_refunds(project, event, store.ledger_record(items[keys.LEDGER]), facts)
    if not facts.books_revenue:
        return Outcome("not_revenue")  # uncaptured, pending or failed: nothing until captured

    root = store.customer_root(facts.customer_id, items.get(keys.LINK)) if facts.customer_id else None
    join = store.payment_join(items.get(keys.PAYMENT))
    if root is not None and _follows_link(root, facts, join):
        return _book_on_link(project, event, facts, root, join)
    return decide(
        project,
        {scope_key(facts.customer_id, facts.id)},
        new_charges=[facts],
        customers={expanded.customer_id: expanded} if expanded else {},
        fetch_customer=fetch_customer,
        event_id=event["id"],
    )


def _check_integration(found: list[dict[str, Any]], event: dict[str, Any]) -> None:
    integration = found[0] if found else None
    if integration is None or integration.get("status") != "connected":
        raise NotFound("No Stripe integration is connected for this project.")
    if bool(event.get("livemode")) != (integration.get("mode") == "live"):
        raise IgnoredEvent()


class IgnoredEvent(Exception):
    """An event of the other mode than the connected key's: acknowledged, never booked."""


def _follows_link(root: CustomerRoot, facts: ChargeFacts, join: PaymentJoin) -> bool:
    """A later charge of a linked customer with no evidence of its own: tier 3, nothing else can change."""
    return (
        root.link is not None
        and root.fetched
        and root.record.meta_visitor is None
        and facts.meta_visitor is None
        and not join.sessions
        and (facts.created, facts.id) > root.link.evidence
    )


def _book_on_link(
    project: str, event: dict[str, Any], facts: ChargeFacts, root: CustomerRoot, join: PaymentJoin
) -> Outcome:
    assert root.link is not None
    assert facts.customer_id is not None
    visitor = root.link.visitor_id
    record = _new_record(facts, visitor, 3)
    tx = Transaction(project)
    tx.expect_version("customer", keys.customer_link(project, facts.customer_id), root.version)
    _write_new_charge(tx, project, record, scope_key(facts.customer_id, facts.id), join, root.record, None)
    tx.mark_event(event["id"], int(time.time()))
    tx.commit()
    _booked_metrics(3)
    logger.info("charge booked", charge_id=facts.id, tier=3, attributed=True)
    return Outcome("booked", visitor, 3)


def _book_refunds(project: str, event: dict[str, Any], record: LedgerRecord, facts: ChargeFacts) -> Outcome:
    """Refunds are cumulative on the charge: book what exceeds what is booked (stale ones: nothing)."""
    delta = facts.refunded - record.refunded
    if delta <= 0:
        return Outcome("already_booked")  # a redelivery, a twin event, or an older refund state
    at = int(event.get("created") or time.time())
    updated = replace(
        record,
        refunded=facts.refunded,
        refund_steps=[*record.refund_steps, (facts.refunded, at)],
        version=record.version + 1,
    )
    tx = Transaction(project)
    tx.replace_ledger(updated, record.version)
    tx.add_total(record.visitor_id, record.facts.currency, -delta)
    if record.visitor_id:
        tx.put_timeline(record.visitor_id, _refund_event(updated, facts.refunded, at, delta))
    tx.mark_event(event["id"], int(time.time()))
    tx.commit()
    metrics.add_metric(name="RefundsBooked", unit="Count", value=1)
    logger.info("refund booked", charge_id=record.facts.id, amount=delta)
    return Outcome("refund_booked", record.visitor_id, record.tier)


# ---- Checkout Sessions ------------------------------------------------------------------------------


def on_session(
    project: str,
    event: dict[str, Any],
    fetch_customer: CustomerFetcher,
    invoice_payment_intents: Callable[[str], tuple[str, ...]],
) -> Outcome:
    """checkout.session.completed / async_payment_succeeded: tier-1 evidence for what it paid."""
    session = event["data"]["object"]
    pis: tuple[str, ...] = ()
    if not session.get("payment_intent") and session.get("invoice"):
        invoice = session["invoice"]
        pis = invoice_payment_intents(invoice if isinstance(invoice, str) else invoice["id"])
    facts = SessionFacts.from_stripe(session, pis)
    if not facts.completed:
        return Outcome("ignored")
    return _retrying(facts.id, lambda: _session_once(project, event, facts, fetch_customer))


def _session_once(project: str, event: dict[str, Any], facts: SessionFacts, fetch_customer: CustomerFetcher) -> Outcome:
    settings = get_settings()
    wanted = [keys.event_mark(project, event["id"]), *(keys.payment(project, pi) for pi in facts.payment_intents)]
    found = store.batch_get(
        {settings.revenue_table: wanted, settings.integrations_table: [{"project_id": {"S": project}}]}
    )
    _check_integration(found[settings.integrations_table], event)
    if any(item["sk"] == keys.EVENT for item in found[settings.revenue_table]):
        return Outcome("duplicate")
    paid = {c for item in found[settings.revenue_table] if item["sk"] == keys.PAYMENT for c in item.get("charges", ())}
    scopes = {f"CUS#{facts.customer_id}"} if facts.customer_id else set()
    for record in store.revenue_items([keys.ledger(project, c) for c in paid]):
        scopes.add(scope_key(record.get("customer_id"), record["charge_id"]))
    contexts = [(facts.customer_id, _checkout_context(facts))] if facts.customer_id else []
    return decide(
        project,
        scopes,
        new_sessions=[facts],
        contexts=contexts,
        fetch_customer=fetch_customer,
        event_id=event["id"],
    )


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
    return _retrying(
        invoice["id"], lambda: _context_once(project, event, customer, [(customer, context)], [], fetch_customer)
    )


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
    return _retrying(
        state.subscription_id,
        lambda: _context_once(project, event, customer, [(customer, context)], [state], fetch_customer),
    )


def _context_once(
    project: str,
    event: dict[str, Any],
    customer: str,
    contexts: list[tuple[str, ContextEvent]],
    subscriptions: list[SubscriptionState],
    fetch_customer: CustomerFetcher,
) -> Outcome:
    settings = get_settings()
    found = store.batch_get(
        {
            settings.revenue_table: [keys.event_mark(project, event["id"])],
            settings.integrations_table: [{"project_id": {"S": project}}],
        }
    )
    _check_integration(found[settings.integrations_table], event)
    if found[settings.revenue_table]:
        return Outcome("duplicate")
    return decide(
        project,
        {f"CUS#{customer}"},
        contexts=contexts,
        subscriptions=subscriptions,
        fetch_customer=fetch_customer,
        event_id=event["id"],
    )


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# ---- visitors -------------------------------------------------------------------------------------------


def on_visitor_saved(
    project: str, visitor_id: str, created: bool, emails: Iterable[str], fetch_customer: CustomerFetcher
) -> Outcome:
    """A visitor appeared or changed email: re-resolve every scope that named it or uses the email."""
    scopes: set[str] = set()
    pks = [keys.visitor_ref_pk(project, visitor_id)] if created else []
    pks += [keys.email_pk(project, e) for e in emails]
    for pk in pks:
        for item in store.query_partition(pk):
            if item["sk"].startswith(keys.REF_PREFIX):
                scopes.add(item["sk"].removeprefix(keys.REF_PREFIX))
    if not scopes:
        return Outcome("resolved")
    return _retrying(visitor_id, lambda: decide(project, scopes, fetch_customer=fetch_customer))


# ---- deciding scopes ---------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    roots: dict[str, CustomerRoot] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)  # customer -> charge ids and session ids (prefixed)
    ledger: dict[str, LedgerRecord] = field(default_factory=dict)
    sessions: dict[str, SessionFacts] = field(default_factory=dict)
    joins: dict[str, PaymentJoin] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    heads: dict[str, str] = field(default_factory=dict)
    head_versions: dict[str, int | None] = field(default_factory=dict)
    fetched_now: set[str] = field(default_factory=set)
    placed: dict[str, dict[str, Placed]] = field(default_factory=dict)  # customer -> sk -> context/subscription
    plan_visitors: set[str] = field(default_factory=set)  # whose plan to recompute after the commit


def decide(
    project: str,
    scopes: set[str],
    *,
    new_charges: Iterable[ChargeFacts] = (),
    new_sessions: Iterable[SessionFacts] = (),
    customers: dict[str, CustomerRecord] | None = None,
    contexts: Iterable[tuple[str, ContextEvent]] = (),
    subscriptions: Iterable[SubscriptionState] = (),
    fetch_customer: CustomerFetcher,
    event_id: str | None = None,
) -> Outcome:
    """Load the scopes, merge new evidence, resolve, and write every change in one transaction."""
    charges = {c.id: c for c in new_charges}
    sessions = {s.id: s for s in new_sessions}
    subscriptions = list(subscriptions)
    loaded = _load(project, scopes, charges, sessions, customers or {}, fetch_customer, subscriptions)
    for customer_id, context in contexts:
        sk = keys.CONTEXT_PREFIX + context.event_key
        loaded.placed.setdefault(customer_id, {}).setdefault(sk, Placed(context, None, stored=False))
    for state in subscriptions:
        if state.customer_id:
            current = loaded.placed.setdefault(state.customer_id, {})
            sk = keys.SUBSCRIPTION_PREFIX + state.subscription_id
            before = current.get(sk)
            merged = merge(before.value if before and isinstance(before.value, SubscriptionState) else None, state)
            if before is None or merged != before.value:
                current[sk] = Placed(merged, before.visitor_id if before else None, stored=False)
    tx = Transaction(project)
    outcome = Outcome("resolved")
    for key in sorted(scopes):
        outcome = _decide_scope(tx, project, key, loaded, charges) or outcome
    for session in sessions.values():
        _write_new_session(tx, project, session, loaded)
    if event_id:
        tx.mark_event(event_id, int(time.time()))
    tx.commit()
    if loaded.plan_visitors:
        refresh_plans(project, loaded.plan_visitors)
    return outcome


def _load(
    project: str,
    scopes: set[str],
    new_charges: dict[str, ChargeFacts],
    new_sessions: dict[str, SessionFacts],
    given_customers: dict[str, CustomerRecord],
    fetch_customer: CustomerFetcher,
    new_subscriptions: Iterable[SubscriptionState] = (),
) -> _Loaded:
    loaded = _Loaded()
    new_subscriptions = list(new_subscriptions)
    charge_ids = {k.removeprefix("CH#") for k in scopes if k.startswith("CH#")}
    session_ids: set[str] = set()
    for key in scopes:
        if not key.startswith("CUS#"):
            continue
        customer = key.removeprefix("CUS#")
        items = store.query_partition(keys.customer_pk(project, customer))
        root_item = next((i for i in items if i["sk"] == keys.LINK), None)
        loaded.roots[customer] = store.customer_root(customer, root_item)
        loaded.members[customer] = {i["sk"] for i in items if i["sk"] != keys.LINK}
        loaded.placed[customer] = {
            i["sk"]: placed_from_item(i)
            for i in items
            if i["sk"].startswith((keys.CONTEXT_PREFIX, keys.SUBSCRIPTION_PREFIX))
        }
        charge_ids |= {
            i["sk"].removeprefix(keys.CHARGE_MEMBER_PREFIX)
            for i in items
            if i["sk"].startswith(keys.CHARGE_MEMBER_PREFIX)
        }
        session_ids |= {
            i["sk"].removeprefix(keys.SESSION_MEMBER_PREFIX)
            for i in items
            if i["sk"].startswith(keys.SESSION_MEMBER_PREFIX)
        }
    for customer, root in loaded.roots.items():  # a customer's facts, once: given (expanded) or fetched
        if not root.fetched:
            record = given_customers.get(customer) or fetch_customer(customer)
            fetched = replace(root.record, email=record.email or "", meta_visitor=record.meta_visitor)
            loaded.roots[customer] = replace(root, record=fetched, fetched=True)
            loaded.fetched_now.add(customer)

    found = store.revenue_items(
        [keys.ledger(project, c) for c in charge_ids]
        + [keys.session(project, s) for s in session_ids - set(new_sessions)]
    )
    for item in found:
        if item["sk"] == keys.LEDGER:
            loaded.ledger[item["charge_id"]] = store.ledger_record(item)
        elif item["sk"] == keys.SESSION:
            loaded.sessions[item["session_id"]] = store.session_facts(item)
    loaded.sessions.update(new_sessions)
    facts = [r.facts for r in loaded.ledger.values()] + [c for c in new_charges.values() if c.id not in loaded.ledger]
    pis = {f.payment_intent for f in facts if f.payment_intent} | {
        p for s in new_sessions.values() for p in s.payment_intents
    }
    for item in store.revenue_items([keys.payment(project, p) for p in pis]):
        loaded.joins[item["payment_intent"]] = store.payment_join(item)
    extra_sessions = {s for j in loaded.joins.values() for s in j.sessions} - set(loaded.sessions)
    for item in store.revenue_items([keys.session(project, s) for s in extra_sessions]):
        loaded.sessions[item["session_id"]] = store.session_facts(item)

    names: set[str] = set()
    emails: set[str] = set()
    for f in facts:
        names |= {n for n in (f.meta_visitor,) if n}
        emails |= {e for e in (email_key(f.billing_email), email_key(f.receipt_email)) if e}
    for s in loaded.sessions.values():
        names |= {n for n in (s.meta_visitor, s.client_reference_id) if n}
        emails |= {e for e in (email_key(s.email),) if e}
    for root in loaded.roots.values():
        names |= {n for n in (root.record.meta_visitor,) if n}
        emails |= {e for e in (email_key(root.record.email),) if e}
    for placed in loaded.placed.values():
        for entry in placed.values():
            if isinstance(entry.value, SubscriptionState) and entry.value.metadata_visitor_id:
                names.add(entry.value.metadata_visitor_id)
    names |= {s.metadata_visitor_id for s in new_subscriptions if s.metadata_visitor_id}
    found = store.revenue_items(
        [keys.visitor(project, n) for n in names] + [keys.email_head(project, e) for e in emails]
    )
    for item in found:
        if item["sk"] == keys.PROFILE:
            loaded.known.add(item["visitor_id"])
        elif item["sk"] == keys.HEAD:
            email = item["pk"].split("#EM#", 1)[1]
            loaded.heads[email] = item["visitor_id"]
            loaded.head_versions[email] = item.get("version", 0)
    loaded.unknown = names - loaded.known
    for email in emails - set(loaded.heads):
        loaded.head_versions[email] = None
    return loaded


def _decide_scope(
    tx: Transaction,
    project: str,
    key: str,
    loaded: _Loaded,
    new_charges: dict[str, ChargeFacts],
) -> Outcome | None:
    customer_id = key.removeprefix("CUS#") if key.startswith("CUS#") else None
    root = loaded.roots.get(customer_id) if customer_id else None
    if customer_id:
        members = {
            m.removeprefix(keys.CHARGE_MEMBER_PREFIX)
            for m in loaded.members.get(customer_id, set())
            if m.startswith(keys.CHARGE_MEMBER_PREFIX)
        }
        ids = members | {c.id for c in new_charges.values() if c.customer_id == customer_id}
    else:
        ids = {key.removeprefix("CH#")}
    charges = {}
    for charge_id in ids:
        if charge_id in loaded.ledger:
            charges[charge_id] = loaded.ledger[charge_id].facts
        elif charge_id in new_charges:
            charges[charge_id] = new_charges[charge_id]
    scope = Scope(
        customer=root.record if root else None,
        charges=charges,
        sessions=dict(loaded.sessions),
        known_visitors=frozenset(loaded.known),
        heads=loaded.heads,
    )
    resolution = resolve(scope)
    sessions = list(loaded.sessions.values())

    # What the decision read must still hold when it is written.
    for email in _scope_emails(scope, sessions):
        tx.expect_version("head", keys.email_head(project, email), loaded.head_versions.get(email))
    for name in loaded.unknown:
        tx.expect_absent("visitor", keys.visitor(project, name))
    for pi, join in loaded.joins.items():
        tx.expect_version("payment", keys.payment(project, pi), join.version)
    if root is not None:
        if resolution.link != root.link or _root_changed(root, loaded):
            tx.update_customer(root, resolution.link)
            old = root.link.visitor_id if root.link else None
            new = resolution.link.visitor_id if resolution.link else None
            if old != new:
                if old:
                    tx.link_customer(old, root.record.customer_id, linked=False)
                if new:
                    tx.link_customer(new, root.record.customer_id, linked=True)
        else:
            tx.expect_version("customer", keys.customer_link(project, root.record.customer_id), root.version)

    outcome: Outcome | None = None
    for charge_id, facts in charges.items():
        owner = resolution.charges[charge_id]
        if charge_id not in loaded.ledger:
            record = _new_record(facts, owner.visitor_id, owner.tier)
            join = loaded.joins.get(facts.payment_intent or "", PaymentJoin())
            _write_new_charge(
                tx,
                project,
                record,
                key,
                join if facts.payment_intent else None,
                scope.customer,
                paying_session(facts, sessions),
            )
            _booked_metrics(owner.tier)
            logger.info("charge booked", charge_id=charge_id, tier=owner.tier, attributed=owner.attributed)
            outcome = Outcome("booked", owner.visitor_id, owner.tier)
        else:
            record = loaded.ledger[charge_id]
            if (record.visitor_id, record.tier) != (owner.visitor_id, owner.tier):
                _move(tx, record, owner.visitor_id, owner.tier)
    if root is not None and _root_changed(root, loaded):
        _write_customer_refs(tx, project, root)
    if root is not None:
        known = frozenset(loaded.known)
        for placed in loaded.placed.get(root.record.customer_id, {}).values():
            target = owner_of(placed.value, root.record, resolution.link, loaded.sessions, known, loaded.heads)
            if target != placed.visitor_id or not placed.stored:
                loaded.plan_visitors |= place(tx, project, root.record.customer_id, placed, target)
    return outcome


def _root_changed(root: CustomerRoot, loaded: _Loaded) -> bool:
    """The customer item must be written: new, or its facts were fetched in this decision."""
    return root.version is None or root.record.customer_id in loaded.fetched_now


def _scope_emails(scope: Scope, sessions: list[SessionFacts]) -> set[str]:
    """The emails the decision went by: each payment's, and the customer's (placements use it)."""
    emails = {e for e in (email_key(scope.customer.email if scope.customer else None),) if e}
    for charge in scope.charges.values():
        emails |= set(payment_emails(charge, paying_session(charge, sessions), scope.customer))
    return emails


def _new_record(facts: ChargeFacts, visitor_id: str | None, tier: int | None) -> LedgerRecord:
    steps = [(facts.refunded, facts.created)] if facts.refunded else []
    return LedgerRecord(facts, visitor_id, tier, facts.amount_captured, facts.refunded, steps, 1)


def _write_new_charge(
    tx: Transaction,
    project: str,
    record: LedgerRecord,
    scope: str,
    join: PaymentJoin | None,
    customer: CustomerRecord | None,
    session: SessionFacts | None,
) -> None:
    facts = record.facts
    tx.put_ledger(record)
    tx.add_total(record.visitor_id, facts.currency, record.net)
    if record.visitor_id:
        for event in _charge_events(record):
            tx.put_timeline(record.visitor_id, event)
    if facts.customer_id:
        tx.put_plain("member", keys.customer_charge(project, facts.customer_id, facts.id), {"charge_id": facts.id})
    if facts.payment_intent and join is not None:
        tx.join_payment(facts.payment_intent, join, session=None, charge=facts.id)
    for email in payment_emails(facts, session, customer):
        tx.put_plain("ref", keys.email_ref(project, email, scope), {"scope": scope})
    # Visitor ids that name this payment (its own, its session's) may be unknown yet: when such a
    # visitor appears, this scope is decided again.
    names = {facts.meta_visitor, session.meta_visitor, session.client_reference_id} if session else {facts.meta_visitor}
    for name in sorted(n for n in names if n):
        tx.put_plain("ref", keys.visitor_ref(project, name, scope), {"scope": scope})


def _write_new_session(tx: Transaction, project: str, session: SessionFacts, loaded: _Loaded) -> None:
    values = {
        "session_id": session.id,
        "created": session.created,
        "customer_id": session.customer_id,
        "payment_intents": list(session.payment_intents) or None,
        "meta_visitor": session.meta_visitor,
        "client_reference_id": session.client_reference_id,
        "email": session.email,
        "completed": session.completed,
        "mode": session.mode,
        "invoice": session.invoice,
        "subscription": session.subscription,
        "amount_total": session.amount_total,
        "currency": session.currency,
    }
    tx.put_plain("session", keys.session(project, session.id), values)
    scopes = {f"CUS#{session.customer_id}"} if session.customer_id else set()
    for pi in session.payment_intents:
        join = loaded.joins.get(pi, PaymentJoin())
        tx.join_payment(pi, join, session=session.id, charge=None)
        for charge_id in join.charges:
            record = loaded.ledger.get(charge_id)
            scopes.add(scope_key(record.facts.customer_id if record else None, charge_id))
    if session.customer_id:
        tx.put_plain(
            "member", keys.customer_session(project, session.customer_id, session.id), {"session_id": session.id}
        )
    else:  # no customer to follow: its own evidence, else its email, decides where it shows
        key = email_key(session.email)
        visitor = session_visitor(session, frozenset(loaded.known)) or (loaded.heads.get(key) if key else None)
        if visitor:
            tx.put_timeline(visitor, _checkout_context(session).timeline())
    for scope in scopes:
        if email := email_key(session.email):
            tx.put_plain("ref", keys.email_ref(project, email, scope), {"scope": scope})
        for name in {n for n in (session.meta_visitor, session.client_reference_id) if n}:
            tx.put_plain("ref", keys.visitor_ref(project, name, scope), {"scope": scope})


def _checkout_context(session: SessionFacts) -> ContextEvent:
    return ContextEvent(
        event_key=f"{session.id}:completed",
        at=session.created,
        type="Checkout Completed",
        amount=session.amount_total,
        currency=session.currency,
        stripe_object_id=session.id,
        session_id=session.id,
    )


def _write_customer_refs(tx: Transaction, project: str, root: CustomerRoot) -> None:
    scope = f"CUS#{root.record.customer_id}"
    if email := email_key(root.record.email):
        tx.put_plain("ref", keys.email_ref(project, email, scope), {"scope": scope})
    if root.record.meta_visitor:
        tx.put_plain("ref", keys.visitor_ref(project, root.record.meta_visitor, scope), {"scope": scope})


def _move(tx: Transaction, record: LedgerRecord, visitor_id: str | None, tier: int | None) -> None:
    """The charge's net revenue and its timeline events leave the old owner and join the new one."""
    moved = replace(record, visitor_id=visitor_id, tier=tier, version=record.version + 1)
    tx.replace_ledger(moved, record.version)
    currency = record.facts.currency
    if record.visitor_id != visitor_id:
        tx.add_total(record.visitor_id, currency, -record.net)
        tx.add_total(visitor_id, currency, record.net)
        if record.visitor_id:
            for event in _charge_events(record):
                tx.delete_timeline(record.visitor_id, event["at"], event["event_id"])
    if visitor_id:
        for event in _charge_events(moved):
            tx.put_timeline(visitor_id, event)
    metrics.add_metric(name="ChargesReattributed", unit="Count", value=1)
    logger.info("charge re-attributed", charge_id=record.facts.id, tier=tier, attributed=visitor_id is not None)


def _charge_events(record: LedgerRecord) -> list[dict[str, Any]]:
    """A charge's timeline: Charge Succeeded, then one Charge Refunded per booked refund delta."""
    f = record.facts
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{f.id}:succeeded",
            "at": f.created,
            "type": "Charge Succeeded",
            "amount": record.amount,
            "currency": f.currency,
            "revenue": record.amount,
            "stripe_object_id": f.id,
            "tier": record.tier,
        }
    ]
    previous = 0
    for cumulative, at in record.refund_steps:
        events.append(_refund_event(record, cumulative, at, cumulative - previous))
        previous = cumulative
    return events


def _refund_event(record: LedgerRecord, cumulative: int, at: int, delta: int) -> dict[str, Any]:
    return {
        "event_id": f"{record.facts.id}:refunded:{cumulative}",
        "at": at,
        "type": "Charge Refunded",
        "amount": delta,
        "currency": record.facts.currency,
        "revenue": -delta,
        "stripe_object_id": record.facts.id,
        "tier": record.tier,
    }


def _booked_metrics(tier: int | None) -> None:
    metrics.add_metric(name="ChargesBooked", unit="Count", value=1)
    metrics.add_metric(name=f"AttributionTier{tier or 0}", unit="Count", value=1)
