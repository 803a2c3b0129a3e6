"""Applying a world's inputs to the engine over moto, and reading back what order must not change.

`moto_stack()` is the `aws` fixture of tests/conftest.py as a context manager, and `Stack.reset()`
empties its tables: hypothesis runs many examples in one test function, each on tables of its own,
and a new moto per example would cost a new boto3 session each (~0.1 s). Inputs go to the engine's
entry points as the webhook and the visitor API call them, with in-memory fakes for the Stripe
lookups built from the world: nothing here talks to Stripe.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from local.iam.identity import acting_as
from shared.errors import DuplicateEvent
from shared.revenue import engine, keys
from shared.revenue.engine import Outcome
from shared.revenue.models import CustomerRecord
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import raw, revenue_checks
from tests.conftest import FAKE_AWS_CREDENTIALS, AwsEnv, aws_env, provision_template, reset_caches
from tests.revenue_checks import assert_invariant, scan

from .world import PROJECT, ChargeSpec, Input, World, expected, received


class Stack:
    """moto with the template's tables; `reset()` empties them (a new table each, as created)."""

    def __init__(self, env: AwsEnv, tables: dict[str, dict[str, Any]]) -> None:
        self.env = env
        self.tables = tables  # table name -> its template properties

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Stack({sorted(self.tables)})"

    def reset(self) -> None:
        from local.stack.resources import create_table

        client = raw.client()
        for name, properties in self.tables.items():
            client.delete_table(TableName=name)
            create_table(client, name, properties)


@contextmanager
def moto_stack() -> Iterator[Stack]:
    """moto with the template's tables and the functions' environment, as the `aws` fixture of
    tests/conftest.py makes them; the environment is restored and cached clients forgotten on exit."""
    from moto import mock_aws

    with mock.patch.dict(os.environ, FAKE_AWS_CREDENTIALS), mock_aws():
        os.environ.pop("AWS_ENDPOINT_URL", None)
        environment, tables = provision_template()
        os.environ.update(environment)
        reset_caches()
        try:
            yield Stack(aws_env(environment), tables)
        finally:
            reset_caches()


def connect_project(env: AwsEnv, project: str = PROJECT) -> None:
    """The integration record as connecting leaves it (test mode), written directly."""
    item = raw.to_item({"project_id": project, "status": "connected", "mode": "test"})
    raw.client().put_item(TableName=env.integrations_table, Item=item)


def _strict_retrying(what: str, attempt_once: Callable[[], Outcome]) -> Outcome:
    """engine._retrying without the retries: inputs are applied one at a time, so no decision may ever
    race; a StaleUpdate here is a decision conflicting with itself, and fails the test."""
    try:
        return attempt_once()
    except DuplicateEvent:
        return Outcome("duplicate")


@contextmanager
def strict_decisions() -> Iterator[None]:
    with mock.patch.object(engine, "_retrying", _strict_retrying):
        yield


class _CachedClients:
    """boto3 for tests.revenue_checks, with the process's cached DynamoDB client: scanning after
    every step then costs the scan, not a new client (~20 ms each)."""

    @staticmethod
    def client(service: str) -> Any:
        assert service == "dynamodb"
        return raw.client()


@contextmanager
def cached_scan_client() -> Iterator[None]:
    with mock.patch.object(revenue_checks, "boto3", _CachedClients):
        yield


# ---- applying inputs ---------------------------------------------------------------------------------


@dataclass
class Applier:
    """Feeds inputs to the engine as the webhook and the visitor API would, with Stripe faked."""

    world: World
    project: str = PROJECT

    def fetch_customer(self, customer_id: str) -> CustomerRecord:
        customer = self.world.customer(customer_id)
        assert customer is not None, f"the engine asked for a customer the world lacks: {customer_id}"
        return CustomerRecord(customer_id, email=customer.email or "", meta_visitor=customer.meta_visitor)

    @staticmethod
    def invoice_payment_intents(invoice_id: str) -> tuple[str, ...]:
        return ()  # the only invoices are trials' first ones, which charged nothing

    def apply(self, item: Input) -> str:
        if item.visitor is not None:
            with acting_as("VisitorApiFunction"):
                return self._visitor(item)
        assert item.stripe_event is not None
        with acting_as("StripeWebhookFunction"):
            if item.stripe_event["type"].startswith("charge."):
                return engine.on_charge(self.project, item.stripe_event, self.fetch_customer).result
            outcome = engine.on_session(
                self.project, item.stripe_event, self.fetch_customer, self.invoice_payment_intents
            )
        return outcome.result

    def _visitor(self, item: Input) -> str:
        """PUT visitor (the visitor's clock comes from the world), then what after_visitor_saved runs."""
        assert item.visitor is not None
        spec = item.visitor
        moment = datetime.fromtimestamp(spec.identified_at if item.identify else spec.identified_at - 3600, UTC)
        changes = VisitorChanges(email=spec.email) if item.identify and spec.email else VisitorChanges()
        saved = VisitorService(DynamoVisitorStore.default(), clock=lambda: moment).save(self.project, spec.id, changes)
        if not saved.evidence_changed:
            return "visitor unchanged"
        return engine.on_visitor_saved(
            self.project, spec.id, saved.created, saved.emails_moved, self.fetch_customer
        ).result


# ---- what order must not change ----------------------------------------------------------------------


LedgerView = tuple[str | None, int | None, int, int, str]  # visitor, tier, amount, refunded, currency


@dataclass(frozen=True)
class Snapshot:
    ledger: dict[str, LedgerView]
    totals: dict[str, dict[str, int]]  # visitor -> per-currency lifetime revenue
    unattributed: dict[str, int]
    links: dict[str, tuple[str, int, tuple[int, str]] | None]  # customer -> (visitor, tier, evidence)
    customer_ids: dict[str, set[str]] = field(default_factory=dict)  # visitor -> its stripe_customer_ids
    # Checkout Completed events of sessions with a customer -> the visitor they are placed on (they
    # move with the customer's link; where is the engine's choice, that it is the same in every order
    # is rule 3's)
    checkouts: dict[str, str | None] = field(default_factory=dict)

    def owner(self, charge_id: str) -> tuple[str | None, int | None]:
        visitor, tier, *_ = self.ledger[charge_id]
        return visitor, tier


def snapshot_of(items: list[dict[str, Any]]) -> Snapshot:
    ledger: dict[str, LedgerView] = {}
    totals: dict[str, dict[str, int]] = {}
    unattributed: dict[str, int] = {}
    links: dict[str, tuple[str, int, tuple[int, str]] | None] = {}
    customer_ids: dict[str, set[str]] = {}
    checkouts: dict[str, str | None] = {}
    for item in items:
        if item["sk"] == keys.LEDGER:
            ledger[item["charge_id"]] = (
                item.get("visitor_id"),
                item.get("tier"),
                item["amount"],
                item["refunded"],
                item["currency"],
            )
        elif item["sk"] == keys.PROFILE:
            totals[item["visitor_id"]] = revenue_checks.totals_of(item)
            customer_ids[item["visitor_id"]] = set(revenue_checks.linked_customers_of(item))
        elif item["sk"].startswith(f"{keys.TOTALS}#") and int(item["amount"]):
            unattributed[item["currency"]] = int(item["amount"])
        elif item["sk"] == keys.LINK:
            visitor = item.get("visitor_id")
            links[item["customer_id"]] = (
                (visitor, int(item["tier"]), (int(item["link_created"]), item["link_id"])) if visitor else None
            )
        elif item["sk"].startswith(keys.CONTEXT_PREFIX) and item["context"]["type"] == "Checkout Completed":
            checkouts[item["context"]["event_key"]] = item.get("placed_visitor")
    return Snapshot(ledger, totals, unattributed, links, customer_ids, checkouts)


CHARGE_EVENT_TYPES = ("Charge Succeeded", "Charge Refunded")


def assert_timelines_follow_the_ledger(items: list[dict[str, Any]]) -> None:
    """Each charge's timeline events sit with its owner only, carry its tier, and net to its revenue."""
    events: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item["sk"].startswith(keys.TIMELINE_PREFIX) and item.get("type") in CHARGE_EVENT_TYPES:
            events.setdefault(item["stripe_object_id"], []).append(item)
    for item in items:
        if item["sk"] != keys.LEDGER:
            continue
        charge_events = events.pop(item["charge_id"], [])
        owner = item.get("visitor_id")
        if owner is None:
            assert charge_events == [], f"unattributed {item['charge_id']} has timeline events"
            continue
        where = {e["visitor_id"] for e in charge_events}
        assert where == {owner}, f"{item['charge_id']} belongs to {owner}, its events are with {where}"
        assert {e.get("attribution_tier") for e in charge_events} == {item.get("tier")}
        assert sum(e["revenue"] for e in charge_events) == item["amount"] - item["refunded"]
    assert events == {}, f"timeline events of charges not in the ledger: {sorted(events)}"

    shown: dict[str, set[str]] = {}
    for item in items:
        if item["sk"].startswith(keys.TIMELINE_PREFIX) and item.get("type") == "Checkout Completed":
            shown.setdefault(item["event_id"], set()).add(item["visitor_id"])
    for item in items:
        if item["sk"].startswith(keys.CONTEXT_PREFIX) and item["context"]["type"] == "Checkout Completed":
            placed = item.get("placed_visitor")
            where = shown.get(item["context"]["event_key"], set())
            assert where == ({placed} if placed else set()), f"{item['sk']} is placed on {placed}, shown on {where}"


def expected_ledger(world: World, owners: dict[str, tuple[str | None, int | None]]) -> dict[str, LedgerView]:
    def view(c: ChargeSpec) -> LedgerView:
        return (*owners[c.id], c.booked, c.refunded, c.currency)

    return {c.id: view(c) for c in world.charges}


def expected_totals(
    world: World, owners: dict[str, tuple[str | None, int | None]]
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    totals: dict[str, dict[str, int]] = {v.id: {} for v in world.visitors}
    unattributed: dict[str, int] = {}
    for c in world.charges:
        visitor = owners[c.id][0]
        bucket = totals[visitor] if visitor else unattributed
        bucket[c.currency] = bucket.get(c.currency, 0) + c.booked - c.refunded
    return {v: {k: a for k, a in t.items() if a} for v, t in totals.items()}, {
        k: a for k, a in unattributed.items() if a
    }


class Replay:
    """A world's inputs applied one by one to emptied tables. After every step the invariant (rule 4)
    holds, each charge's timeline events are with its owner, and the state is rule 2 on the evidence
    received so far (rule 3)."""

    def __init__(self, world: World, stack: Stack, *, check_each_step: bool = True) -> None:
        stack.reset()
        connect_project(stack.env)
        self.world = world
        self.table = stack.env.revenue_table
        self.applier = Applier(world)
        self.check_each_step = check_each_step
        self.applied: list[Input] = []
        self.outcomes: list[tuple[str, str]] = []  # (input, result) in the order applied

    def apply(self, item: Input) -> str:
        with strict_decisions():
            result = self.applier.apply(item)
        self.applied.append(item)
        self.outcomes.append((item.label, result))
        if self.check_each_step:
            self.check()
        return result

    def check(self) -> None:
        """Rules 4, the timelines and 2 on what was applied so far."""
        items = self.items()
        try:
            with mock.patch.object(revenue_checks, "scan", return_value=items):  # one scan a step
                assert_invariant(self.table)
            assert_timelines_follow_the_ledger(items)
            assert_rule_2(received(self.world, self.applied), snapshot_of(items))
        except AssertionError as exc:
            raise AssertionError(f"after {self.outcomes}: {exc}") from exc

    def apply_all(self, order: Iterable[Input]) -> list[str]:
        return [self.apply(item) for item in order]

    def items(self) -> list[dict[str, Any]]:
        with cached_scan_client():
            return scan(self.table)

    def snapshot(self) -> Snapshot:
        """What order must not change; each charge's timeline events are checked to follow it."""
        items = self.items()
        assert_timelines_follow_the_ledger(items)
        return snapshot_of(items)


def assert_rule_2(world: World, state: Snapshot) -> None:
    """The state is rule 2 on all of the world: every charge booked once, at amount_captured, with its
    final cumulative refund, owned as the rule says; totals and customer links to match, and each
    visitor's stripe_customer_ids are the customers linked to it."""
    want = expected(world)
    assert state.ledger == expected_ledger(world, want.owners)
    totals, unattributed = expected_totals(world, want.owners)
    assert state.totals == totals
    assert state.unattributed == unattributed
    assert state.links == want.links
    linked = {v.id: {c for c, link in want.links.items() if link and link[0] == v.id} for v in world.visitors}
    assert state.customer_ids == linked


@dataclass
class Run:
    snapshot: Snapshot
    outcomes: list[tuple[str, str]]


def run(world: World, order: Iterable[Input], stack: Stack) -> Run:
    replay = Replay(world, stack)
    replay.apply_all(order)
    return Run(replay.snapshot(), replay.outcomes)
