"""Generated worlds: a merchant's Stripe history made in the emulator, and the visitors who identified meanwhile.

`generate(control, seed, size)` drives the Stripe emulator through the official SDK, as a merchant's
customers would (Checkout in payment and subscription mode with and without `ripples_visitor_id`,
direct PaymentIntents of existing customers, guest checkouts, manual captures, partial and full
refunds, renewals, subscription updates and cancellations), moving the emulator's clock forward
between actions so the history spans `size.days` days. Every choice comes from one seeded
`random.Random`, so a seed names the same world (the emulator's ids differ between generations, the
shape does not).

The result is a `History`: the steps a project receives, in the order they happened: the Stripe
events Ripples processes (read back from `GET /v1/events` with the secret key, in the emulator's own
order, as raw JSON) and the visitor PUTs (identify, anonymous visitors appearing, email changes) at
their place among them. No project is connected while the history is made, so the emulator delivers
none of it: the harness delivers it itself.

Stories that each world contains (size permitting):
- visitors identified first, anonymous visitors (acquisition only) named by Checkout metadata, and
  anonymous visitors who appear only after the payments naming them;
- a customer linked through its first session's `ripples_visitor_id`, whose later direct charges are
  tier 3 through the link (the case seen failing: one such charge ended unattributed);
- link moves: a customer's Checkout Session created before its first direct charges and completed
  after them, so the earliest evidence, and the link, arrives late;
- email changes: a visitor changing its email mid-stream (pending revenue of the new email moves to
  it, revenue of the old one leaves it), a second visitor taking an email already held, a repeated
  identify with the same address in another case;
- guest checkouts (no customer), subscriptions (some with a trial) renewed monthly, updated
  (`cancel_at_period_end`, a price change) and canceled; refunds partial, full, and partial then full;
  manual captures (some partial); ids naming visitors that never exist.
"""

from __future__ import annotations

import json
import random
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared.stripe_api.events import PROCESSED_EVENT_TYPES

DAY = 86_400
HOUR = 3_600
SYNC_EVERY = 20 * DAY  # the Events API keeps 30 days: read what is new well before it ages out
SOURCES = ("google", "newsletter", "twitter", "partner", "podcast")


@dataclass(frozen=True)
class WorldSize:
    """How much history one world holds."""

    customers: int = 8
    identified_visitors: int = 8
    anonymous_visitors: int = 4
    direct_charges: int = 20  # PaymentIntents of existing customers, beyond their first payment
    guest_checkouts: int = 3
    subscriptions: int = 2
    refund_rate: float = 0.2
    manual_capture_rate: float = 0.1
    email_changes: int = 2
    days: int = 60

    @property
    def label(self) -> str:
        return f"{self.customers}c/{self.direct_charges}ch/{self.subscriptions}s/{self.days}d"


SMALL = WorldSize()
# What tests/e2e/test_concurrency.py runs per seed: every story, small enough for a few seeds a minute.
TEST = WorldSize(
    customers=6,
    identified_visitors=6,
    anonymous_visitors=3,
    direct_charges=16,
    guest_checkouts=2,
    subscriptions=2,
    email_changes=2,
    days=60,
)
MEDIUM = WorldSize(
    customers=14,
    identified_visitors=14,
    anonymous_visitors=6,
    direct_charges=60,
    guest_checkouts=5,
    subscriptions=3,
    email_changes=3,
    days=75,
)
# The shape of the history in which the bug was seen: 25 customers, ~360 charges over 3 months,
# 6 subscriptions, 10 guest checkouts, visitors identified first.
OBSERVED = WorldSize(
    customers=25,
    identified_visitors=22,
    anonymous_visitors=8,
    direct_charges=320,
    guest_checkouts=10,
    subscriptions=6,
    email_changes=4,
    days=90,
)


@dataclass(frozen=True)
class StripeEvent:
    """One event as Stripe's Events API (and a webhook delivery) carries it: the raw JSON body."""

    id: str
    type: str
    created: int
    body: bytes

    @property
    def label(self) -> str:
        return f"{self.type} {self.id}"


@dataclass(frozen=True)
class VisitorPut:
    """`PUT /projects/{p}/visitors/{visitor_id}` with this body, at its place in the history."""

    visitor_id: str
    body: dict[str, Any]
    note: str

    @property
    def label(self) -> str:
        return f"PUT {self.visitor_id} {self.note}"


Step = StripeEvent | VisitorPut


@dataclass
class History:
    seed: int
    size: WorldSize
    account: EmulatorAccount
    steps: list[Step] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # what was made: charges, refunds, sessions...
    notes: dict[str, str] = field(default_factory=dict)  # object id -> what it is in the story

    @property
    def events(self) -> list[StripeEvent]:
        return [s for s in self.steps if isinstance(s, StripeEvent)]

    @property
    def puts(self) -> list[VisitorPut]:
        return [s for s in self.steps if isinstance(s, VisitorPut)]

    def describe(self) -> str:
        made = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"seed {self.seed} ({self.size.label}): {len(self.events)} events, {len(self.puts)} visitor PUTs; {made}"


# ---- generation ------------------------------------------------------------------------------------------


@dataclass
class _Action:
    at: int  # seconds after the world's start
    seq: int
    run: Callable[[], None]


@dataclass
class _Charge:
    ref: str
    at: int
    booked: int  # what will be captured
    manual: bool = False


class _Generator:
    def __init__(self, control: EmulatorControl, seed: int, size: WorldSize) -> None:
        self.control = control
        self.rng = random.Random(seed)
        self.size = size
        self.span = size.days * DAY
        self.account = control.create_account()
        self.client = control.client(self.account.secret_key)
        self.history = History(seed, size, self.account)
        self.actions: list[_Action] = []
        self.refs: dict[str, str] = {}  # symbolic name -> Stripe id, filled as actions run
        self.seen: set[str] = set()
        self.clock = 0  # seconds after the start, as the emulator's clock stands
        self.synced_at = 0
        self.counts: dict[str, int] = {}

    # -- plan ---------------------------------------------------------------------------------------------

    def at(self, when: float, run: Callable[[], None]) -> None:
        self.actions.append(_Action(int(max(0, min(when, self.span))), len(self.actions), run))

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def plan(self) -> None:
        rng, size = self.rng, self.size
        early = 0.08 * self.span
        identified = [f"vis-{i:03d}" for i in range(size.identified_visitors)]
        emails = {v: f"buyer{i:03d}@shop.test" for i, v in enumerate(identified)}
        anonymous = [f"anon-{i:03d}" for i in range(size.anonymous_visitors)]
        late_anonymous = set(rng.sample(anonymous, k=len(anonymous) // 3))
        late_identified = set(rng.sample(identified, k=len(identified) // 5))

        # Visitors: most identified first (before any payment), a few identify late.
        for v in identified:
            when = rng.uniform(0.3 * self.span, 0.9 * self.span) if v in late_identified else rng.uniform(0, early)
            body = {
                "email": emails[v],
                "acquisition": {"source": rng.choice(SOURCES), "campaign": f"c{rng.randrange(9)}"},
            }
            self.at(when, self._put(v, body, "identify" + (" (late)" if v in late_identified else "")))
        for v in anonymous:
            when = rng.uniform(0.5 * self.span, self.span) if v in late_anonymous else rng.uniform(0, early)
            body = {"acquisition": {"source": rng.choice(SOURCES), "medium": "cpc"}}
            self.at(when, self._put(v, body, "anonymous" + (" (appears late)" if v in late_anonymous else "")))

        # Emails that no visitor has at first; email changes hand some of them to visitors later.
        spare = [f"later{i:03d}@shop.test" for i in range(max(1, size.email_changes))]
        strangers = [f"stranger{i:03d}@elsewhere.test" for i in range(size.customers + size.subscriptions + 1)]

        def spelled(email: str) -> str:
            return rng.choice([email, email.upper(), f" {email.title()} ", email])

        def customer_email(i: int) -> str | None:
            roll = rng.random()
            if roll < 0.55:
                return spelled(emails[rng.choice(identified)])
            if roll < 0.7:
                return rng.choice(spare)
            if roll < 0.95:
                return strangers[i]
            return None

        def named_visitor() -> str | None:
            roll = rng.random()
            if roll < 0.5 and anonymous:
                return rng.choice(anonymous)
            if roll < 0.8:
                return rng.choice(identified)
            if roll < 0.9:
                return f"ghost-{rng.randrange(1000)}"  # never created in the project: not trusted
            return None

        # Email changes: a visitor takes a spare email (its pending revenue moves), or another
        # visitor's (shared: the first identified keeps it); a visitor may change twice (in order).
        changers = rng.sample(identified, k=min(len(identified), size.email_changes))
        for n, v in enumerate(changers):
            first = rng.uniform(0.3 * self.span, 0.7 * self.span)
            new = spare[n % len(spare)] if n % 2 == 0 else emails[rng.choice(identified)]
            self.at(first, self._put(v, {"email": spelled(new)}, f"email change -> {new}"))
            if n == 0:
                again = spare[(n + 1) % len(spare)]
                self.at(
                    first + rng.uniform(HOUR, 10 * DAY), self._put(v, {"email": again}, f"second change -> {again}")
                )
        keeping = [v for v in identified if v not in changers]
        if keeping:  # the same address again, in another case: keeps its time, moves nothing
            v = rng.choice(keeping)
            self.at(rng.uniform(early, self.span), self._put(v, {"email": emails[v].upper()}, "same email again"))

        # Customers: each with a story; direct charges are shared out among them.
        shares = [0] * size.customers
        for _ in range(size.direct_charges):
            shares[rng.randrange(size.customers)] += 1
        for i in range(size.customers):
            start = rng.uniform(0.05 * self.span, 0.75 * self.span)
            email = customer_email(i)
            meta = named_visitor() if rng.random() < 0.1 else None
            story = rng.choices(("checkout-first", "direct", "link-move"), weights=(4, 4, 2))[0]
            self.customer_story(i, start, email, meta, story, shares[i], named_visitor)

        for i in range(size.guest_checkouts):
            email = rng.choice([spelled(emails[rng.choice(identified)]), strangers[i % len(strangers)], None])
            visitor = named_visitor() if rng.random() < 0.4 else None
            self.guest_checkout(i, rng.uniform(0.05 * self.span, 0.95 * self.span), email, visitor)

        for i in range(size.subscriptions):
            self.subscription_story(i, rng.uniform(0.05 * self.span, 0.5 * self.span), customer_email, named_visitor)

    def customer_story(
        self,
        i: int,
        start: float,
        email: str | None,
        meta: str | None,
        story: str,
        direct: int,
        named_visitor: Callable[[], str | None],
    ) -> None:
        rng = self.rng
        cus = f"cus{i}"
        self.at(start, self._create_customer(cus, email, meta))
        currency = rng.choice(("usd", "usd", "eur", "jpy"))
        when = start + rng.uniform(60, HOUR)
        if story in ("checkout-first", "link-move"):
            session = f"cs{i}"
            visitor = named_visitor()
            amount = self.amount(currency)
            self.at(when, self._create_session(session, cus, visitor, amount, currency))
            if story == "checkout-first":
                self.at(when + rng.uniform(30, 900), self._complete_session(session, f"ch-{session}"))
                self.maybe_refund(_Charge(f"ch-{session}", int(when + 900), amount))
                when += HOUR
            else:
                # Link move: direct charges before the session completes (within its 24 h); the session,
                # created first, is the earliest evidence and takes the link when it arrives.
                early = max(1, min(direct, 2))
                for k in range(early):
                    self.direct_charge(f"ch-{cus}-e{k}", cus, when + (k + 1) * rng.uniform(60, 3 * HOUR), currency)
                direct -= early
                done = when + rng.uniform(7 * HOUR, 20 * HOUR)
                self.at(done, self._complete_session(session, f"ch-{session}"))
                self.maybe_refund(_Charge(f"ch-{session}", int(done), amount))
                when = done + HOUR
        for k in range(direct):
            when += rng.uniform(HOUR, 0.25 * (self.span - start) / max(1, direct) * 4)
            self.direct_charge(f"ch-{cus}-{k}", cus, when, currency)

    def amount(self, currency: str) -> int:
        """Minor units: 5.00 to 299.99 (yen are whole: 500 to 29,999 JPY)."""
        return self.rng.randrange(5, 300) * 100 + self.rng.choice((0, 50, 99))

    def direct_charge(self, ref: str, cus: str, when: float, currency: str) -> None:
        rng = self.rng
        amount = self.amount(currency)
        manual = rng.random() < self.size.manual_capture_rate
        meta = f"ghost-{rng.randrange(1000)}" if rng.random() < 0.03 else None
        self.at(when, self._payment_intent(ref, cus, amount, currency, manual, meta))
        booked = amount
        if manual:
            booked = amount if rng.random() < 0.5 else amount // 2
            when += rng.uniform(60, 6 * HOUR)
            self.at(when, self._capture(ref, booked))
        self.maybe_refund(_Charge(ref, int(when), booked, manual))

    def maybe_refund(self, charge: _Charge) -> None:
        rng = self.rng
        if rng.random() >= self.size.refund_rate:
            return
        when = charge.at + rng.uniform(HOUR, 10 * DAY)
        kind = rng.choices(("full", "partial", "partial-then-full"), weights=(4, 3, 3))[0]
        if kind == "full":
            self.at(when, self._refund(charge.ref, None))
        else:
            partial = max(1, charge.booked // rng.choice((2, 3, 4)))
            self.at(when, self._refund(charge.ref, partial))
            if kind == "partial-then-full":
                self.at(when + rng.uniform(60, 5 * DAY), self._refund(charge.ref, None))

    def guest_checkout(self, i: int, when: float, email: str | None, visitor: str | None) -> None:
        rng = self.rng
        session = f"guest{i}"
        currency = rng.choice(("usd", "eur"))
        amount = self.amount(currency)
        self.at(when, self._create_session(session, None, visitor, amount, currency, email=email))
        self.at(when + rng.uniform(30, 1200), self._complete_session(session, f"ch-{session}", email=email))
        self.maybe_refund(_Charge(f"ch-{session}", int(when + 1200), amount))

    def subscription_story(
        self,
        i: int,
        start: float,
        customer_email: Callable[[int], str | None],
        named_visitor: Callable[[], str | None],
    ) -> None:
        rng = self.rng
        sub = f"sub{i}"
        session = f"subcs{i}"
        existing = f"cus{rng.randrange(self.size.customers)}" if rng.random() < 0.3 and self.size.customers else None
        email = None if existing else (customer_email(self.size.customers + i) or f"subscriber{i}@shop.test")
        trial = rng.random() < 0.3
        visitor = named_visitor() if rng.random() < 0.7 else None
        price = rng.randrange(2)
        self.at(start, self._subscription_session(session, sub, existing, email, visitor, price, trial))
        ends = rng.random() < 0.4
        when = start
        renewals = 0
        while when + 30 * DAY < self.span and renewals < 3:
            when += 30 * DAY + rng.uniform(0, HOUR)
            self.at(when, self._renew(sub))
            renewals += 1
        if rng.random() < 0.5:
            self.at(
                rng.uniform(start + DAY, self.span), self._update_subscription(sub, price_change=rng.random() < 0.5)
            )
        if ends:
            self.at(rng.uniform(start + 2 * DAY, self.span), self._cancel(sub))

    # -- actions ---------------------------------------------------------------------------------------------

    def _put(self, visitor_id: str, body: dict[str, Any], note: str) -> Callable[[], None]:
        def run() -> None:
            self.sync()  # the events before it, then it
            self.history.steps.append(VisitorPut(visitor_id, body, note))
            self.count("visitor PUTs")

        return run

    def _create_customer(self, ref: str, email: str | None, meta: str | None) -> Callable[[], None]:
        def run() -> None:
            params: Any = {"name": ref}
            if email:
                params["email"] = email
            if meta:
                params["metadata"] = {"ripples_visitor_id": meta}
            customer = self.client.v1.customers.create(params=params)
            self.refs[ref] = customer.id
            self.note(customer.id, f"customer {ref} email={email!r}" + (f" meta={meta}" if meta else ""))
            self.count("customers")

        return run

    def _create_session(
        self,
        ref: str,
        cus: str | None,
        visitor: str | None,
        amount: int,
        currency: str,
        email: str | None = None,
    ) -> Callable[[], None]:
        def run() -> None:
            params: Any = {
                "mode": "payment",
                "line_items": [
                    {"price_data": {"currency": currency, "unit_amount": amount, "product_data": {"name": "Order"}}}
                ],
                "success_url": "https://shop.example/thanks",
            }
            if cus:
                params["customer"] = self.refs[cus]
            elif email:
                params["customer_email"] = email.strip()
            if visitor:
                params["metadata"] = {"ripples_visitor_id": visitor}
            session = self.client.v1.checkout.sessions.create(params=params)
            self.refs[ref] = session.id
            kind = "guest checkout" if not cus else "checkout"
            self.note(session.id, f"{kind} {ref} of {cus or email!r} visitor={visitor}")
            self.count("guest checkouts" if not cus else "checkout sessions")

        return run

    def _complete_session(self, ref: str, charge_ref: str, email: str | None = None) -> Callable[[], None]:
        def run() -> None:
            params = {"email": email.strip()} if email else {}
            resp = self.client.raw_request(
                "post", f"/v1/test_helpers/checkout/sessions/{self.refs[ref]}/complete", **params
            )
            session = self.client.deserialize(resp, api_mode="V1")
            pi = self.client.v1.payment_intents.retrieve(session["payment_intent"])
            self.refs[charge_ref] = str(pi.latest_charge)
            self.note(str(pi.latest_charge), f"charge of session {ref}")
            self.count("charges")

        return run

    def _payment_intent(
        self, ref: str, cus: str, amount: int, currency: str, manual: bool, meta: str | None
    ) -> Callable[[], None]:
        def run() -> None:
            params: Any = {
                "amount": amount,
                "currency": currency,
                "customer": self.refs[cus],
                "confirm": True,
                "payment_method": "pm_card_visa",
            }
            if manual:
                params["capture_method"] = "manual"
            if meta:
                params["metadata"] = {"ripples_visitor_id": meta}
            pi = self.client.v1.payment_intents.create(params=params)
            self.refs[ref] = str(pi.latest_charge)
            self.refs[f"pi-{ref}"] = pi.id
            self.note(str(pi.latest_charge), f"direct charge {ref} of {cus}" + (" (manual capture)" if manual else ""))
            self.count("charges")

        return run

    def _capture(self, ref: str, amount: int) -> Callable[[], None]:
        def run() -> None:
            self.client.v1.payment_intents.capture(self.refs[f"pi-{ref}"], params={"amount_to_capture": amount})
            self.count("captures")

        return run

    def _refund(self, ref: str, amount: int | None) -> Callable[[], None]:
        def run() -> None:
            params: Any = {"charge": self.refs[ref]}
            if amount is not None:
                params["amount"] = amount
            try:
                self.client.v1.refunds.create(params=params)
            except stripe.InvalidRequestError:  # fully refunded already (a partial was the whole)
                return
            self.count("refunds")

        return run

    def _subscription_session(
        self,
        ref: str,
        sub: str,
        cus: str | None,
        email: str | None,
        visitor: str | None,
        price: int,
        trial: bool,
    ) -> Callable[[], None]:
        def run() -> None:
            params: Any = {
                "mode": "subscription",
                "line_items": [{"price": self.price(price), "quantity": 1}],
                "success_url": "https://shop.example/thanks",
            }
            if cus and cus in self.refs:
                params["customer"] = self.refs[cus]
            elif email:
                params["customer_email"] = email.strip()
            if visitor:
                params["metadata"] = {"ripples_visitor_id": visitor}
            if trial:
                params["subscription_data"] = {"trial_period_days": 14}
            session = self.client.v1.checkout.sessions.create(params=params)
            resp = self.client.raw_request(
                "post",
                f"/v1/test_helpers/checkout/sessions/{session.id}/complete",
                **({"email": email.strip()} if email else {}),
            )
            done = self.client.deserialize(resp, api_mode="V1")
            self.refs[ref] = session.id
            self.refs[sub] = str(done["subscription"])
            self.note(str(done["subscription"]), f"subscription {sub} visitor={visitor} trial={trial}")
            self.count("subscriptions")

        return run

    def price(self, n: int) -> str:
        name = f"price{n}"
        if name not in self.refs:
            nickname, amount, currency = (("Basic monthly", 900, "usd"), ("Pro monthly", 2900, "usd"))[n % 2]
            price = self.client.v1.prices.create(
                params={
                    "currency": currency,
                    "unit_amount": amount,
                    "nickname": nickname,
                    "recurring": {"interval": "month"},
                    "product_data": {"name": nickname.split()[0]},
                }
            )
            self.refs[name] = price.id
        return self.refs[name]

    def _renew(self, sub: str) -> Callable[[], None]:
        def run() -> None:
            current = self.client.v1.subscriptions.retrieve(self.refs[sub])
            if current.status == "canceled":
                return
            self.client.raw_request("post", f"/v1/test_helpers/subscriptions/{self.refs[sub]}/renew")
            self.count("renewals")

        return run

    def _update_subscription(self, sub: str, price_change: bool) -> Callable[[], None]:
        def run() -> None:
            current = self.client.v1.subscriptions.retrieve(self.refs[sub])
            if current.status == "canceled":
                return
            params: Any  # the SDK types params as TypedDicts of literals; ours are built up
            if price_change:
                item = current["items"]["data"][0]
                other = 1 if item["price"]["id"] == self.refs.get("price0") else 0
                params = {"items": [{"id": item["id"], "price": self.price(other)}]}
            else:
                params = {"cancel_at_period_end": True}
            self.client.v1.subscriptions.update(self.refs[sub], params=params)
            self.count("subscription updates")

        return run

    def _cancel(self, sub: str) -> Callable[[], None]:
        def run() -> None:
            current = self.client.v1.subscriptions.retrieve(self.refs[sub])
            if current.status != "canceled":
                self.client.v1.subscriptions.cancel(self.refs[sub])
                self.count("cancellations")

        return run

    # -- running the plan ------------------------------------------------------------------------------------

    def note(self, object_id: str, text: str) -> None:
        self.history.notes[object_id] = text

    def _note_unnamed(self, event: dict[str, Any]) -> None:
        """Name what the story did not name itself: subscriptions' charges and customers."""
        obj = event["data"]["object"]
        customer = obj.get("customer")
        if isinstance(customer, str) and customer not in self.history.notes:
            self.note(customer, f"customer made by Checkout ({event['type']} {obj['id']})")
        if event["type"].startswith("charge.") and obj["id"] not in self.history.notes:
            self.note(obj["id"], f"subscription charge (first invoice or renewal) of {customer}")

    def advance_to(self, at: int) -> None:
        if at > self.clock:
            if at - self.synced_at >= SYNC_EVERY:
                self.sync()
            self.control.advance_clock(at - self.clock)
            self.clock = at

    def sync(self) -> None:
        """Append the processed events emitted since the last sync, oldest first (the emulator's order)."""
        fresh: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: list[tuple[str, str]] = [("limit", "100")] + [("types[]", t) for t in PROCESSED_EVENT_TYPES]
            if cursor:
                query.append(("starting_after", cursor))
            page = self._get(f"/v1/events?{urllib.parse.urlencode(query)}")
            stop = False
            for event in page["data"]:
                if event["id"] in self.seen:
                    stop = True
                    break
                fresh.append(event)
            if stop or not page["has_more"] or not page["data"]:
                break
            cursor = page["data"][-1]["id"]
        for event in reversed(fresh):
            self.seen.add(event["id"])
            self._note_unnamed(event)
            body = json.dumps(event, indent=2).encode()
            self.history.steps.append(StripeEvent(event["id"], event["type"], int(event["created"]), body))
        self.synced_at = self.clock

    def _get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.control.base_url + path, headers={"Authorization": f"Bearer {self.account.secret_key}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            page: dict[str, Any] = json.loads(response.read())
            return page

    def run(self) -> History:
        start_offset = self.control.call("POST", "clock", {"offset": -self.span - DAY})["offset"]
        try:
            self.plan()
            for action in sorted(self.actions, key=lambda a: (a.at, a.seq)):
                self.advance_to(action.at)
                action.run()
            self.sync()
        finally:
            self.control.call("POST", "clock", {"offset": 0})
        assert start_offset == -self.span - DAY
        self.history.counts = dict(self.counts)
        self.history.counts["events"] = len(self.history.events)
        return self.history


def generate(
    control: EmulatorControl,
    seed: int,
    size: WorldSize = SMALL,
    *,
    before: Callable[[EmulatorAccount], None] | None = None,
) -> History:
    """A new emulator account holding a generated history, and the steps a project receives from it.
    `before` is called with the account while it is still empty (to connect projects to it).

    Moves the emulator's clock (it is the emulator's, not the account's): generate one world at a time.
    """
    generator = _Generator(control, seed, size)
    if before is not None:
        before(generator.account)
    return generator.run()
