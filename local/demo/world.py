"""The demo world: a Stripe account in the emulator with 18 months of history, and the visitors of
project `demo` that match it, made through the same doors a merchant's shop would use.

The history is seeded in the emulator (`POST /_emulator/seed`: customers, one-time charges in usd, eur
and jpy, refunds, Checkout Sessions naming a visitor on a share of payments, subscriptions with their
invoices). Visitors are written through the visitor API (`PUT /projects/demo/visitors/{id}`), as the
tracker writes them: 30% of the customers came through the tracker, each with an acquisition source,
and half of those identified with their email. Nothing is connected: the merchant pastes the
restricted key in the page (or `make demo` connects it through the API).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl

PROJECT = "demo"
DAY = 86_400
HISTORY_DAYS = 540  # 18 months
CURRENCIES = ("usd", "eur", "jpy")
VISITOR_PREFIX = "visitor-"
EMAIL_PREFIX = "customer"
# (source, medium, referrer, weight): where the tracked customers came from
SOURCES = (
    ("google", "organic", "https://www.google.com/", 35),
    ("direct", None, None, 20),
    ("newsletter", "email", None, 15),
    ("twitter", "social", "https://t.co/", 15),
    ("producthunt", "referral", "https://www.producthunt.com/", 15),
)
LANDING_PAGES = ("/", "/pricing", "/blog/revenue-attribution", "/features")
SUBSCRIPTION_CHARGES_EACH = 6  # what a seeded subscription's invoices charge on average


RETRIES = 6
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DemoSize:
    """The account's size, from the number of charges wanted (DEMO_CHARGES, default 10,000)."""

    charges: int = 10_000

    @property
    def customers(self) -> int:
        return max(4, self.charges // 5)

    @property
    def subscriptions(self) -> int:
        return max(2, self.customers * 3 // 20)  # 300 of 2,000

    @property
    def charges_per_customer(self) -> int:
        one_time = self.charges - self.subscriptions * SUBSCRIPTION_CHARGES_EACH
        return max(1, round(one_time / self.customers))

    @property
    def visitors(self) -> int:
        """The customers who came through the tracker: 30%. Each visitor is a PUT through the API
        (about 5 DynamoDB requests, 40 ms in moto), so their number is what seeding takes."""
        return self.customers * 3 // 10

    @classmethod
    def from_env(cls, value: str | None) -> DemoSize:
        text = (value or "").replace(",", "").replace("_", "").strip()
        if not text:
            return cls()
        if not text.isdigit() or int(text) < 10:
            raise SystemExit(f"DEMO_CHARGES must be a number of charges (at least 10), not {value!r}")
        return cls(int(text))


@dataclass(frozen=True)
class DemoVisitor:
    visitor_id: str
    email: str | None
    source: str


@dataclass
class DemoWorld:
    account: EmulatorAccount
    seeded: dict[str, Any]  # the emulator's seed counts
    visitors: list[DemoVisitor]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def charges(self) -> int:
        """Charges in the account's history (failed ones included), as the backfill reads them."""
        return int(self.seeded["charges"]) + int(self.seeded.get("subscription_charges", 0))


class Api:
    """The stack's HTTP API with a dashboard token for one project."""

    def __init__(self, base_url: str, project: str, jwt_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.project = project
        self._token = issue_token([project], jwt_secret)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; a 5xx or 429 (the API's "retry") is asked again, as the dashboard would."""
        for attempt in range(RETRIES):
            status, answer = self._call_once(method, path, body)
            if status not in RETRIED_STATUSES or attempt == RETRIES - 1:
                break
            time.sleep(0.2 * 2**attempt)
        return status, answer

    def _call_once(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {answer}")
        return answer

    def project_path(self, rest: str) -> str:
        return f"/projects/{self.project}{rest}"


def demo_visitors(size: DemoSize, seed: int = 1) -> list[DemoVisitor]:
    """The tracked customers' visitors: customer i's is `visitor-<i>` (the id its Checkout Sessions
    carry), half of them identified with the customer's email."""
    rng = random.Random(seed)
    weights = [s[3] for s in SOURCES]
    visitors = []
    for i in range(size.visitors):
        source = rng.choices(SOURCES, weights)[0][0]
        email = f"{EMAIL_PREFIX}{i}@example.com" if rng.random() < 0.5 else None
        visitors.append(DemoVisitor(f"{VISITOR_PREFIX}{i}", email, source))
    return visitors


def visitor_body(visitor: DemoVisitor, rng: random.Random) -> dict[str, Any]:
    source, medium, referrer, _ = next(s for s in SOURCES if s[0] == visitor.source)
    acquisition: dict[str, Any] = {"source": source, "landing_page": rng.choice(LANDING_PAGES)}
    if medium:
        acquisition["medium"] = medium
    if referrer:
        acquisition["referrer"] = referrer
    if source == "newsletter":
        acquisition["campaign"] = rng.choice(("spring-launch", "monthly-digest"))
    body: dict[str, Any] = {"acquisition": acquisition}
    if visitor.email:
        body["email"] = visitor.email
    return body


def seed_demo(api: Api, control: EmulatorControl, size: DemoSize, now: int | None = None) -> DemoWorld:
    """A new emulator account with the demo history, and the project's matching visitors."""
    now = int(time.time()) if now is None else now
    started = time.perf_counter()
    account = control.create_account()
    seeded = control.seed(
        account.id,
        customers=size.customers,
        charges_per_customer=size.charges_per_customer,
        start=now - HISTORY_DAYS * DAY,
        end=now - 3_600,
        currencies=list(CURRENCIES),
        refund_rate=0.08,
        failure_rate=0.04,
        checkout_rate=0.6,
        visitor_id_rate=0.7,
        visitor_customers=size.visitors,
        email_prefix=EMAIL_PREFIX,
        visitor_prefix=VISITOR_PREFIX,
        subscriptions=size.subscriptions,
    )
    seeded_at = time.perf_counter()
    visitors = demo_visitors(size)
    rng = random.Random(2)
    for visitor in visitors:  # one at a time: moto serves the stack's process, threads add nothing
        api.ok("PUT", api.project_path(f"/visitors/{visitor.visitor_id}"), visitor_body(visitor, rng))
    done = time.perf_counter()
    seconds = {"emulator": round(seeded_at - started, 2), "visitors": round(done - seeded_at, 2)}
    return DemoWorld(account, seeded, visitors, seconds)
