"""Small generated worlds of Stripe and visitor evidence, the input streams they make, and rule 2 on them.

A world is everything one project will ever learn: its visitors (and the time each identified with its
email), Stripe customers, charges (with their refunds) and completed Checkout Sessions. `stream` turns
it into the inputs the engine receives (Stripe events and visitor PUTs), which tests then apply in
any order, any number of times. `expected` is domain rule 2 evaluated on the whole world, written
from the design's domain rules directly (not from shared.revenue.resolve), so the result every order
agrees on is also checked against the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from local.stripe_emulator.fixtures import build

PROJECT = "shop-prop"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MINUTE = 60
VISITOR_IDS = ("v1", "v2", "v3")
GHOST = "v_ghost"  # named by Stripe metadata, never created in this project
EMAILS = ("ann@shop.test", "bob@shop.test", "cat@shop.test")
STRANGER = "zed@elsewhere.test"  # an email no visitor ever has
CUSTOMER_IDS = ("cus_a", "cus_b")


@dataclass(frozen=True)
class VisitorSpec:
    id: str
    email: str | None
    identified_at: int  # epoch seconds: the clock of the PUT that sets the email
    anonymous_first: bool = False  # created by an earlier PUT without email (a second input)


@dataclass(frozen=True)
class CustomerSpec:
    id: str
    email: str | None
    meta_visitor: str | None  # `ripples_visitor_id` in the customer's metadata


@dataclass(frozen=True)
class ChargeSpec:
    id: str
    customer: str | None
    created: int
    amount: int
    currency: str
    payment_intent: str | None
    meta_visitor: str | None = None
    billing_email: str | None = None
    receipt_email: str | None = None
    refunds: tuple[int, ...] = ()  # cumulative refunds of each charge.refunded event
    captured: int | None = None  # manual capture (charge.captured) of this amount; None: captured at once
    expand_customer: bool = False  # events carry the customer expanded (as backfill pages list them)

    @property
    def booked(self) -> int:
        """What rule 1 books: amount_captured."""
        return self.amount if self.captured is None else self.captured

    @property
    def refunded(self) -> int:
        return self.refunds[-1] if self.refunds else 0


@dataclass(frozen=True)
class SessionSpec:
    id: str
    created: int
    customer: str | None
    payment_intent: str | None  # None: a subscription-mode trial that charged nothing
    meta_visitor: str | None = None
    client_reference_id: str | None = None
    email: str | None = None  # customer_details.email


@dataclass(frozen=True)
class World:
    visitors: tuple[VisitorSpec, ...]
    customers: tuple[CustomerSpec, ...]
    charges: tuple[ChargeSpec, ...]
    sessions: tuple[SessionSpec, ...] = ()

    def customer(self, customer_id: str | None) -> CustomerSpec | None:
        return next((c for c in self.customers if c.id == customer_id), None)


# ---- strategies ------------------------------------------------------------------------------------


def _spellings(email: str) -> st.SearchStrategy[str]:
    """The same address as Stripe may hold it: another case, padded with spaces."""
    return st.sampled_from([email, email.upper(), f" {email.title()} "])


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """1 project; 1-3 visitors (v1.., some sharing one of 2-3 emails, identified at distinct times);
    1-2 customers; 1-4 charges (usd/jpy, refunds none/partial/full/partial-then-full, some captured
    manually and partially, some with the customer expanded); 0-2 Checkout Sessions (paying a charge's
    PaymentIntent, or trials paying nothing). Visitor ids named by Stripe may be unknown (v_ghost, or
    v2/v3 in a world with fewer visitors); emails may differ in case and spaces, or match no visitor."""
    emails = EMAILS[: draw(st.integers(2, 3))]
    n_visitors = draw(st.integers(1, 3))
    minutes = draw(st.lists(st.integers(0, 40), min_size=n_visitors, max_size=n_visitors, unique=True))
    visitors = tuple(
        VisitorSpec(
            VISITOR_IDS[i],
            draw(st.none() | st.sampled_from(emails) | st.sampled_from(emails).map(str.title)),
            T0 + minutes[i] * MINUTE,
            draw(st.booleans()),
        )
        for i in range(n_visitors)
    )
    names = st.none() | st.sampled_from((*VISITOR_IDS, GHOST))  # v2/v3 may be unknown in this world
    stripe_emails = st.none() | st.sampled_from((*emails, STRANGER)).flatmap(_spellings)

    customers = tuple(
        CustomerSpec(cid, draw(stripe_emails), draw(st.none() | names))
        for cid in CUSTOMER_IDS[: draw(st.integers(1, 2))]
    )
    customer_ids = [c.id for c in customers]

    charges = []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        currency = draw(st.sampled_from(("usd", "jpy")))
        amount = draw(st.integers(2, 10_000))
        captured = draw(st.none() | st.none() | st.none() | st.integers(2, amount))
        booked = amount if captured is None else captured
        partial = draw(st.integers(1, booked - 1))
        charges.append(
            ChargeSpec(
                id=f"ch_{i}",
                customer=draw(st.none() | st.sampled_from(customer_ids)),
                created=T0 + draw(st.integers(0, 40)) * MINUTE,
                amount=amount,
                currency=currency,
                payment_intent=draw(st.sampled_from((f"pi_{i}", f"pi_{i}", None))),
                meta_visitor=draw(st.none() | names),
                billing_email=draw(stripe_emails),
                receipt_email=draw(st.none() | stripe_emails),
                refunds=draw(st.sampled_from(((), (partial,), (booked,), (partial, booked)))),
                captured=captured,
                expand_customer=draw(st.booleans()),
            )
        )

    sessions = []
    payable = [c for c in charges if c.payment_intent]
    for i in range(1, draw(st.integers(0, 2)) + 1):
        paid = draw(st.none() | st.sampled_from(payable)) if payable else None
        if paid is not None:
            payable.remove(paid)  # one session per PaymentIntent
            customer = paid.customer  # the session created (or used) the charge's customer
        else:
            customer = draw(st.none() | st.sampled_from(customer_ids))
        sessions.append(
            SessionSpec(
                id=f"cs_{i}",
                created=T0 + draw(st.integers(0, 40)) * MINUTE,
                customer=customer,
                payment_intent=paid.payment_intent if paid else None,
                meta_visitor=draw(names),
                client_reference_id=draw(names),
                email=draw(stripe_emails),
            )
        )
    return World(visitors, customers, tuple(charges), tuple(sessions))


# ---- Stripe objects and the input stream -------------------------------------------------------------


def charge_object(charge: ChargeSpec, refunded: int, world: World, *, captured: bool = True) -> dict[str, Any]:
    """The charge as an event carries it: `refunded` is its cumulative refunds proper; a partial
    capture's released remainder shows in amount_refunded too, as Stripe reports it."""
    released = charge.amount - charge.booked if captured else 0
    customer: str | dict[str, Any] | None = charge.customer
    spec = world.customer(charge.customer)
    if charge.expand_customer and spec is not None:
        metadata = {"ripples_visitor_id": spec.meta_visitor} if spec.meta_visitor else {}
        customer = build("customer", id=spec.id, email=spec.email, metadata=metadata, livemode=False)
    obj = build(
        "charge",
        id=charge.id,
        created=charge.created,
        amount=charge.amount,
        amount_captured=charge.booked if captured else 0,
        amount_refunded=released + refunded,
        refunded=released + refunded == charge.amount,
        captured=captured,
        paid=True,
        status="succeeded",
        currency=charge.currency,
        customer=customer,
        payment_intent=charge.payment_intent,
        metadata={"ripples_visitor_id": charge.meta_visitor} if charge.meta_visitor else {},
        receipt_email=charge.receipt_email,
        livemode=False,
    )
    obj["billing_details"]["email"] = charge.billing_email
    return obj


def session_object(session: SessionSpec, world: World) -> dict[str, Any]:
    paid = next(
        (c for c in world.charges if session.payment_intent and c.payment_intent == session.payment_intent), None
    )
    details: dict[str, Any] | None = None
    if session.email:
        details = {"address": None, "email": session.email, "name": None, "phone": None, "tax_exempt": "none"}
        details |= {"tax_ids": []}
    trial = paid is None
    return build(
        "checkout.session",
        id=session.id,
        created=session.created,
        status="complete",
        mode="subscription" if trial else "payment",
        payment_status="no_payment_required" if trial else "paid",
        payment_intent=session.payment_intent,
        invoice=f"in_{session.id}" if trial else None,
        subscription=f"sub_{session.id}" if trial else None,
        customer=session.customer,
        customer_details=details,
        metadata={"ripples_visitor_id": session.meta_visitor} if session.meta_visitor else {},
        client_reference_id=session.client_reference_id,
        amount_total=0 if paid is None else paid.amount,
        currency=paid.currency if paid else "usd",
        livemode=False,
    )


def event(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": False,
        "data": {"object": obj},
    }


class Input:
    """One thing the engine receives: a Stripe event, or a visitor PUT (optionally with its email).

    A plain class, so that hypothesis shows a failing order as its labels."""

    def __init__(
        self,
        label: str,
        at: int,
        stripe_event: dict[str, Any] | None = None,
        visitor: VisitorSpec | None = None,
        identify: bool = False,  # a visitor PUT: with the visitor's email (else: no fields)
        *,
        charge: ChargeSpec | None = None,  # a charge event: books it if captured, with `refunded`
        captured: bool = True,
        refunded: int = 0,
        session: SessionSpec | None = None,
    ) -> None:
        self.label = label
        self.at = at
        self.stripe_event = stripe_event
        self.visitor = visitor
        self.identify = identify
        self.charge = charge
        self.captured = captured
        self.refunded = refunded
        self.session = session

    def __repr__(self) -> str:
        return self.label


def stream(world: World) -> list[Input]:
    """Every input of the world, in canonical order: by time, then label."""
    inputs: list[Input] = []
    for v in world.visitors:
        if v.anonymous_first:
            inputs.append(Input(f"PUT {v.id}", v.identified_at - 3600, visitor=v))
        inputs.append(Input(f"PUT {v.id} email={v.email}", v.identified_at, visitor=v, identify=True))
    for c in world.charges:
        manual = c.captured is not None
        succeeded = event(
            f"evt_{c.id}_ok", "charge.succeeded", c.created, charge_object(c, 0, world, captured=not manual)
        )
        label = f"charge.succeeded {c.id}" + (" (uncaptured)" if manual else "")
        inputs.append(Input(label, c.created, succeeded, charge=c, captured=not manual))
        if manual:
            at = c.created + 1800
            captured = event(f"evt_{c.id}_cap", "charge.captured", at, charge_object(c, 0, world))
            inputs.append(Input(f"charge.captured {c.id} ({c.captured} of {c.amount})", at, captured, charge=c))
        for k, cumulative in enumerate(c.refunds, start=1):
            at = c.created + k * 3600
            refunded = event(f"evt_{c.id}_rf{k}", "charge.refunded", at, charge_object(c, cumulative, world))
            inputs.append(Input(f"charge.refunded {c.id} ({cumulative})", at, refunded, charge=c, refunded=cumulative))
    for s in world.sessions:
        completed = event(f"evt_{s.id}_done", "checkout.session.completed", s.created, session_object(s, world))
        inputs.append(Input(f"checkout.session.completed {s.id}", s.created, completed, session=s))
    return sorted(inputs, key=lambda i: (i.at, i.label))


def received(world: World, applied: list[Input]) -> World:
    """The part of the world the engine has received after `applied`: visitors created (identified if
    their email's PUT came), charges booked (captured; refunds as the largest cumulative seen),
    sessions completed. Rule 3: attribution is always rule 2 on this."""
    visitors: dict[str, VisitorSpec] = {}
    refunds: dict[str, int] = {}
    for item in applied:
        if item.visitor is not None:
            spec = item.visitor
            identified = item.identify or (spec.id in visitors and visitors[spec.id].email is not None)
            visitors[spec.id] = replace(spec, email=spec.email if identified else None)
        elif item.charge is not None and item.captured:
            refunds[item.charge.id] = max(refunds.get(item.charge.id, 0), item.refunded)
    charges = tuple(
        replace(c, refunds=(refunds[c.id],) if refunds[c.id] else ()) for c in world.charges if c.id in refunds
    )
    sessions = {item.session.id for item in applied if item.session is not None}
    return World(
        tuple(visitors[v.id] for v in world.visitors if v.id in visitors),
        world.customers,
        charges,
        tuple(s for s in world.sessions if s.id in sessions),
    )


# ---- domain rule 2 on the whole world --------------------------------------------------------------------


Owner = tuple[str | None, int | None]  # (visitor or None, tier or None)
LinkView = tuple[str, int, tuple[int, str]] | None  # (visitor, tier, (created, id) of its evidence)


def email_key(email: str | None) -> str | None:
    return (email.strip().lower() or None) if email else None


@dataclass(frozen=True)
class Expected:
    owners: dict[str, Owner]
    links: dict[str, LinkView]


def expected(world: World) -> Expected:
    """Rule 2 as domain.md states it, on all of the world's evidence."""
    known = {v.id for v in world.visitors}
    heads: dict[str, str] = {}
    for v in sorted(world.visitors, key=lambda v: (v.identified_at, v.id)):
        if key := email_key(v.email):
            heads.setdefault(key, v.id)

    def first_known(*names: str | None) -> str | None:
        return next((n for n in names if n and n in known), None)

    def paying(charge: ChargeSpec) -> SessionSpec | None:
        paying = [s for s in world.sessions if charge.payment_intent and s.payment_intent == charge.payment_intent]
        return min(paying, key=lambda s: (s.created, s.id), default=None)

    own: dict[str, Owner] = {}
    for c in world.charges:
        session = paying(c)
        customer = world.customer(c.customer)
        tier1 = first_known(
            session.meta_visitor if session else None,
            session.client_reference_id if session else None,
            c.meta_visitor,
            customer.meta_visitor if customer else None,
        )
        emails = (
            customer.email if customer else None,
            c.billing_email,
            c.receipt_email,
            session.email if session else None,
        )
        by_email = next((heads[k] for k in map(email_key, emails) if k and k in heads), None)
        own[c.id] = (tier1, 1) if tier1 else (by_email, 2) if by_email else (None, None)

    links: dict[str, LinkView] = {}
    referenced = {c.customer for c in world.charges} | {s.customer for s in world.sessions}
    for customer_id in sorted(x for x in referenced if x):
        candidates: list[tuple[tuple[int, str], str, int]] = []
        for c in world.charges:
            visitor, tier = own[c.id]
            if c.customer == customer_id and visitor is not None and tier is not None:
                candidates.append(((c.created, c.id), visitor, tier))
        for s in world.sessions:
            named = first_known(s.meta_visitor, s.client_reference_id)
            if s.customer == customer_id and named:
                candidates.append(((s.created, s.id), named, 1))
        if candidates:
            evidence, visitor, tier = min(candidates)
            links[customer_id] = (visitor, tier, evidence)
        else:
            links[customer_id] = None

    owners: dict[str, Owner] = {}
    for c in world.charges:
        visitor, tier = own[c.id]
        link = links.get(c.customer) if c.customer else None
        if tier == 1:
            owners[c.id] = (visitor, 1)
        elif link is not None:
            owners[c.id] = (link[0], link[1] if link[2] == (c.created, c.id) else 3)
        else:
            owners[c.id] = (visitor, tier)
    return Expected(owners, links)
