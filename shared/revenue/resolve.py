"""Domain rule 2, complete: who owns each charge of a scope, given all evidence received so far.

A scope is one Stripe customer with everything that can decide its charges (its charges, its
Checkout Sessions, the sessions paying its charges) or one charge without a customer. Resolution is
a pure function of the evidence, so any order of arrival gives the same answer (rule 3): the
engine re-resolves a scope whenever evidence reaches it and moves what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..identity import email_key
from .models import UNATTRIBUTED, Attribution, ChargeFacts, CustomerRecord, SessionFacts


@dataclass
class Scope:
    customer: CustomerRecord | None
    charges: dict[str, ChargeFacts] = field(default_factory=dict)
    sessions: dict[str, SessionFacts] = field(default_factory=dict)
    known_visitors: frozenset[str] = frozenset()  # visitors of this project among those named
    heads: dict[str, str] = field(default_factory=dict)  # email key -> visitor identified first


@dataclass(frozen=True)
class Link:
    visitor_id: str
    evidence: tuple[int, str]  # (created, id) of the session or charge that established it
    tier: int  # 1 or 2: how that evidence named the visitor


@dataclass(frozen=True)
class Resolution:
    charges: dict[str, Attribution]
    link: Link | None


def paying_session(charge: ChargeFacts, sessions: Iterable[SessionFacts]) -> SessionFacts | None:
    """The completed session that paid `charge` (its PaymentIntent, or its first invoice's)."""
    if not charge.payment_intent:
        return None
    paying = [s for s in sessions if s.completed and charge.payment_intent in s.payment_intents]
    return min(paying, key=lambda s: (s.created, s.id), default=None)


def session_visitor(session: SessionFacts, known: frozenset[str]) -> str | None:
    """Tier-1 evidence of a session alone: its metadata, then its client_reference_id."""
    for candidate in (session.meta_visitor, session.client_reference_id):
        if candidate and candidate in known:
            return candidate
    return None


def tier1_visitor(
    charge: ChargeFacts, session: SessionFacts | None, customer: CustomerRecord | None, known: frozenset[str]
) -> str | None:
    """Step 1: session metadata, session client_reference_id, charge metadata, customer metadata."""
    candidates = (
        session.meta_visitor if session else None,
        session.client_reference_id if session else None,
        charge.meta_visitor,
        customer.meta_visitor if customer else None,
    )
    return next((c for c in candidates if c and c in known), None)


def payment_emails(charge: ChargeFacts, session: SessionFacts | None, customer: CustomerRecord | None) -> list[str]:
    """Step 3's emails in order: customer, billing details, receipt, session; normalised, once each."""
    ordered = (
        customer.email if customer else None,
        charge.billing_email,
        charge.receipt_email,
        session.email if session else None,
    )
    return list(dict.fromkeys(k for k in (email_key(e) for e in ordered) if k))


def email_visitor(emails: list[str], heads: dict[str, str]) -> str | None:
    return next((heads[e] for e in emails if e in heads), None)


def resolve(scope: Scope) -> Resolution:
    customer, known = scope.customer, scope.known_visitors
    sessions = list(scope.sessions.values())
    own: dict[str, tuple[str, int] | None] = {}  # charge -> (visitor, tier) from steps 1 and 3 alone
    candidates: list[tuple[tuple[int, str], str, int]] = []
    for charge in scope.charges.values():
        session = paying_session(charge, sessions)
        by_metadata = tier1_visitor(charge, session, customer, known)
        by_email = email_visitor(payment_emails(charge, session, customer), scope.heads)
        own[charge.id] = (by_metadata, 1) if by_metadata else (by_email, 2) if by_email else None
        if own[charge.id] is not None and customer is not None and charge.customer_id == customer.customer_id:
            visitor, tier = own[charge.id]  # type: ignore[misc]
            candidates.append(((charge.created, charge.id), visitor, tier))
    if customer is not None:
        for session in sessions:
            visitor = session_visitor(session, known) if session.customer_id == customer.customer_id else None
            if session.completed and visitor:
                candidates.append(((session.created, session.id), visitor, 1))
    link: Link | None = None
    if candidates:
        evidence, visitor, tier = min(candidates)
        link = Link(visitor, evidence, tier)

    attributions: dict[str, Attribution] = {}
    for charge in scope.charges.values():
        decided = own[charge.id]
        if decided is not None and decided[1] == 1:
            attributions[charge.id] = Attribution(decided[0], 1)
        elif link is not None and charge.customer_id == link_customer(customer):
            establishing = link.evidence == (charge.created, charge.id)
            attributions[charge.id] = Attribution(link.visitor_id, link.tier if establishing else 3)
        elif decided is not None:
            attributions[charge.id] = Attribution(decided[0], 2)
        else:
            attributions[charge.id] = UNATTRIBUTED
    return Resolution(attributions, link)


def link_customer(customer: CustomerRecord | None) -> str | None:
    return customer.customer_id if customer else None
