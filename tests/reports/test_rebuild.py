"""Rebuilding a project's rollups from its ledger (issue 11): a project booked through the real
engine, its rollups then corrupted on purpose (a wrong attribute, a missing item, a stale item on a
day without charges). A dry run reports exactly those differences and writes nothing; a repair
makes the rollups equal to the ledger; a second run finds nothing. Bookings landing while the
rebuild runs (between its read and its repair, or from threads) and an index that lags behind the
table are allowed for. The queue-driven job runs through the backfill function's handler."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from shared.backfill import queue, rebuild_job
from shared.backfill.slices import RebuildMessage
from shared.revenue import keys, rebuilding, rollups
from shared.revenue.rebuild import Difference
from tests.backfill.harness import drain
from tests.revenue_checks import dynamodb_hook, rollups_from_ledger, rollups_of, scan
from tests.scenarios.harness import Shop, event_object, event_type
from tests.scenarios.harness import shop_fixture as shop_fixture  # the `shop` fixture
from tests.scenarios.harness import shops_fixture as shops_fixture  # the `shop` fixture uses it

DAY = 86_400
STALE_DAY = "2020-01-01"  # long before any charge of the tests


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's index is never behind its table: the wait for it is kept short (its lag is simulated
    where a test needs it)."""
    monkeypatch.setattr(rebuilding, "SETTLE_SECONDS", 0.01)


def check_all(project: str, *, repair: bool) -> list[Difference]:
    """Every day of the project checked in a row (what one job does); the differences found."""
    found: list[Difference] = []
    day = rebuilding.next_day(project, None)
    while day is not None:
        checked = rebuilding.check_day(project, day, repair=repair)
        assert checked.unsettled == [], day
        found += checked.differences
        day = rebuilding.next_day(project, day)
    return found


def rollup_items(table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The rollup items as stored, every attribute (`writes` included)."""
    return {(i["pk"], i["sk"]): i for i in scan(table) if i.get("kind") == "rollup"}


def assert_rollups_follow_the_ledger(table: str) -> None:
    items = scan(table)
    assert rollups_of(items) == rollups_from_ledger(items)


def book_three_days(shop: Shop) -> None:
    """Visitors from two sources, a tier-1 and a tier-2 payment, an unattributed one in another
    currency, a refund: over three days of Stripe's clock."""
    shop.put_visitor("v-ann", email="ann@example.com", acquisition={"source": "google"})
    shop.put_visitor("v-bob", acquisition={"source": "newsletter"})
    ann = shop.client.v1.customers.create(params={"email": "ann@example.com"})
    shop.pay(1000, customer=ann.id)
    shop.pay(2500, currency="eur")
    shop.later(DAY)
    _, refunded = shop.pay(4000, metadata={"ripples_visitor_id": "v-bob"})
    shop.client.v1.refunds.create(params={"charge": refunded, "amount": 1500})
    shop.pay(700, customer=ann.id)
    shop.later(DAY)
    shop.pay(300, metadata={"ripples_visitor_id": "v-bob"})
    shop.pay(900)
    shop.deliver_all(shop.new_events())


def corrupt(table: str, project: str) -> set[Difference]:
    """A wrong attribute, a missing item and a stale item: the differences a check must report."""
    stored = rollups_of(scan(table))
    ours = sorted(key for key in stored if key[0] == keys.rollup_pk(project))
    assert len(ours) >= 3
    client = boto3.client("dynamodb")
    expected: set[Difference] = set()
    # a wrong attribute: 500 too much revenue
    (pk, sk), counts = ours[0], stored[ours[0]]
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    wrong = sorted(name for name in counts if name.startswith(("r|", "u|")))[0]
    client.update_item(
        TableName=table,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="ADD #a :v",
        ExpressionAttributeNames={"#a": wrong},
        ExpressionAttributeValues={":v": {"N": "500"}},
    )
    expected.add(Difference(day, int(shard), wrong, counts[wrong] + 500, counts[wrong]))
    # a missing item
    (pk, sk), counts = ours[-1], stored[ours[-1]]
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    client.delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    expected |= {Difference(day, int(shard), name, 0, value) for name, value in counts.items()}
    # a stale item on a day without charges
    stale = {"r|google|usd": 700, "n|google": 1, "v|google|v-ann": 1}
    client.put_item(
        TableName=table,
        Item={
            "pk": {"S": keys.rollup_pk(project)},
            "sk": {"S": keys.rollup_sk(STALE_DAY, 1)},
            "kind": {"S": "rollup"},
            "writes": {"N": "3"},
            **{name: {"N": str(value)} for name, value in stale.items()},
        },
    )
    expected |= {Difference(STALE_DAY, 1, name, value, 0) for name, value in stale.items()}
    # (written around the writer, it has no count in its month's version either)
    expected.add(Difference(STALE_DAY, 1, rollups.day_version(STALE_DAY), 0, 1))
    return expected


def test_a_dry_run_reports_exactly_the_corruption_and_a_repair_makes_the_rollups_the_ledgers(shop: Shop) -> None:
    # Given a project booked over three days, whose rollups follow the ledger
    table = shop.aws.revenue_table
    book_three_days(shop)
    assert_rollups_follow_the_ledger(table)
    assert check_all(shop.project, repair=False) == []
    # And rollups corrupted: a wrong attribute, a missing item, a stale item on a day without charges
    wanted = corrupt(table, shop.project)
    before = rollup_items(table)
    # When a dry run checks every day
    found = check_all(shop.project, repair=False)
    # Then it reports exactly those differences, and writes nothing
    assert set(found) == wanted
    assert len(found) == len(wanted)
    assert rollup_items(table) == before
    # When a repair runs (the stale item's repair bumps its day's version with it: no version left to add)
    assert set(check_all(shop.project, repair=True)) == {d for d in wanted if not d.attribute.startswith("w|")}
    # Then the rollups are the ledger's again, and neither run finds anything more
    assert_rollups_follow_the_ledger(table)
    assert check_all(shop.project, repair=False) == []
    assert check_all(shop.project, repair=True) == []
    # And the stale item is left at zero (ADDs only), as a removal leaves one
    (stale,) = rollups.read(shop.project, STALE_DAY, STALE_DAY)
    assert not any(value for name, value in stale.items() if rollups.is_rollup_attribute(name))
    shop.invariant()


def test_a_day_missing_from_its_months_version_is_reported_then_counted_and_the_report_sees_it(shop: Shop) -> None:
    # Given payments of today reported once (the month cached), then the day's count removed from
    # its month's version item (as a writer that forgot the bump would leave it)
    table = shop.aws.revenue_table
    shop.put_visitor("v-ann", acquisition={"source": "google"})
    shop.pay(1000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    assert shop.revenue()["totals"] == {"usd": 1000}
    ((pk, sk),) = rollups_of(scan(table))
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": pk}, "sk": {"S": keys.month_sk(day[:7], int(shard))}},
        UpdateExpression="REMOVE #day",
        ExpressionAttributeNames={"#day": rollups.day_version(day)},
    )
    missing = Difference(day, int(shard), rollups.day_version(day), 0, 1)
    # When a dry run checks, then a repair
    assert check_all(shop.project, repair=False) == [missing]
    assert check_all(shop.project, repair=True) == [missing]
    # Then nothing is left to find, and the report reads the day again and is the ledger's
    assert check_all(shop.project, repair=False) == []
    assert shop.revenue()["totals"] == {"usd": 1000}
    shop.invariant()


def test_a_booking_between_the_read_and_the_repair_makes_the_rebuild_read_the_day_again(shop: Shop) -> None:
    # Given a project booked today, one of whose rollup items holds 500 too much
    table = shop.aws.revenue_table
    shop.put_visitor("v-ann", acquisition={"source": "google"})
    shop.pay(1000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    ((pk, sk),) = rollups_of(scan(table))
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="ADD #a :v",
        ExpressionAttributeNames={"#a": "r|google|usd"},
        ExpressionAttributeValues={":v": {"N": "500"}},
    )
    # And a payment made the same day whose charge falls in the same item, not booked yet
    body = held_charge_in(shop, day, int(shard))
    repairs: list[str] = []

    def book_first(params: dict[str, Any], **_: Any) -> None:
        """Just before the rebuild's repair of the item (with its month's version): the webhook
        books the payment."""
        operations = [next(iter(entry.values())) for entry in params["TransactItems"]]
        written = [(op.get("Key") or op["Item"])["sk"]["S"] for op in operations]
        if len(written) == 2 and written[1].startswith(keys.MONTH_PREFIX):  # a repair (not the booking)
            repairs.append(written[0])
            if len(repairs) == 1:
                assert shop.deliver(body) == "booked"

    # When the repair runs, the booking landing between its read and its write
    with dynamodb_hook("before-parameter-build.dynamodb.TransactWriteItems", book_first):
        found = check_all(shop.project, repair=True)
    # Then the first repair failed on the item's writes, the day was read again and repaired once
    assert repairs == [sk, sk]
    assert found == [Difference(day, int(shard), "r|google|usd", 2000 + 500, 2000)]
    assert_rollups_follow_the_ledger(table)
    assert check_all(shop.project, repair=False) == []


def held_charge_in(shop: Shop, day: str, shard: int) -> bytes:
    """The `charge.succeeded` of a new payment of the visitor whose charge is in the rollup item
    (day, shard), not delivered (the other payments made to find one are left undelivered too)."""
    for _ in range(40):
        shop.pay(1000, metadata={"ripples_visitor_id": "v-ann"})
        for body in shop.new_events():
            charge = event_object(body)
            if event_type(body) == "charge.succeeded" and rollups.shard_of(charge["id"]) == shard:
                assert rollups.day_of(int(charge["created"])) == day
                return body
    raise AssertionError("no charge fell in the shard")


def test_an_entry_the_index_does_not_show_yet_is_not_taken_for_a_difference(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given rollups that follow the ledger, and an index that shows the newest entry only 0.15 s
    # after the check starts (it was just booked: its rollup counts it), less than the settle time
    table = shop.aws.revenue_table
    book_three_days(shop)
    before = rollup_items(table)
    monkeypatch.setattr(rebuilding, "SETTLE_SECONDS", 0.3)
    hidden: list[str] = []
    started = time.monotonic()

    def lagging_index(parsed: dict[str, Any], **kwargs: Any) -> None:
        items = parsed.get("Items")
        if time.monotonic() < started + 0.15 and items and "charge_id" in items[-1]:
            hidden.append(items.pop()["charge_id"]["S"])
            parsed["Count"] = len(items)

    # When a repair runs
    with dynamodb_hook("after-call.dynamodb.Query", lagging_index):
        found = check_all(shop.project, repair=True)
    # Then the entry missing from its first read of the day was not taken for a difference: the
    # day was read again after the settle time, nothing found, nothing written
    assert hidden
    assert found == []
    assert rollup_items(table) == before


def test_bookings_from_threads_while_a_repair_runs_end_with_rollups_equal_to_the_ledger(shop: Shop) -> None:
    # Given a project booked over three days, its rollups corrupted, and payments made today whose
    # events have not arrived
    table = shop.aws.revenue_table
    book_three_days(shop)
    wanted = corrupt(table, shop.project)
    for amount in (1100, 1200, 1300, 1400, 1500, 1600):
        shop.pay(amount, metadata={"ripples_visitor_id": "v-bob"})
    bodies = [b for b in shop.new_events() if event_type(b) == "charge.succeeded"]
    # When two senders deliver them while the repair runs
    senders, errors = shop.start_senders(bodies)
    found = check_all(shop.project, repair=True)
    for sender in senders:
        sender.join()
    # Then the corruption was repaired and every booking counted: rollups equal to the ledger
    assert errors == []
    # (a booking into the missing item before its repair changes what was stored, not what differed)
    # (and the stale item's repair bumped its day's version: no version difference left)
    repaired = {(d.day, d.shard, d.attribute) for d in wanted if not d.attribute.startswith("w|")}
    assert {(d.day, d.shard, d.attribute) for d in found} == repaired
    assert_rollups_follow_the_ledger(table)
    assert check_all(shop.project, repair=False) == []


def test_the_queue_driven_job_reports_then_repairs_through_the_backfill_function(shop: Shop) -> None:
    # Given a project whose rollups were corrupted
    table = shop.aws.revenue_table
    book_three_days(shop)
    wanted = corrupt(table, shop.project)
    before = rollup_items(table)
    # When a dry-run job is queued and the backfill function processes the queue
    job = rebuild_job.start(shop.project, repair=False)
    assert drain() >= 1
    # Then its report lists exactly the differences, and nothing was written
    report = rebuild_job.report(shop.project, job)
    assert report is not None
    assert report["status"] == "completed"
    assert {Difference(**d) for d in report["differences"]} == wanted
    assert report["differences_found"] == len(wanted)
    assert report["items_differing"] == 4  # the three items, and the stale item's month's version
    assert report["items_repaired"] == 0
    assert report["days_checked"] == 4  # the stale day and the three days of charges
    assert report["unsettled"] == []
    assert rollup_items(table) == before
    # When a repair job runs
    job = rebuild_job.start(shop.project, repair=True)
    assert drain() >= 1
    # Then it repaired those items, and the rollups follow the ledger
    report = rebuild_job.report(shop.project, job)
    assert report is not None
    # (the stale item's repair bumped its day's version with it: one difference fewer)
    assert (report["status"], report["items_repaired"], report["differences_found"]) == (
        "completed",
        3,
        len(wanted) - 1,
    )
    assert_rollups_follow_the_ledger(table)
    # And the job's message delivered again finds the job finished and records nothing more
    queue.send([RebuildMessage(project_id=shop.project, run=job, repair=True)])
    drain()
    assert rebuild_job.report(shop.project, job) == report
    # And a message sent without a report item (an operator's, with the AWS CLI) creates it and runs
    queue.send([RebuildMessage(project_id=shop.project, run=42, repair=False)])
    drain()
    report = rebuild_job.report(shop.project, 42)
    assert report is not None
    assert (report["status"], report["differences"], report["days_checked"]) == ("completed", [], 4)
    json.dumps(report)  # what `make rebuild-rollups` prints
