"""The report's cache of months (shared.reports.cache, shared.reports.days), through the real
handlers: a month's cache answers while its days' versions are the ones they were read at; a
booking, a refund or a re-sourced visitor bumps its day's version in its own transaction, and the
next report reads that day's items again, and only those. Reports racing webhooks from threads
never answer from a stale cache, and every cached day left current is its day's items
(tests.revenue_checks.assert_invariant)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.iam.identity import acting_as
from shared.errors import ServiceUnavailable
from shared.reports import store
from shared.reports.revenue import Window
from shared.reports.service import revenue_report_from_ledger
from shared.revenue import keys
from tests.revenue_checks import dynamodb_hook, scan
from tests.scenarios.harness import Shop, event_type
from tests.scenarios.harness import shop_fixture as shop_fixture  # the `shop` fixture
from tests.scenarios.harness import shops_fixture as shops_fixture  # the `shop` fixture uses it

MONTH = 31 * 86_400


class DayReads:
    """The days (first, last) of each Query of day items (sort keys `D#<day>#<shard>`) made."""

    def __init__(self) -> None:
        self.ranges: list[tuple[str, str]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        bounds = sorted(str(v.get("S", "")) for v in params.get("ExpressionAttributeValues", {}).values())
        days = [b.split("#")[1] for b in bounds if b.startswith(keys.ROLLUP_PREFIX)]
        if days:
            self.ranges.append((days[0], days[-1]))


def report_counting_day_reads(shop: Shop, **query: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    reads = DayReads()
    with dynamodb_hook("before-parameter-build.dynamodb.Query", reads):
        report = shop.revenue(**query)
    return report, reads.ranges


def from_ledger(shop: Shop) -> dict[str, Any]:
    with acting_as("ReportsApiFunction"):
        return revenue_report_from_ledger(shop.project, Window())


def test_a_months_cache_answers_until_a_booking_a_refund_or_a_new_source_changes_the_month(shop: Shop) -> None:
    # Given payments in two months, and a report that cached both
    shop.put_visitor("v-ann", acquisition={"source": "google"})
    _, first = shop.pay(1000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    shop.later(MONTH)
    shop.pay(2000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    first_day, second_day = sorted({row["day"] for row in scan(shop.aws.revenue_table) if row.get("kind") == "rollup"})
    built, reads = report_counting_day_reads(shop)
    assert reads == [(f"{first_day[:7]}-01", f"{second_day[:7]}-31")]  # both months in one Query, then cached
    # When the report is asked again
    again, reads = report_counting_day_reads(shop)
    # Then both come from the caches alone
    assert (again, reads) == (built, [])
    assert again["totals"] == {"usd": 3000}
    # When a refund of the first month's payment is booked
    shop.client.v1.refunds.create(params={"charge": first, "amount": 300})
    shop.deliver_all(shop.new_events())
    # Then the next report reads that day's items again (only that day), and is the ledger's
    refunded, reads = report_counting_day_reads(shop)
    assert reads == [(first_day, first_day)]
    assert refunded == from_ledger(shop)
    assert refunded["totals"] == {"usd": 2700}
    # When the visitor's source changes (its entries move to the new source)
    shop.put_visitor("v-ann", acquisition={"source": "newsletter"})
    moved, reads = report_counting_day_reads(shop)
    # Then both days are read again (one Query in each month) and the money is under the new source
    assert reads == [(first_day, first_day), (second_day, second_day)]
    assert moved == from_ledger(shop)
    assert [row["source"] for row in moved["by_source"]] == ["newsletter"]
    assert (moved["by_source"][0]["payments"], moved["by_source"][0]["visitors"]) == (2, 1)
    shop.invariant()


def test_reports_racing_webhooks_from_threads_end_as_the_ledgers_report(shop: Shop) -> None:
    # Given payments of three visitors whose events have not arrived, in two months
    for n, visitor in enumerate(("v-ann", "v-bob", "v-cyd")):
        shop.put_visitor(visitor, acquisition={"source": ("google", "bing", "google")[n]})
    bodies: list[bytes] = []
    for month in range(2):
        for n, visitor in enumerate(("v-ann", "v-bob", "v-cyd", "v-ann")):
            shop.pay(1000 + 100 * n + month, metadata={"ripples_visitor_id": visitor})
        bodies += [b for b in shop.new_events() if event_type(b) == "charge.succeeded"]
        shop.later(MONTH)
    done = threading.Event()
    failures: list[BaseException] = []

    def report() -> None:
        try:
            while not done.is_set():
                shop.revenue()  # builds caches of months that bookings are changing
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    # When two senders deliver them while two dashboards ask for the report
    readers = [threading.Thread(target=report) for _ in range(2)]
    for reader in readers:
        reader.start()
    senders, errors = shop.start_senders(bodies)
    for sender in senders:
        sender.join()
    done.set()
    for reader in readers:
        reader.join()
    # Then the report is the ledger's, and every cache at its month's version is that month's days
    assert errors + failures == []
    final = shop.revenue()
    assert final == from_ledger(shop)
    assert final["totals"] == {"usd": 2 * (1000 + 1100 + 1200 + 1300) + 4}
    assert {row["source"]: row["visitors"] for row in final["by_source"]} == {"bing": 1, "google": 2}
    shop.invariant()


def test_a_report_cut_short_leaves_the_months_it_read_cached(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given payments in two months, never reported
    shop.put_visitor("v-ann", acquisition={"source": "google"})
    shop.pay(1000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    shop.later(MONTH)
    shop.pay(2000, metadata={"ripples_visitor_id": "v-ann"})
    shop.deliver_all(shop.new_events())
    _, second_day = sorted({row["day"] for row in scan(shop.aws.revenue_table) if row.get("kind") == "rollup"})
    read_items = store.rollup_items

    def fails_in_the_second_month(project_id: str, first: str, last: str) -> Iterator[dict[str, Any]]:
        for item in read_items(project_id, first, last):
            yield item
            if item["day"] == second_day:  # the page after the one where the second month began
                raise ServiceUnavailable("DynamoDB timed out")

    # When the first report's read of day items fails in the second month (a timeout)
    monkeypatch.setattr(store, "rollup_items", fails_in_the_second_month)
    status, _ = shop.call_reports()
    assert status == 503
    monkeypatch.setattr(store, "rollup_items", read_items)
    # Then the next report reads only the second month: the first was cached as it passed
    report, reads = report_counting_day_reads(shop)
    assert reads == [(f"{second_day[:7]}-01", f"{second_day[:7]}-31")]
    assert report == from_ledger(shop)
    assert report["totals"] == {"usd": 3000}
    shop.invariant()
