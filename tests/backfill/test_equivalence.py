"""The backfill and the webhooks give the same numbers for the same history (domain rules 1-7).

A generated world (tests/reliability/world.py) reaches two projects of one account: one receives the
history as Stripe sends it (every event, serially, the visitor PUTs at their places among them), the
other connects afterwards and imports it through the backfill (its visitors first). Both must end
with the same ledger (owners and tiers), totals, links, charge timelines, Checkout Completed events
and plans of the subscriptions still running. What only events carry (Invoice Paid, Subscription
Updated/Canceled timeline events, the state of a subscription already canceled: the import lists
running subscriptions only) is compared as such: never there after an import.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from tests.backfill.test_resync import api, connect, deliver, plain_states, put_visitors, state_of
from tests.conftest import AwsEnv, reset_caches
from tests.reliability.state import Snapshot, compare
from tests.reliability.world import TEST, History, StripeEvent, VisitorPut, generate

from .harness import drain

WEBHOOKS = "by-webhooks"
EVENT_ONLY = ("Invoice Paid", "Subscription Updated", "Subscription Canceled")


@pytest.fixture
def world_of(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, monkeypatch: pytest.MonkeyPatch
) -> Callable[[int], History]:
    """A generated history; the project "by-webhooks" connected while its account was still empty."""
    monkeypatch.setenv("STRIPE_RATE_BUDGET", "0")
    monkeypatch.setenv("BACKFILL_SLICES_PER_PHASE", "2")
    reset_caches()

    def before(account: EmulatorAccount) -> None:
        control.delivery(account.id, retries=0)  # the test delivers the events itself
        status, body = api("POST", WEBHOOKS, body={"api_key": account.restricted_key})
        assert status == 201, body
        drain()  # its import finds nothing yet

    return lambda seed: generate(control, seed=seed, size=TEST, before=before)


def through_webhooks(history: History, project: str) -> None:
    for step in history.steps:
        if isinstance(step, StripeEvent):
            deliver([step], project)
        elif isinstance(step, VisitorPut):
            put_visitors(History(history.seed, history.size, history.account, [step]), project)


def comparable(state: Snapshot) -> Snapshot:
    def kept(key: str) -> bool:
        return not any(kind in key for kind in EVENT_ONLY)

    canceled = {
        key.split()[1]
        for key, value in state["plans"].items()
        if key.startswith("subscription ") and (value.get("state") or value).get("status") == "canceled"
    }
    plans = {
        k: v for k, v in state["plans"].items() if not (k.startswith("subscription ") and k.split()[1] in canceled)
    }
    for key, plan in plans.items():  # a plan of canceled subscriptions only: known from their events
        if key.startswith("plan of ") and plan and plan.get("status") == "canceled":
            plans[key] = None
    return {
        "ledger": state["ledger"],
        "totals": state["totals"],
        "links": state["links"],
        "timelines": {k: v for k, v in state["timelines"].items() if kept(k)},
        "context": {k: v for k, v in state["context"].items() if kept(k)},
        "plans": plain_states(plans),
    }


@pytest.mark.parametrize("seed", [3, 8, 11])
def test_the_import_gives_what_the_webhooks_give(world_of: Callable[[int], History], seed: int, aws: AwsEnv) -> None:
    history = world_of(seed)
    through_webhooks(history, WEBHOOKS)
    by_webhooks, _ = state_of(aws, WEBHOOKS)
    connect(history, "by-import")
    drain()
    by_import, _ = state_of(aws, "by-import")
    differences = compare(comparable(by_webhooks), comparable(by_import))
    assert differences == [], "\n".join(d.render(history.notes) for d in differences)
