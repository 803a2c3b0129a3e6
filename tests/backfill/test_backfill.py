"""The backfill through its queue, in-process (moto, the emulator): history imported once, progress
shown, completion once, old runs dropped, refusals and rate limits handled (domain rule 7)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from unittest import mock

import pytest

from local.iam.identity import acting_as
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared.backfill import progress, queue, runner, slices
from shared.errors import ServiceUnavailable
from shared.integrations import store
from shared.integrations.connect import connect
from shared.integrations.items import IntegrationItem
from shared.isotime import iso_seconds
from shared.revenue import keys
from tests.conftest import AwsEnv, reset_caches
from tests.revenue_checks import assert_invariant, scan, unattributed_of

from .harness import deliver_some, drain

PROJECT = "shop-1"
DAY = 86_400


@pytest.fixture
def history(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, monkeypatch: pytest.MonkeyPatch
) -> EmulatorAccount:
    """An account with a year of seeded charges, the backfill unpaced and cut into few slices."""
    monkeypatch.setenv("STRIPE_RATE_BUDGET", "0")
    monkeypatch.setenv("BACKFILL_SLICES_PER_PHASE", "3")
    monkeypatch.setattr(runner, "RETRY_DELAYS", (0,))
    reset_caches()
    control.delivery(account.id, retries=0)  # webhooks are not what is tested here
    now = int(time.time())
    control.seed(
        account.id,
        customers=40,
        charges_per_customer=3,
        start=now - 365 * DAY,
        end=now - DAY,
        currencies=["usd", "eur"],
    )
    return account


def charges_of(control: EmulatorControl, account: EmulatorAccount) -> list[dict[str, Any]]:
    client = control.client(account.secret_key)
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.v1.charges.list(params=params)  # type: ignore[arg-type]
        found += [c.to_dict() for c in page.data]
        if not page.has_more:
            return found
        params["starting_after"] = page.data[-1].id


def net_by_currency(charges: list[dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for c in charges:
        if c["captured"] and c["status"] == "succeeded":
            released = c["amount"] - c["amount_captured"]
            totals[c["currency"]] += c["amount_captured"] - max(0, c["amount_refunded"] - released)
    return dict(totals)


def backfill_of(project: str = PROJECT) -> dict[str, Any]:
    integration = store.get(project)
    assert integration is not None
    assert integration.backfill is not None
    return integration.backfill


def ledger(aws: AwsEnv) -> dict[str, dict[str, Any]]:
    return {i["charge_id"]: i for i in scan(aws.revenue_table) if i["sk"] == keys.LEDGER}


def test_connect_queues_a_run_that_imports_the_history_once(
    history: EmulatorAccount, control: EmulatorControl, aws: AwsEnv
) -> None:
    # Given a connected account with history
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    queued = backfill_of()
    assert (queued["run"], queued["status"], queued["charges_imported"]) == (1, "queued", 0)
    assert queued["progress"] == {"slices": 9, "slices_done": 0, "pages": 0}
    # When the queue is drained
    drain()
    # Then every charge was read once, the ones that book revenue booked once (unattributed: no visitors)
    charges = charges_of(control, history)
    done = backfill_of()
    assert done["status"] == "completed"
    assert done["finished_at"] is not None
    assert done["charges_imported"] == len(charges)
    assert done["progress"]["slices_done"] == 9
    assert done["oldest_imported_at"] == iso_seconds(min(c["created"] for c in charges))
    booking = [c for c in charges if c["captured"] and c["status"] == "succeeded"]
    assert set(ledger(aws)) == {c["id"] for c in booking}
    assert unattributed_of(scan(aws.revenue_table)) == net_by_currency(charges)
    assert_invariant(aws.revenue_table)
    # When every message of the run is delivered again (redeliveries, duplicates)
    before = scan(aws.revenue_table)
    queue.send(slices.plan(PROJECT, 1, int(time.time()), 3))
    drain()
    # Then nothing is booked or counted twice
    assert revenue(scan(aws.revenue_table)) == revenue(before)
    assert backfill_of()["charges_imported"] == len(charges)
    assert backfill_of()["status"] == "completed"


def revenue(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's revenue items: without the backfill's own (slices, rate windows)."""
    return [i for i in items if not i["pk"].endswith(("#RATE", "#BACKFILL"))]


def test_a_message_of_an_earlier_run_is_dropped(history: EmulatorAccount, aws: AwsEnv) -> None:
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    # Given the integration moved on to run 2 (a re-sync), with run 1's messages still queued
    IntegrationItem(PROJECT).update([IntegrationItem.backfill["run"].set(2)])
    # When they are delivered
    drain()
    # Then they read and book nothing
    assert ledger(aws) == {}
    assert backfill_of()["progress"]["pages"] == 0


def test_a_revoked_key_fails_the_run_with_a_reason(
    history: EmulatorAccount, control: EmulatorControl, aws: AwsEnv
) -> None:
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    control.revoke_key(history.restricted_key)
    drain()
    failed = backfill_of()
    assert failed["status"] == "failed"
    assert "key" in failed["error"]
    assert ledger(aws) == {}


def test_a_rate_limited_page_is_read_again_later(
    history: EmulatorAccount, control: EmulatorControl, aws: AwsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    control.fault(history.id, "GET /v1/charges", status=429, count=3)
    drain()
    assert caplog.text.count("backfill slice backs off") == 3
    assert backfill_of()["status"] == "completed"
    charges = charges_of(control, history)
    assert backfill_of()["charges_imported"] == len(charges)
    assert unattributed_of(scan(aws.revenue_table)) == net_by_currency(charges)


def test_a_page_whose_progress_fails_once_is_read_again_and_counted_once(
    history: EmulatorAccount, control: EmulatorControl, aws: AwsEnv
) -> None:
    # Given a page booked whose progress write then fails (DynamoDB down for that one request)
    real, failures = progress.page_done, []

    def failing_once(*args: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(args)
            raise ServiceUnavailable("DynamoDB is unavailable")
        return real(*args, **kwargs)

    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    sent, real_send = [], queue.send

    def recording(messages: Any, **kwargs: Any) -> None:
        sent.extend(messages)
        real_send(messages, **kwargs)

    with mock.patch.object(progress, "page_done", failing_once), mock.patch.object(queue, "send", recording):
        drain()
    # Then the slice was sent again at once (not left to the queue's visibility timeout), its page
    # read again, and nothing was counted or booked twice
    assert failures
    assert [m.backoffs for m in sent if m.kind == "slice" and m.backoffs] == [1]
    charges = charges_of(control, history)
    assert backfill_of()["status"] == "completed"
    assert backfill_of()["charges_imported"] == len(charges)
    assert unattributed_of(scan(aws.revenue_table)) == net_by_currency(charges)
    assert_invariant(aws.revenue_table)


def test_a_key_revoked_part_way_fails_the_run_with_a_reason(
    history: EmulatorAccount, control: EmulatorControl, aws: AwsEnv
) -> None:
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, history.restricted_key)
    deliver_some(3)  # the start and two slices' pages
    control.revoke_key(history.restricted_key)
    drain()
    failed = backfill_of()
    assert failed["status"] == "failed"
    assert "Stripe rejected the key" in failed["error"]
    assert_invariant(aws.revenue_table)  # what was booked before stays whole


@pytest.fixture
def dense(history: EmulatorAccount, control: EmulatorControl) -> EmulatorAccount:
    """Beside the year of history, 400 charges in the last month: the newest slice is dense."""
    now = int(time.time())
    control.seed(history.id, customers=100, charges_per_customer=4, start=now - 30 * DAY, end=now - 60)
    return history


def test_a_dense_slice_splits_its_range_and_every_charge_is_still_read_once(
    dense: EmulatorAccount, control: EmulatorControl, aws: AwsEnv
) -> None:
    with acting_as("IntegrationApiFunction"):
        connect(PROJECT, dense.restricted_key)
    # When the children are queued only by a later invocation (the splitting one stopped first)
    real, refused = queue.send, []

    def losing_children(messages: Any, **kwargs: Any) -> None:
        if not refused and any(m.kind == "slice" and m.index >= slices.FANOUT for m in messages):
            refused.append(messages)
            raise ServiceUnavailable("SQS is unavailable")
        real(messages, **kwargs)

    with mock.patch.object(queue, "send", losing_children):
        drain()
    # Then the newest slices split (children counted in the run), and the run read every charge once
    assert refused
    done = backfill_of()
    assert done["status"] == "completed"
    assert done["progress"]["slices"] > 9
    assert done["progress"]["slices_done"] == done["progress"]["slices"]
    charges = charges_of(control, dense)
    assert done["charges_imported"] == len(charges)
    assert unattributed_of(scan(aws.revenue_table)) == net_by_currency(charges)
    assert_invariant(aws.revenue_table)
