"""What a decision reads: the scopes' evidence and what resolution looks up, in a few batched reads.

A whole-scope decision reads each customer's partition (one Query: its item, charges, sessions,
placements), except a customer whose item the attempt already read and found absent (a first read, a
page's batch): then its partition is empty (every transaction writing there writes the item), so a
new customer costs no Query. Then, in batches, the ledger entries and sessions, the PaymentIntent joins, and the
visitors and email heads the evidence names, all through one `store.Reads` (a key read earlier in
the attempt, e.g. by a page's first read, costs nothing). A customer whose facts (email, metadata
visitor) were never read is fetched from Stripe once (or taken from an expanded `customer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from ..identity import email_key
from . import keys, store
from .decision import Arrivals, State
from .items import (
    ChargeMemberItem,
    ContextItem,
    CustomerItem,
    EmailHeadItem,
    GuestCheckoutItem,
    LedgerItem,
    PaymentItem,
    ProfileItem,
    SessionItem,
    SessionMemberItem,
    SubscriptionItem,
)
from .models import CustomerRecord
from .placement import placed_from_item
from .plans import SubscriptionState
from .records import customer_root, ledger_record, payment_join, profile, session_facts

CustomerFetcher = Callable[[str], CustomerRecord]  # Stripe customer id -> its email and metadata visitor


def load(
    project: str,
    scopes: Iterable[str],
    arrivals: Arrivals,
    given_customers: dict[str, CustomerRecord],
    fetch_customer: CustomerFetcher,
    reads: store.Reads | None = None,
) -> State:
    reads = reads or store.Reads()
    state = State()
    charge_ids = {k.removeprefix("CH#") for k in scopes if k.startswith("CH#")}
    session_ids: set[str] = set()
    for customer in sorted(k.removeprefix("CUS#") for k in scopes if k.startswith("CUS#")):
        if reads.absent(keys.customer_link(project, customer)):  # its partition is empty: no Query
            state.roots[customer] = customer_root(customer, None)
            state.charges[customer], state.placed[customer] = set(), {}
        else:
            session_ids |= _load_customer(state, project, customer)
        charge_ids |= state.charges[customer]
    for customer, root in list(state.roots.items()):  # a customer's facts, once: given (expanded) or fetched
        if not root.fetched:
            record = given_customers.get(customer) or fetch_customer(customer)
            fetched = replace(root.record, email=record.email or "", meta_visitor=record.meta_visitor)
            state.roots[customer] = replace(root, record=fetched, fetched=True)
            state.fetched_now.add(customer)

    guests = {k.removeprefix("CS#") for k in scopes if k.startswith("CS#")}
    for item in reads.get(
        [keys.ledger(project, c) for c in charge_ids]
        + [keys.session(project, s) for s in (session_ids | guests) - set(arrivals.sessions)]
        + [keys.guest_checkout(project, s) for s in guests]
    ).values():
        if isinstance(item, LedgerItem):
            state.ledger[item.charge_id] = ledger_record(item)
        elif isinstance(item, SessionItem):
            state.sessions[item.session_id] = session_facts(item)
        elif isinstance(item, GuestCheckoutItem):
            state.guests[item.pk.rsplit("#CS#", 1)[1]] = (item.placed_visitor, int(item.version or 0))
    state.sessions.update(arrivals.sessions)
    facts = [r.facts for r in state.ledger.values()] + [
        c for c in arrivals.charges.values() if c.id not in state.ledger
    ]
    pis = {f.payment_intent for f in facts if f.payment_intent}
    pis |= {p for s in arrivals.sessions.values() for p in s.payment_intents}
    for item in reads.get([keys.payment(project, p) for p in pis]).values():
        if isinstance(item, PaymentItem):
            state.joins[item.payment_intent] = payment_join(item)
    extra_sessions = {s for j in state.joins.values() for s in j.sessions} - set(state.sessions)
    for item in reads.get([keys.session(project, s) for s in extra_sessions]).values():
        if isinstance(item, SessionItem):
            state.sessions[item.session_id] = session_facts(item)

    names: set[str] = set()
    emails: set[str] = set()
    for f in facts:
        names |= {n for n in (f.meta_visitor,) if n}
        emails |= {e for e in (email_key(f.billing_email), email_key(f.receipt_email)) if e}
    for s in state.sessions.values():
        names |= {n for n in (s.meta_visitor, s.client_reference_id) if n}
        emails |= {e for e in (email_key(s.email),) if e}
    for root in state.roots.values():
        names |= {n for n in (root.record.meta_visitor,) if n}
        emails |= {e for e in (email_key(root.record.email),) if e}
    subscriptions = [p.value for placed in state.placed.values() for p in placed.values()]
    subscriptions += list(arrivals.subscriptions)
    names |= {
        s.metadata_visitor_id for s in subscriptions if isinstance(s, SubscriptionState) and s.metadata_visitor_id
    }
    # Profiles whose plan a decision may set: linked visitors and where subscriptions are placed now.
    plan_visitors = {r.link.visitor_id for r in state.roots.values() if r.link}
    plan_visitors |= {p.visitor_id for placed in state.placed.values() for p in placed.values() if p.visitor_id}
    read_names(state, project, names, emails, plan_visitors, reads)
    return state


def _load_customer(state: State, project: str, customer: str) -> set[str]:
    """One Query of the customer's partition; returns the ids of its sessions."""
    items = store.query_partition(keys.customer_pk(project, customer))
    root_item = next((i for i in items if isinstance(i, CustomerItem)), None)
    state.roots[customer] = customer_root(customer, root_item)
    state.charges[customer] = {i.charge_id for i in items if isinstance(i, ChargeMemberItem)}
    state.placed[customer] = {i.sk: placed_from_item(i) for i in items if isinstance(i, ContextItem | SubscriptionItem)}
    return {i.session_id for i in items if isinstance(i, SessionMemberItem)}


def read_names(
    state: State,
    project: str,
    names: set[str],
    emails: set[str],
    profiles: Iterable[str] = (),
    reads: store.Reads | None = None,
) -> None:
    """Which named visitors exist (their profiles), and the heads of the emails: one batch read."""
    wanted = (names | set(profiles)) - set(state.profiles) - state.known - state.unknown
    found = (reads or store.Reads()).get(
        [keys.visitor(project, n) for n in sorted(wanted)] + [keys.email_head(project, e) for e in sorted(emails)]
    )
    for item in found.values():
        if isinstance(item, ProfileItem):
            state.known.add(item.visitor_id)
            state.profiles[item.visitor_id] = profile(item)
        elif isinstance(item, EmailHeadItem):
            email = item.pk.split("#EM#", 1)[1]
            state.heads[email] = item.visitor_id
            state.head_versions[email] = int(item.version or 0)
    state.unknown |= {n for n in names if n not in state.known}
    for email in emails - set(state.heads):
        state.head_versions[email] = None


def read_profiles(state: State, project: str, visitors: set[str]) -> None:
    """Profiles a decision turned out to need (the plan of a visitor found through an email head)."""
    for item in store.batch_get([keys.visitor(project, v) for v in sorted(visitors)]).values():
        if isinstance(item, ProfileItem):
            state.known.add(item.visitor_id)
            state.profiles[item.visitor_id] = profile(item)
