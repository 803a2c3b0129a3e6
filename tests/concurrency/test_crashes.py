"""A request that dies at any step, then its retry, ends as if it had never died (domain rule 4: "a
crash at any point leaves the invariant true; a retry completes the work").

For each path (a webhook event or a visitor PUT after some history), the clean request's DynamoDB
calls are counted; then, for every call N and both sides of it, a fresh project starts from the
history's state, the request is killed with `Crash` before the N-th call (nothing of it happened) or
after it (it took effect, then the Lambda died: after the last call is "after the commit, before the
response"), the same request is made again without faults (Stripe's retry of the event, the
client's retry of the PUT), and the project's whole RevenueTable contents must equal those of a
clean run of the same history (normalised: `harness.normalise`). The invariant must hold right after
the crash too.

The Stripe side of every path is made once per module in one emulator account, and one moto serves
the module: every test starts from empty tables (`Stack.reset()`, as good as a new moto for
DynamoDB, and ~0.3 s cheaper), and each project has a new id (so the process's per-project caches
start fresh too). A path's history is replayed through the handlers once, from empty tables; its
items are kept and copied under each new project's id (`Project.load`): every project of the path,
the clean run's included, starts from the state the history left, as if another Lambda container
had handled it. The clean run of a path is made once and kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.stripe_emulator.control_client import EmulatorControl
from local.stripe_emulator.server import RunningEmulator
from tests.apigw import response_json
from tests.revenue_checks import assert_invariant

from .harness import (
    Merchant,
    Project,
    Response,
    Stack,
    connected,
    count_calls,
    crash_at,
    differences,
    event_object,
    event_type,
    failed,
    moto_stack,
    open_merchant,
    pick,
)


@dataclass(frozen=True)
class Step:
    """A webhook delivery (`body`) or a visitor PUT (`visitor`, `put`)."""

    body: bytes | None = None
    visitor: str | None = None
    put: dict[str, Any] | None = None

    def run(self, project: Project) -> Response:
        if self.body is not None:
            return project.deliver(self.body)
        assert self.visitor is not None
        return project.put(self.visitor, self.put)

    def __str__(self) -> str:
        if self.body is not None:
            return f"{event_type(self.body)} {event_object(self.body)['id']}"
        return f"PUT {self.visitor} {self.put}"


def put(visitor: str, body: dict[str, Any] | None = None) -> Step:
    return Step(visitor=visitor, put=body or {})


def events(bodies: list[bytes]) -> list[Step]:
    return [Step(body=b) for b in bodies]


Owner = tuple[str | None, int | None, int]  # a ledger entry: owner, tier, net revenue


@dataclass
class Path:
    """A request after some history, and what its clean run must end in (so that a crash test can
    never pass by comparing two equally wrong runs)."""

    history: list[Step]
    target: Step
    ledger: dict[str, Owner]  # every charge of the project
    links: dict[str, str | None]  # every customer of the project -> its visitor
    plans: dict[str, int] = field(default_factory=dict)  # visitor -> its plan's amount
    timelines: dict[str, dict[str, int]] = field(default_factory=dict)  # visitor -> event type -> count

    def check(self, project: Project) -> None:
        assert project.ledger() == self.ledger
        assert project.links() == self.links
        for visitor, amount in self.plans.items():
            assert project.visitor(visitor)["plan"]["amount"] == amount, visitor
        for visitor, counts in self.timelines.items():
            kinds = Counter(e["type"] for e in project.timeline(visitor))
            assert {kind: kinds[kind] for kind in counts} == counts, visitor


# The paths, and how many DynamoDB calls each one's clean request may make: every call gets a crash
# point before and after it. Crash points beyond the calls of the clean request are skipped (an engine
# making fewer calls); `test_the_clean_request` fails when a clean request makes more calls than
# listed here (raise the number: those crash points are missing). A webhook's last call is the
# integration's `last_event_at` (UpdateItem on the integrations table): its project is new to the process.
CALLS = {
    "charge_of_a_new_customer_unattributed": 6,
    "charge_of_a_new_customer_attributed": 6,
    "charge_of_a_linked_customer": 4,  # + the owner's source, which its rollup is kept under
    "charge_refunded": 4,
    "session_moving_the_link": 8,
    "subscription_updated_plan": 4,
    "invoice_paid": 4,
    "put_creates_a_visitor_named_by_metadata": 9,
    "put_sets_an_email_of_pending_charges": 12,  # + the new owner's source
    "put_changes_the_email": 15,  # + the new owner's source
    "put_changes_the_source": 8,
}


def charges(bodies: list[bytes]) -> list[bytes]:
    return [b for b in bodies if event_type(b) == "charge.succeeded"]


def charges_in(bodies: list[bytes]) -> list[str]:
    return [event_object(b)["id"] for b in charges(bodies)]


def build_paths(m: Merchant) -> dict[str, Path]:
    """The Stripe side of every path (one account; nothing delivered yet)."""
    paths: dict[str, Path] = {}

    # A new customer's first charge: no visitor has its email, or one has.
    customer = m.customer("nobody1@example.com")
    charge = m.pay(1200, customer)
    paths["charge_of_a_new_customer_unattributed"] = Path(
        [put("v1", {"email": "someone1@example.com"})],
        Step(body=pick(m.new_events(), "charge.succeeded", charge)),
        ledger={charge: (None, None, 1200)},
        links={customer: None},
    )
    customer = m.customer("buyer2@example.com")
    charge = m.pay(1300, customer)
    paths["charge_of_a_new_customer_attributed"] = Path(
        [put("v2", {"email": "Buyer2@example.com"})],
        Step(body=pick(m.new_events(), "charge.succeeded", charge)),
        ledger={charge: ("v2", 2, 1300)},
        links={customer: "v2"},
    )

    # A linked customer's next charge (the fast path).
    customer = m.customer("buyer3@example.com")
    first = m.pay(1400, customer)
    m.later()
    second = m.pay(1500, customer)
    made = m.new_events()
    paths["charge_of_a_linked_customer"] = Path(
        [put("v3", {"email": "buyer3@example.com"}), Step(body=pick(made, "charge.succeeded", first))],
        Step(body=pick(made, "charge.succeeded", second)),
        ledger={first: ("v3", 2, 1400), second: ("v3", 3, 1500)},
        links={customer: "v3"},
    )

    # A refund of an attributed charge.
    customer = m.customer("buyer4@example.com")
    charge = m.pay(2500, customer)
    m.later()
    m.refund(charge, 1000)
    made = m.new_events()
    paths["charge_refunded"] = Path(
        [put("v4", {"email": "buyer4@example.com"}), Step(body=pick(made, "charge.succeeded", charge))],
        Step(body=pick(made, "charge.refunded", charge)),
        ledger={charge: ("v4", 2, 1500)},
        links={customer: "v4"},
        timelines={"v4": {"Charge Succeeded": 1, "Charge Refunded": 1}},
    )

    # A late Checkout Session, created before the customer's charges, moves the link and its charges.
    customer = m.customer("buyer5@example.com")
    session = m.checkout("payment", m.one_time(5000), customer=customer, metadata={"ripples_visitor_id": "v5-session"})
    m.later()
    first = m.pay(1000, customer)
    m.later()
    m.complete(session)
    made = m.new_events()
    (paid,) = set(charges_in(made)) - {first}
    paths["session_moving_the_link"] = Path(
        [put("v5-mail", {"email": "buyer5@example.com"}), put("v5-session"), *events(charges(made))],
        Step(body=pick(made, "checkout.session.completed", session)),
        ledger={first: ("v5-session", 3, 1000), paid: ("v5-session", 1, 5000)},
        links={customer: "v5-session"},
        timelines={"v5-mail": {"Charge Succeeded": 0}, "v5-session": {"Checkout Completed": 1}},
    )

    # A subscription bought through Checkout, then changed (the plan follows); and one renewed.
    price = m.monthly_price(1500, "Pro monthly")
    session = m.checkout("subscription", [{"price": price, "quantity": 1}], metadata={"ripples_visitor_id": "v6"})
    bought = m.complete(session, email="buyer6@example.com")
    made = m.new_events()
    m.later()
    item = m.client.v1.subscriptions.retrieve(bought["subscription"])["items"]["data"][0]["id"]
    m.client.v1.subscriptions.update(bought["subscription"], params={"items": [{"id": item, "quantity": 2}]})
    paths["subscription_updated_plan"] = Path(
        [put("v6"), *events(made)],
        Step(body=pick(m.new_events(), "customer.subscription.updated", bought["subscription"])),
        ledger=dict.fromkeys(charges_in(made), ("v6", 1, 1500)),
        links={bought["customer"]: "v6"},
        plans={"v6": 3000},
        timelines={"v6": {"Subscription Updated": 3}},
    )

    session = m.checkout("subscription", [{"price": price, "quantity": 1}], metadata={"ripples_visitor_id": "v7"})
    bought = m.complete(session, email="buyer7@example.com")
    made = m.new_events()
    m.later(86_400)
    m.renew(bought["subscription"])
    renewal = m.new_events()
    invoice_paid = pick(renewal, "invoice.paid")
    ((first,), (renewed,)) = charges_in(made), charges_in(renewal)
    paths["invoice_paid"] = Path(
        [put("v7"), *events(made), *events([b for b in renewal if b is not invoice_paid])],
        Step(body=invoice_paid),
        ledger={first: ("v7", 1, 1500), renewed: ("v7", 3, 1500)},
        links={bought["customer"]: "v7"},
        plans={"v7": 1500},
        timelines={"v7": {"Invoice Paid": 2}},
    )

    # A customer-less Checkout payment naming a visitor the project does not know yet; then the
    # tracker creates that visitor.
    session = m.checkout("payment", m.one_time(3300), metadata={"ripples_visitor_id": "v8-new"})
    m.complete(session, email="buyer8@example.com")
    made = m.new_events()
    paths["put_creates_a_visitor_named_by_metadata"] = Path(
        events(made),
        put("v8-new"),
        ledger=dict.fromkeys(charges_in(made), ("v8-new", 1, 3300)),
        links={},
    )

    # A customer's charges pending unattributed; then a visitor identifies with its email.
    customer = m.customer("pending9@example.com")
    first = m.pay(900, customer)
    m.later()
    second = m.pay(1100, customer)
    paths["put_sets_an_email_of_pending_charges"] = Path(
        [put("v9", {"name": "Nine"}), *events(m.new_events())],
        put("v9", {"email": " Pending9@Example.com"}),
        ledger={first: ("v9", 2, 900), second: ("v9", 3, 1100)},
        links={customer: "v9"},
    )

    # Two visitors share an email; the first one, who owns the customer, changes its email.
    customer = m.customer("shared10@example.com")
    first = m.pay(1700, customer)
    m.later()
    second = m.pay(700, customer)
    paths["put_changes_the_email"] = Path(
        [
            put("v10-first", {"email": "shared10@example.com"}),
            put("v10-next", {"email": "shared10@example.com"}),
            *events(m.new_events()),
        ],
        put("v10-first", {"email": "other10@example.com"}),
        ledger={first: ("v10-next", 2, 1700), second: ("v10-next", 3, 700)},
        links={customer: "v10-next"},
        timelines={"v10-first": {"Charge Succeeded": 0}, "v10-next": {"Charge Succeeded": 2}},
    )

    # A visitor who paid twice changes its acquisition source: its entries and their rollups follow.
    customer = m.customer("source11@example.com")
    first = m.pay(1300, customer)
    m.later()
    second = m.pay(800, customer)
    paths["put_changes_the_source"] = Path(
        [put("v11", {"email": "source11@example.com", "acquisition": {"source": "google"}}), *events(m.new_events())],
        put("v11", {"acquisition": {"source": "twitter"}}),
        ledger={first: ("v11", 2, 1300), second: ("v11", 3, 800)},
        links={customer: "v11"},
    )
    assert set(paths) == set(CALLS)
    return paths


@dataclass
class World:
    merchant: Merchant
    stack: Stack
    paths: dict[str, Path]
    histories: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)  # path -> (project, items)
    clean: dict[str, tuple[list[str], dict[Any, Any]]] = field(default_factory=dict)  # path -> (calls, snapshot)


@pytest.fixture(scope="module")
def world(emulator: RunningEmulator, control: EmulatorControl) -> Iterator[World]:
    with open_merchant(control) as merchant, moto_stack(emulator.base_url) as stack:
        yield World(merchant, stack, build_paths(merchant))


def replay(project: Project, history: list[Step]) -> None:
    for step in history:
        response = step.run(project)
        assert response["statusCode"] == 200, (str(step), response_json(response))


def history(world: World, name: str) -> tuple[str, list[dict[str, Any]]]:
    """The project that went through the path's history, and its items then: replayed through the
    handlers once, from empty tables (made once, kept); `Project.load` copies them into another."""
    if name not in world.histories:
        world.stack.reset()
        with connected(world.merchant, world.stack.env) as project:
            replay(project, world.paths[name].history)
            assert_invariant(world.stack.env.revenue_table)
            world.histories[name] = (project.id, project.stored())
    return world.histories[name]


def clean_run(world: World, name: str) -> tuple[list[str], dict[Any, Any]]:
    """The DynamoDB calls of the path's clean request and the end state of a clean run after the
    history (made once, kept); the tables are left empty."""
    if name not in world.clean:
        path = world.paths[name]
        replayed_by, items = history(world, name)
        world.stack.reset()
        with connected(world.merchant, world.stack.env) as project:
            project.load(items, replayed_by)
            with count_calls() as calls:
                response = path.target.run(project)
            assert response["statusCode"] == 200, response_json(response)
            assert_invariant(world.stack.env.revenue_table)
            path.check(project)
            world.clean[name] = (list(calls), project.snapshot())
        world.stack.reset()
    return world.clean[name]


@pytest.mark.parametrize("name", list(CALLS))
def test_the_clean_request(world: World, name: str) -> None:
    """The clean run ends as rule 2 says (`Path.check`), and every one of its calls has crash points."""
    calls, _ = clean_run(world, name)
    assert len(calls) <= CALLS[name], f"{name}: the clean request makes {len(calls)} calls: {calls}"


CRASH_POINTS = [
    pytest.param(name, n, when, id=f"{name}-{when}-call-{n}")
    for name, count in CALLS.items()
    for n in range(1, count + 1)
    for when in ("before", "after")
]


@pytest.mark.parametrize(("name", "n", "when"), CRASH_POINTS)
def test_a_crash_then_the_retry_ends_as_a_clean_run(world: World, name: str, n: int, when: str) -> None:
    calls, expected = clean_run(world, name)
    if n > len(calls):
        pytest.skip(f"the clean request makes only {len(calls)} DynamoDB calls")
    path = world.paths[name]
    aws = world.stack.env
    replayed_by, items = history(world, name)
    world.stack.reset()
    with connected(world.merchant, aws) as project:
        # Given a project as the path's history left it
        project.load(items, replayed_by)
        # When the request dies before or after its n-th DynamoDB call
        with crash_at(n, when) as seen:
            failed(lambda: path.target.run(project))
        assert len(seen) == n, seen
        # Then nothing half-written breaks the invariant
        assert_invariant(aws.revenue_table)
        # When it is retried, without faults
        response = path.target.run(project)
        assert response["statusCode"] == 200, response_json(response)
        # Then the project is exactly as after a clean run
        assert_invariant(aws.revenue_table)
        actual = project.snapshot()
    diffs = differences(expected, actual)
    assert not diffs, f"after a crash {when} call {n} ({calls[n - 1]}) of {path.target}:\n" + "\n".join(diffs)
