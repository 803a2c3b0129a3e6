"""How a sweep goes: the overlap before its mark, catching up in windows, one sweep per project at a
time, the account's rate budget, refusals and failures kept to their own project (domain rule 7)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.keys import PRODUCT_PERMISSIONS
from shared.backfill import pages
from shared.backfill.items import rate_pk
from shared.integrations.items import IntegrationItem
from shared.isotime import iso_seconds
from shared.reconcile import state, sweep, windows
from tests.conftest import AwsEnv, Receiver, reset_caches
from tests.revenue_checks import scan

from .harness import Merchant, open_merchant, reconcile

DAY = 86_400


def reconcile_state(shop: Merchant) -> dict[str, Any]:
    found = shop.integration().reconcile
    assert found is not None
    return found


def test_a_charge_stamped_within_the_overlap_before_the_mark_is_read_again(
    hooks: Receiver, aws: AwsEnv, stripe_clock: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    # Given a shop swept once: its mark is now
    shop = open_merchant("shop-1", account, refunds_key, stripe_clock, hooks, aws)
    reconcile()
    mark = state.epoch(reconcile_state(shop)["last_sweep_at"])
    # And two payments whose webhooks are lost, stamped by Stripe 5 and 15 minutes before the mark
    # (created while that sweep was paging, or by a Stripe clock behind ours)
    stripe_clock.call("POST", "clock", {"advance": -300})
    within = shop.pay(800)
    stripe_clock.call("POST", "clock", {"advance": -600})
    before = shop.pay(900)
    stripe_clock.call("POST", "clock", {"advance": 900})
    created = {charge: shop.client.v1.charges.retrieve(charge).created for charge in (within, before)}
    assert created[before] < mark - windows.OVERLAP_SECONDS <= created[within] < mark
    # When the next sweep runs
    reconcile()
    # Then the one within the overlap is booked; the older one, from before the previous sweep's
    # window, is not (the backfill's and that sweep's business)
    assert set(shop.ledger()) == {within}
    assert state.epoch(reconcile_state(shop)["last_sweep_at"]) >= mark


def test_a_long_gap_is_caught_up_window_by_window(
    hooks: Receiver,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    refunds_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shop connected ten days ago, never swept, whose last ten days' payments never arrived
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    now = int(time.time())
    IntegrationItem("shop-1").update([IntegrationItem.connected_at.set(iso_seconds(now - 10 * DAY))])
    control.seed(account.id, customers=6, charges_per_customer=4, start=now - 10 * DAY, end=now - 60, refund_rate=0)
    # When a sweep may spend no time beyond its first window
    monkeypatch.setattr(sweep, "PROJECT_SECONDS", 0.0)
    assert reconcile()["unfinished"] == 1
    # Then the mark is that window's end: the first sweep looks back at most FIRST_LOOKBACK_SECONDS
    first = windows.plan(None, now - 10 * DAY, now)[0]
    marked = datetime.fromisoformat(reconcile_state(shop)["last_sweep_at"]).timestamp()
    assert abs(marked - (first.lt or 0)) <= 2  # (the sweep's clock read a second or two after ours)
    # When sweeps may take their time again
    monkeypatch.setattr(sweep, "PROJECT_SECONDS", 120.0)
    assert reconcile()["swept"] == 1
    # Then every payment of the lookback is booked, none older
    since = now - windows.FIRST_LOOKBACK_SECONDS - windows.OVERLAP_SECONDS
    charges = shop.client.v1.charges.list(params={"limit": 100}).data
    booking = {c.id for c in charges if c.status == "succeeded" and c.captured and c.created >= since}
    assert booking
    assert set(shop.ledger()) == booking
    assert any(c.created < since for c in charges)


def test_one_sweep_at_a_time_holds_a_project(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    # Given a shop whose lost payment a sweep would book, held by another sweep that is still running
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    lost = shop.pay(600)
    (candidate,) = state.connected()
    now = int(time.time())
    other = state.claim(candidate, now, now + 900)
    assert other is not None
    # When the reconcile runs
    summary = reconcile()
    # Then it leaves the project alone
    assert summary["skipped"] == 1
    assert shop.ledger() == {}
    # And a sweep that read the project before the other claimed it cannot claim it
    assert state.claim(candidate, now, now + 900) is None
    # When the other sweep's invocation ended without releasing it (its lease lapsed)
    state.save(other, {"lease_until": iso_seconds(now - 1)})
    # Then the next reconcile takes the project over
    assert reconcile()["swept"] == 1
    assert set(shop.ledger()) == {lost}


def test_a_project_that_fails_is_recorded_and_the_sweep_goes_on(
    hooks: Receiver,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    refunds_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two shops with lost payments, and booking that fails for the first one
    broken = open_merchant("shop-broken", account, refunds_key, control, hooks, aws)
    fine = open_merchant("shop-fine", account, refunds_key, control, hooks, aws)
    lost = fine.pay(500)
    book = pages.book

    def failing(message: Any, *args: Any) -> int:
        if message.project_id == "shop-broken":
            raise RuntimeError("a bug")
        return book(message, *args)

    monkeypatch.setattr(pages, "book", failing)
    # When the reconcile runs
    summary = reconcile()
    # Then the failure is recorded on its integration (released, the mark not moved) ...
    assert (summary["failed"], summary["swept"]) == (1, 1)
    failed = reconcile_state(broken)
    assert (failed["error"], failed["last_sweep_at"], failed["lease_until"]) == (sweep.INTERNAL, None, None)
    # ... and the other project was swept
    assert set(fine.ledger()) == {lost}
    assert set(broken.ledger()) == set()


def test_a_lost_permission_is_named_and_the_mark_stays(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    # Given a shop whose key was replaced by one without Charges: Read (rolled by the merchant)
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    narrower = control.create_key(account.id, [p for p in PRODUCT_PERMISSIONS if p != "rak_charge_read"])
    secrets = boto3.client("secretsmanager")
    name = f"{aws.secrets_prefix}projects/shop-1"
    secrets.put_secret_value(SecretId=name, SecretString=f'{{"api_key": "{narrower}", "webhook_secret": "x"}}')
    shop.pay(700)
    # When the reconcile runs
    assert reconcile()["failed"] == 1
    # Then the problem names the permission, and nothing was read
    problem = reconcile_state(shop)
    assert problem["error"] == (
        "The key lacks a permission the reconcile needs (Charges: Read): add it to the restricted key in Stripe."
    )
    assert problem["last_sweep_at"] is None
    assert shop.ledger() == {}


def test_stripe_unavailable_is_recorded_until_a_sweep_succeeds(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    lost = shop.pay(450)
    # Given Stripe failing the charge list (twice: the SDK retries once)
    control.fault(account.id, "GET /v1/charges", status=500, count=2)
    # When the reconcile runs, Then the project's sweep failed for now, its mark not moved
    assert reconcile()["failed"] == 1
    assert (reconcile_state(shop)["error"], reconcile_state(shop)["last_sweep_at"]) == (sweep.UNAVAILABLE, None)
    # When the next one runs, Then it reads what the first could not, and the problem is gone
    assert reconcile()["swept"] == 1
    assert set(shop.ledger()) == {lost}
    assert reconcile_state(shop)["error"] is None


def test_every_stripe_request_takes_a_place_in_the_accounts_rate_budget(
    hooks: Receiver,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    refunds_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an account allowed 2 requests/s for the backfill and reconcile (4 per 2 s window)
    monkeypatch.setenv("STRIPE_RATE_BUDGET", "2")
    reset_caches()
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    shop.client.v1.webhook_endpoints.delete(shop.integration().webhook_endpoint_id)
    for amount in (100, 200):
        shop.pay(amount)
    control.reset_stats(account.id)
    # When the reconcile runs (endpoint recreated: retrieve, list, create; then three lists)
    reconcile()
    # Then each of its Stripe requests took a place, and no window held more than the budget
    made = control.stats(account.id)
    places = Counter(
        {item["sk"]: int(item["requests"]) for item in scan(aws.revenue_table) if item["pk"] == rate_pk("shop-1")}
    )
    assert sum(made.values()) == sum(places.values()) == 6
    assert max(places.values()) <= 4


def test_no_project_is_begun_without_the_time_to_finish_a_page(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    shop.pay(300)
    summary = reconcile(remaining_seconds=sweep.RESERVE_SECONDS)
    assert summary == {"projects": 1, "swept": 0, "unfinished": 0, "failed": 0, "skipped": 1}
    assert shop.integration().reconcile is None
    assert shop.ledger() == {}


def test_the_mark_is_an_iso_time_the_dashboard_can_show(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    reconcile()
    shown = reconcile_state(shop)["last_sweep_at"]
    assert datetime.strptime(shown, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() == state.epoch(shown)


def test_a_connected_project_without_its_secret_is_a_problem_on_its_integration(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    shop = open_merchant("shop-1", account, refunds_key, control, hooks, aws)
    boto3.client("secretsmanager").delete_secret(
        SecretId=f"{aws.secrets_prefix}projects/shop-1", ForceDeleteWithoutRecovery=True
    )
    assert reconcile()["failed"] == 1
    assert (reconcile_state(shop)["error"], reconcile_state(shop)["lease_until"]) == (sweep.NO_KEY, None)
