"""`make bench-reports`: the revenue report at merchant scale, from rollups and from the ledger alone.

A project is seeded directly through the store, without Stripe or the engine's decisions: visitor
profiles (with acquisition sources) and its charges as ledger records, either committed as
BookCharge intents through shared.revenue.writer, thousands to a decision (`--seed writer`: the
entries, totals, timelines and daily rollups the real writer writes, in its 100-item transactions;
about 30 charges a transaction, too slow under moto for 200,000), or (`--seed batch`, the default)
written with BatchWriteItem: entries as the writer writes them, rollups summed with the writer's
own functions (rollups.place, rollups.contribution), totals to match, no timeline events. moto
runs as the local stack runs it (ThreadedMotoServer, our transaction patch), reached over HTTP.

The report is then asked for all time, one year, one month and one day (the last three with bounds
inside days: two partial days each), `--runs` times each: p50/p99 latency, DynamoDB
requests, items and bytes read per report (botocore hooks on the functions' clients), and the same
report from every ledger entry of the window (the pre-issue-11 cost) beside it. The two reports
must be equal. The projection for 1,000,000 charges scales what grows with charges (bytes and
pages of rollups for a window; entries of the ledger) and keeps what does not (day shards, edges).

moto runs with the local stack's patches (local.moto_patches): a base-table Query reads only its
partition's key range, and its response is json.dumps of the DynamoDB JSON. An index Query here
walks only the index partition, sorted once after seeding (`index_partition_queries`); moto would
walk and sort the whole table (seconds per page at 400,000 items). Each latency is also
given without the time moto's handler spent serving (MotoClock): HTTP, botocore, pynamodb and the
fold remain, which is what the design decides.

Written to bench/results/<output>.{json,md}. `--charges 20000 --visitors 4000` for a quick run.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import inspect
import json
import logging
import os
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ripples-bench")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "RipplesBench")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

import boto3
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from local.moto_patches import patch_moto_transactions
from local.stack.functions import merged_environment, read_functions
from local.stack.resources import create_resources
from local.stack.runner import FAKE_CREDENTIALS, local_parameters
from local.stack.template import REGION, Template, load_template
from shared import tables
from shared.reports import cache
from shared.reports.revenue import Window, day_of, source_name, split
from shared.reports.service import revenue_report, revenue_report_from_ledger
from shared.revenue import keys, rollups, writer
from shared.revenue.intents import BookCharge, Decision, ScopeWrites
from shared.revenue.items import AcquisitionMap, LedgerItem, ProfileItem, UnattributedItem
from shared.revenue.models import ChargeFacts
from shared.revenue.records import LedgerRecord
from shared.revenue.store import pk_sk
from shared.settings import get_settings

RESULTS = Path(__file__).resolve().parent / "results"
PROJECT = "bench-reports"
DAY = 86_400
END = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())  # the seeded history ends here
CURRENCIES = ("usd", "eur", "gbp", "jpy")
SOURCES = ("google", "bing", "facebook", "newsletter", "linkedin", "tiktok", "partner|acme", "twitter")
MB = 1_000_000
SEEDING = {
    "writer": "through shared.revenue.writer (BookCharge intents, its transactions)",
    "batch": "with BatchWriteItem (entries as the writer writes them, rollups summed by its functions)",
}


# ---- moto as the local stack runs it -----------------------------------------------------------------


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode (as local.stack.runner starts it), the template's tables, the functions'
    environment pointed at it; yields its URL."""
    os.environ.update(FAKE_CREDENTIALS | {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    patch_moto_transactions()
    try:
        data = load_template()
        parameters = local_parameters(
            data, public_base_url="https://hooks.ripples.bench", stripe_api_base="http://127.0.0.1:9", overrides={}
        )
        template = Template(data, parameters, stack_name="bench", region=REGION)
        session = boto3.session.Session(region_name=REGION)
        create_resources(
            template, session.client("dynamodb", endpoint_url=url), session.client("sqs", endpoint_url=url)
        )
        os.environ.update(merged_environment(read_functions(template)))
        os.environ.update(AWS_ENDPOINT_URL=url, POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
        yield url
    finally:
        moto.stop()


_QUERY_SIGNATURE = inspect.signature(Table.query)
_INDEX: dict[tuple[int, str, str], tuple[list[str], list[Item]]] = {}  # (table, index, hash) -> sorted keys, items


def index_partition_queries() -> None:
    """A Query of an index walks only the index partition, sorted once after seeding (`forget_index`
    when the table changes); base-table queries are the local stack's own (local.moto_patches: the
    partition's key range). moto would walk and sort the whole table for every index Query."""
    local_query = Table.query

    def query(self: Table, *args: Any, **kwargs: Any) -> Any:
        given = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
        hash_key, index_name = given.get("hash_key"), given.get("index_name")
        if index_name is None:
            return local_query(self, *args, **kwargs)
        conditions = given.get("hash_key_conditions") or given.get("filter_kwargs", {}).get("hash_key_conditions")
        candidates = _index_candidates(
            self, index_name, conditions, hash_key, given.get("range_comparison"), given.get("range_objs") or []
        )
        start = given.get("exclusive_start_key")
        if start and given.get("scan_index_forward", True) is not False:
            # the previous pages' items, which moto would walk past one by one on every page
            range_attr = next(k["AttributeName"] for k in _index(self, index_name).schema if k["KeyType"] == "RANGE")
            after = str(DynamoType(start[range_attr]).value)
            candidates = candidates[bisect.bisect_left([_range(i, range_attr) for i in candidates], after) :]
        self.all_items = lambda: candidates  # type: ignore[method-assign]
        try:
            return local_query(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]


def _index_candidates(
    table: Table,
    index_name: str,
    hash_conditions: list[tuple[str, DynamoType]] | None,
    hash_key: DynamoType | None,
    comparison: str | None,
    values: list[DynamoType],
) -> list[Item]:
    index = _index(table, index_name)
    hash_attr = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
    range_attr = next(k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE")
    wanted = dict(hash_conditions or {}).get(hash_attr, hash_key)
    assert wanted is not None
    key = (id(table), index_name, str(wanted.value))
    if key not in _INDEX:
        members = [
            item
            for item in table._all_items_unpatched()
            if (v := item.attrs.get(hash_attr)) is not None and v == wanted
        ]
        members = [item for item in members if item.attrs.get(range_attr) is not None]
        members.sort(key=lambda item: str(item.attrs[range_attr].value))
        _INDEX[key] = ([str(item.attrs[range_attr].value) for item in members], members)
    keys, members = _INDEX[key]
    bounds = [str(v.value) for v in values]
    low, high = 0, len(keys)
    if comparison == "BETWEEN":
        low, high = bisect.bisect_left(keys, bounds[0]), bisect.bisect_right(keys, bounds[1])
    elif comparison in (">=", "GE"):
        low = bisect.bisect_left(keys, bounds[0])
    elif comparison in (">", "GT"):
        low = bisect.bisect_right(keys, bounds[0])
    elif comparison in ("<", "LT"):
        high = bisect.bisect_left(keys, bounds[0])
    elif comparison in ("<=", "LE"):
        high = bisect.bisect_right(keys, bounds[0])
    return members[low:high]  # moto applies the condition again: a superset would be fine too


def _index(table: Table, name: str) -> Any:
    return next(i for i in table.all_indexes() if i.name == name)


def _range(item: Item, attribute: str) -> str:
    return str(item.attrs[attribute].value)


def forget_index() -> None:
    _INDEX.clear()


Table._all_items_unpatched = Table.all_items  # type: ignore[attr-defined]


# ---- seeding ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    charges: int
    visitors: int
    years: int
    seed: int = 11


def visitor_sources(shape: Shape) -> dict[str, str | None]:
    """Visitors v00000..: each with one of the sources, one in ten without (its revenue is "(none)")."""
    rng = random.Random(shape.seed)
    return {f"v{n:06d}": None if rng.random() < 0.1 else rng.choice(SOURCES) for n in range(shape.visitors)}


def seed_profiles(sources: dict[str, str | None], totals: dict[str, Counter[str]] | None = None) -> None:
    """The visitors' profiles as the visitor API creates them, with their lifetime revenue if given."""
    with ProfileItem.batch_write() as batch:
        for visitor, source in sources.items():
            acquisition = AcquisitionMap(source=source, medium="cpc") if source else None
            batch.save(
                ProfileItem(
                    *pk_sk(keys.visitor(PROJECT, visitor)),
                    project_id=PROJECT,
                    visitor_id=visitor,
                    acquisition=acquisition,
                    revenue=dict((totals or {}).get(visitor, {})),
                    linked={},
                    subscriptions={},
                )
            )


def ledger_records(shape: Shape, sources: dict[str, str | None]) -> Iterator[LedgerRecord]:
    """The charges, oldest first: 1 in 7 unattributed; refunds none (85%), partial or full."""
    rng = random.Random(shape.seed + 1)
    start = END - shape.years * 365 * DAY
    created = sorted(rng.randrange(start, END) for _ in range(shape.charges))
    visitors = list(sources)
    for n, at in enumerate(created):
        currency = rng.choices(CURRENCIES, weights=(60, 20, 15, 5))[0]
        amount = rng.randrange(500, 50_000)
        roll = rng.random()
        refunded = 0 if roll < 0.85 else amount if roll < 0.9 else rng.randrange(1, amount)
        facts = ChargeFacts(
            id=f"ch_{n:08d}",
            created=at,
            currency=currency,
            amount=amount,
            amount_captured=amount,
            amount_refunded=refunded,
            captured=True,
            status="succeeded",
            customer_id=None,
            billing_email=None,
            receipt_email=None,
        )
        visitor = None if rng.random() < 1 / 7 else rng.choice(visitors)
        steps = ((refunded, at + 3600),) if refunded else ()
        yield LedgerRecord(
            facts,
            visitor,
            rng.choice((1, 1, 2, 3)) if visitor else None,
            amount,
            refunded,
            steps,
            1,
            source=sources[visitor] if visitor else None,
        )


def seed_through_writer(shape: Shape, batch: int, progress: Callable[[int], None]) -> int:
    """Profiles, then BookCharge intents through shared.revenue.writer, `batch` records to a
    decision (its 100-item transactions); returns how many transactions."""
    sources = visitor_sources(shape)
    seed_profiles(sources)
    transactions = 0
    pending: list[LedgerRecord] = []
    for n, record in enumerate(ledger_records(shape, sources), start=1):
        pending.append(record)
        if len(pending) == batch or n == shape.charges:
            units = [(BookCharge(r, None),) for r in pending]
            transactions += writer.commit(PROJECT, Decision(scopes=[ScopeWrites(None, units=units)]))
            pending = []
            progress(n)
    return transactions


def seed_in_batches(shape: Shape, progress: Callable[[int], None]) -> int:
    """The same items without transactions (BatchWriteItem, 25 to a request): ledger entries as the
    writer writes them, the rollups summed with the writer's own functions (rollups.place and
    rollups.contribution), the owners' and the unattributed totals; no timeline events (the report
    never reads them). Returns how many BatchWriteItem requests."""
    sources = visitor_sources(shape)
    rolled: dict[tuple[str, int], Counter[str]] = {}
    totals: dict[str, Counter[str]] = {}
    unattributed: Counter[str] = Counter()
    with LedgerItem.batch_write() as batch:
        for n, record in enumerate(ledger_records(shape, sources), start=1):
            batch.save(ledger_item(record))
            rolled.setdefault(rollups.place(record), Counter()).update(rollups.contribution(record))
            owner = totals.setdefault(record.visitor_id, Counter()) if record.visitor_id else unattributed
            owner[record.facts.currency] += record.net
            if n % 20_000 == 0:
                progress(n)
    seed_profiles(sources, totals)
    with UnattributedItem.batch_write() as batch:
        for currency, amount in sorted(unattributed.items()):
            batch.save(UnattributedItem(*pk_sk(keys.unattributed(PROJECT, currency)), currency=currency, amount=amount))
    items = [rollup_item(day, shard, counts) for (day, shard), counts in sorted(rolled.items())]
    months: dict[tuple[str, int], list[str]] = {}
    for day, shard in sorted(rolled):
        months.setdefault((day[:7], shard), []).append(day)
    items += [month_item(month, shard, days) for (month, shard), days in sorted(months.items())]
    client = tables.revenue_connection().client
    for start in range(0, len(items), 25):
        request = {get_settings().revenue_table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return -(-(shape.charges + shape.visitors + len(items) + len(unattributed)) // 25)


def ledger_item(record: LedgerRecord) -> LedgerItem:
    """The entry as shared.revenue.writer saves a new one (Transaction._save_ledger)."""
    f = record.facts
    return LedgerItem(
        *pk_sk(keys.ledger(PROJECT, f.id)),
        project_id=PROJECT,
        charge_id=f.id,
        created=f.created,
        currency=f.currency,
        amount=record.amount,
        refunded=record.refunded,
        refund_steps=[list(step) for step in record.refund_steps] or None,
        visitor_id=record.visitor_id,
        tier=record.tier,
        source=record.source,
        **keys.ledger_index(PROJECT, f.created, f.id),
    )


def rollup_item(day: str, shard: int, counts: Counter[str]) -> dict[str, Any]:
    """A day shard as the writer's ADDs leave it (shared.revenue.rollups.update), in DynamoDB JSON."""
    item: dict[str, Any] = keys.rollup(PROJECT, day, shard)
    item |= {"kind": {"S": "rollup"}, "project_id": {"S": PROJECT}, "day": {"S": day}, "writes": {"N": "1"}}
    item |= {name: {"N": str(amount)} for name, amount in counts.items()}
    return item


def clear_caches() -> None:
    """The report's caches of months deleted (the first report after builds them again)."""
    connection = tables.revenue_connection()
    table = get_settings().revenue_table
    prefix = keys.REPORT_CACHE_PREFIX
    found = connection.client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": keys.rollup_pk(PROJECT)}, ":prefix": {"S": prefix}},
        ProjectionExpression="pk, sk",
    )
    for item in found.get("Items", []):
        connection.client.delete_item(TableName=table, Key=item)


def exact_visitors(shape: Shape, window: Window) -> dict[str, int]:
    """Distinct paying visitors per source in the window, counted from the generated records."""
    owners: dict[str, set[str]] = {}
    for record in ledger_records(shape, visitor_sources(shape)):
        if record.visitor_id is not None and window.contains(record.facts.created):
            owners.setdefault(source_name(record.source), set()).add(record.visitor_id)
    return {source: len(found) for source, found in owners.items()}


def visitor_errors(body: dict[str, Any], exact: dict[str, int]) -> dict[str, Any]:
    """The report's `visitors` against the exact counts: how many sources are above the sketch's
    size, and the largest relative error (0 where exact)."""
    errors = {
        row["source"]: (row["visitors"] - exact[row["source"]]) / exact[row["source"]] for row in body["by_source"]
    }
    return {
        "sources": len(errors),
        "above_sketch": sum(1 for source in errors if exact[source] > cache.KMV_SIZE),
        "largest_exact": max(exact.values(), default=0),
        "max_relative_error": round(max((abs(e) for e in errors.values()), default=0.0), 4),
    }


def month_item(month: str, shard: int, days: list[str]) -> dict[str, Any]:
    """A month shard's version item as the writer's bumps leave it (shared.revenue.rollups.month_versions),
    each of its days written once."""
    item: dict[str, Any] = keys.rollup_month(PROJECT, month, shard)
    item |= {rollups.day_version(day): {"N": "1"} for day in days}
    return item | {
        "kind": {"S": "rollup_month"},
        "project_id": {"S": PROJECT},
        "writes": {"N": "1"},
        "generation": {"S": uuid.uuid4().hex},
    }


def touch_day(day: str) -> None:
    """A booking's bump of the day's version (shard 0), as live webhooks make all day long: that day
    of the report's cache of its month is stale after it."""
    pk, sk = pk_sk(keys.rollup_month(PROJECT, day[:7], 0))
    tables.revenue_connection().client.update_item(
        TableName=get_settings().revenue_table,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="ADD writes :one, #day :one",
        ExpressionAttributeNames={"#day": rollups.day_version(day)},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


# ---- measuring -------------------------------------------------------------------------------------


@dataclass
class Reads:
    """DynamoDB requests, items and response bytes of the functions' clients (botocore hooks)."""

    requests: Counter[str] = field(default_factory=Counter)
    items: int = 0
    bytes: int = 0

    def before(self, model: Any, **_: Any) -> None:
        self.requests[model.name] += 1

    def after(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.items += int(parsed.get("Count", len(parsed.get("Items", []))))
        self.bytes += len(http_response.content or b"")


@contextmanager
def counting() -> Iterator[Reads]:
    reads = Reads()
    clients = tables.clients()
    for client in clients:
        client.meta.events.register("before-call.dynamodb", reads.before)
        client.meta.events.register("after-call.dynamodb", reads.after)
    try:
        yield reads
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", reads.before)
            client.meta.events.unregister("after-call.dynamodb", reads.after)


def windows(shape: Shape) -> dict[str, Window]:
    """All time; one year, one month and one day ending inside the last day, bounds inside days."""
    end = END - 2 * DAY + 13 * 3600 + 17 * 60  # 13:17 of the day before the last
    return {
        "all time": Window(),
        "one year": Window(end - 365 * DAY, end),
        "one month": Window(end - 30 * DAY, end),
        "one day": Window(end - DAY, end),
    }


def days_in(window: Window, shape: Shape) -> float:
    start = window.start if window.start is not None else END - shape.years * 365 * DAY
    end = window.end if window.end is not None else END
    return (end - start) / DAY


class MotoClock:
    """Seconds moto's DynamoDB handler spends serving requests (its server thread, this process)."""

    seconds = 0.0
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        cls._original = DynamoHandler.call_action

        def timed(handler: DynamoHandler) -> Any:
            started = time.perf_counter()
            try:
                return cls._original(handler)
            finally:
                cls.seconds += time.perf_counter() - started

        DynamoHandler.call_action = timed  # type: ignore[method-assign]


def measure(
    report: Callable[[str, Window], dict[str, Any]],
    window: Window,
    runs: int,
    budget_seconds: float,
    at_least: int = 3,
    before: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], Any]:
    """The report `runs` times (fewer once `budget_seconds` are spent, `at_least` if runs allow):
    latency, and the part of it moto spent serving (the rest: HTTP, botocore, pynamodb, ours).
    `before` runs before each report, untimed."""
    latencies: list[float] = []
    ours: list[float] = []
    body: Any = None
    reads = Reads()
    spent = 0.0
    for n in range(runs):
        if n >= at_least and spent > budget_seconds:
            break
        if before is not None:
            before()
        with counting() as counted:
            served = MotoClock.seconds
            started = time.perf_counter()
            body = report(PROJECT, window)
            elapsed = time.perf_counter() - started
        latencies.append(elapsed)
        ours.append(elapsed - (MotoClock.seconds - served))
        spent += elapsed
        if n == 0:
            reads = counted
    return {
        "runs": len(latencies),
        "p50_ms": _ms(statistics.median(latencies)),
        "p99_ms": _ms(_p99(latencies)),
        "p50_ms_without_moto": _ms(statistics.median(ours)),
        "p99_ms_without_moto": _ms(_p99(ours)),
        "requests": sum(reads.requests.values()),
        "by_operation": dict(reads.requests),
        "items_read": reads.items,
        "mb_read": round(reads.bytes / MB, 2),
    }, body


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


# ---- the projection ---------------------------------------------------------------------------------


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item of strings and integers: names plus values (a number: about one
    byte per two digits, plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if isinstance(value, int):
            size += (len(str(abs(value))) + 1) // 2 + 1
        elif value is not None:
            size += len(str(value).encode())
    return size


def query_pages(sizes: list[int]) -> int:
    """Requests of a Query reading items of these sizes: a page stops after 1 MB (at least one page)."""
    pages, page = 1, 0
    for size in sizes:
        if page + size > 1024 * 1024:
            pages, page = pages + 1, 0
        page += size
    return pages


def project(shape: Shape, named: dict[str, Window]) -> dict[str, dict[str, Any]]:
    """Requests and bytes of each window's report for `shape`, computed from the generated records
    alone (no DynamoDB): the months' version items, the report's caches of months (encoded as
    shared.reports.cache encodes them, in parts), the items of the window's last day when a booking
    made it stale (live), in key order; the ledger entries of the edges (and of the whole
    window, for the ledger-only path)."""
    sources = visitor_sources(shape)
    rolled: dict[tuple[str, int], Counter[str]] = {}
    entries: list[tuple[int, int]] = []  # (created, size)
    for record in ledger_records(shape, sources):
        rolled.setdefault(rollups.place(record), Counter()).update(rollups.contribution(record))
        f = record.facts
        entry = {
            **dict(zip(("pk", "sk"), pk_sk(keys.ledger(PROJECT, f.id)), strict=True)),
            **keys.ledger_index(PROJECT, f.created, f.id),
            "kind": "ledger",
            "project_id": PROJECT,
            "charge_id": f.id,
            "created": f.created,
            "currency": f.currency,
            "amount": record.amount,
            "refunded": record.refunded,
            "visitor_id": record.visitor_id,
            "tier": record.tier,
            "source": record.source,
            "version": 1,
        }
        entries.append((f.created, item_size(entry) + (12 if record.refund_steps else 0)))
    day_items: dict[str, list[int]] = {}  # day -> sizes of its items
    summaries: dict[str, list[dict[str, Any]]] = {}
    for (day, _), counts in sorted(rolled.items()):
        day_items.setdefault(day, []).append(60 + item_size(dict(counts)))  # 60: keys, kind, project, day, writes
        summaries.setdefault(day[:7], []).append({"day": day, **counts})
    # a cache part: its data, plus keys, kind, project, basis (4 shards) and parts
    caches = {
        month: [len(part) + 220 for part in cache.split_parts(cache.encode(cache.summarise(items)))]
        for month, items in summaries.items()
    }
    found: dict[str, dict[str, Any]] = {}
    for name, window in named.items():
        parts = split(window)
        requests, size, live_requests, live_size = 0, 0, 0, 0
        if parts.days is not None:
            first, last = parts.days
            months = [
                m for m in sorted(caches) if (first is None or m >= first[:7]) and (last is None or m <= last[:7])
            ]
            versions = [120 + 31 * 10] * rollups.SHARDS * len(months)  # keys, kind, project, writes, generation, days
            cached = [b for m in months for b in caches[m]]
            requests, size = query_pages(versions) + query_pages(cached), sum(versions) + sum(cached)
            if months:  # the last day stale: read again from its day items, its month's cache written
                stale = day_items[max(d for d in day_items if last is None or d <= last)]
                live_requests = requests + query_pages(stale) + 1
                live_size = size + sum(stale)
        for edge in parts.edges:
            chosen = [b for t, b in entries if edge.contains(t)]
            requests, size = requests + query_pages(chosen), size + sum(chosen)
            live_requests, live_size = live_requests + query_pages(chosen), live_size + sum(chosen)
        ledger = [b for t, b in entries if window.contains(t)]
        found[name] = {
            "requests": requests,
            "mb_read": round(size / MB, 1),
            "live_requests": live_requests,
            "live_mb_read": round(live_size / MB, 1),
            "ledger_only_requests": query_pages(ledger),
            "ledger_only_mb": round(sum(ledger) / MB, 1),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--charges", type=int, default=200_000)
    parser.add_argument("--visitors", type=int, default=40_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50, help="reports per window from rollups")
    parser.add_argument("--ledger-runs", type=int, default=3, help="reports per window from the ledger alone")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per window and path: fewer runs after")
    parser.add_argument("--project-to", type=int, default=1_000_000, help="charges of the projection (0: none)")
    parser.add_argument("--batch", type=int, default=2000, help="ledger records per writer decision")
    parser.add_argument(
        "--seed", choices=("writer", "batch"), default="batch", help="transactions of the writer, or BatchWriteItem"
    )
    parser.add_argument("--output", default="reports")
    args = parser.parse_args()
    shape = Shape(args.charges, args.visitors, args.years)

    with moto_server():
        tables._META["read_timeout_seconds"] = 60  # moto on a busy laptop: no retry of a slow transaction
        tables.bind()
        started = time.perf_counter()

        def progress(done: int) -> None:
            if done % 20_000 == 0:
                print(f"  {done:,} charges in {time.perf_counter() - started:.0f} s", flush=True)

        if args.seed == "writer":
            requests = seed_through_writer(shape, args.batch, progress)
        else:
            requests = seed_in_batches(shape, progress)
        seeded = time.perf_counter() - started
        print(f"seeded {shape.charges:,} charges, {shape.visitors:,} visitors in {seeded:.0f} s", flush=True)
        forget_index()
        index_partition_queries()
        MotoClock.install()

        rows: dict[str, Any] = {}
        for name, window in windows(shape).items():
            days = days_in(window, shape)
            last_day = day_of((window.end or END) - 1)
            clear_caches()
            cold_row, _ = measure(revenue_report, window, 1, args.budget, 1)
            rollup_row, from_rollups = measure(revenue_report, window, args.runs, args.budget)
            live_row, from_live = measure(
                revenue_report, window, args.runs, args.budget, before=functools.partial(touch_day, last_day)
            )
            ledger_row, from_ledger = measure(revenue_report_from_ledger, window, args.ledger_runs, args.budget, 1)
            assert from_rollups == from_ledger == from_live, f"{name}: the reports differ"
            parts = split(window)
            rows[name] = {
                "window": [_iso(window.start), _iso(window.end)],
                "days": round(days, 2),
                "whole_days": _whole_days(parts.days, shape),
                "edges": len(parts.edges),
                "request_target": round(days / 100 + 10, 2),
                "payments": sum(s["payments"] for s in from_rollups["by_source"])
                + from_rollups["unattributed"]["payments"],
                "rollups": rollup_row,
                "rollups_cold": cold_row,
                "rollups_live": live_row,
                "ledger_only": ledger_row,
                "visitors": visitor_errors(from_rollups, exact_visitors(shape, window)),
            }
            print(
                f"{name}: rollups p50 {rollup_row['p50_ms']} ms ({rollup_row['p50_ms_without_moto']} without moto), "
                f"{rollup_row['requests']} requests, {rollup_row['items_read']} items; cold {cold_row['p50_ms']} ms; "
                f"live p50 {live_row['p50_ms']} ms; ledger only p50 {ledger_row['p50_ms']} ms, "
                f"{ledger_row['requests']} requests, {ledger_row['items_read']} items",
                flush=True,
            )

    if args.project_to:
        print(f"projecting {args.project_to:,} charges ...", flush=True)
        scaled = Shape(args.project_to, shape.visitors * args.project_to // shape.charges, shape.years)
        for name, projected in project(scaled, windows(shape)).items():
            rows[name]["projected"] = projected

    result = {
        "projected_charges": args.project_to,
        "charges": shape.charges,
        "visitors": shape.visitors,
        "years": shape.years,
        "sources": len(SOURCES) + 1,
        "currencies": len(CURRENCIES),
        "seed": args.seed,
        "seed_seconds": round(seeded, 1),
        "seed_requests": requests,
        "moto": "ThreadedMotoServer with the local stack's patches (a Query reads its key range, its response "
        "written by json.dumps), index partitions sorted once",
        "windows": rows,
    }
    write(args, result)


def _whole_days(days: tuple[str | None, str | None] | None, shape: Shape) -> int:
    if days is None:
        return 0
    first = days[0] or day_of(END - shape.years * 365 * DAY)
    last = days[1] or day_of(END)
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1


def _iso(second: int | None) -> str | None:
    return None if second is None else datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write(args: argparse.Namespace, result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n")
    command = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "output" and v)
    lines = [
        f"# Revenue report benchmark, {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "",
        f"`python -m bench.reports {command}`: {result['charges']:,} charges over {result['years']} years, "
        f'{result["visitors"]:,} visitors, {result["sources"]} sources (with "(none)"), '
        f"{result['currencies']} currencies, seeded {SEEDING[args.seed]} in {result['seed_seconds']} s "
        f"({result['seed_requests']:,} requests); moto: {result['moto']}, over HTTP, in this process. "
        "Latency is the service call (the handler's one call); \"ours\" is it minus the time moto's handler "
        "spent serving (what is left: HTTP, botocore, pynamodb, the fold). Requests, items and MB are of one report.",
        "",
        "Three ways the rollup path runs: **warm**, the months' caches current (p50 of repeated reports); "
        "**cold**, the first report after the caches were deleted (it reads every day item of the window's "
        "months and writes their caches); **live**, the window's last day bumped before each report as a "
        "booking bumps it, so that day is read from its day items (and its month's cache written again) while "
        "every other day comes from the caches.",
        "",
        "| window | days | whole days + edges | target requests | warm: p50 / p99 ms | ours p50 / p99 ms "
        "| requests | items | MB | cold: ms | requests | live: p50 ms | ours p50 ms | requests | items "
        "| ledger only: p50 ms | ours p50 ms | requests | items | MB |",
        "| --- " * 21 + "|",
    ]
    for name, row in result["windows"].items():
        r, c, live, led = row["rollups"], row["rollups_cold"], row["rollups_live"], row["ledger_only"]
        lines.append(
            f"| {name} | {row['days']} | {row['whole_days']} + {row['edges']} | {row['request_target']} "
            f"| {r['p50_ms']} / {r['p99_ms']} ({r['runs']} runs) | {r['p50_ms_without_moto']} / "
            f"{r['p99_ms_without_moto']} | {r['requests']} | {r['items_read']:,} | {r['mb_read']} "
            f"| {c['p50_ms']} | {c['requests']} "
            f"| {live['p50_ms']} ({live['runs']} runs) | {live['p50_ms_without_moto']} | {live['requests']} "
            f"| {live['items_read']:,} "
            f"| {led['p50_ms']} ({led['runs']} runs) | {led['p50_ms_without_moto']} | {led['requests']} "
            f"| {led['items_read']:,} | {led['mb_read']} |"
        )
    lines += _table(
        f"`visitors` against the exact counts (exact up to {cache.KMV_SIZE:,} distinct visitors of a source in "
        "the window, then the sketch's estimate; money and payments always exact, and equal to the ledger-only "
        "report's):",
        ["window", "sources", "above the sketch size", "largest exact count", "largest relative error"],
        [
            [name, v["sources"], v["above_sketch"], f"{v['largest_exact']:,}", f"{100 * v['max_relative_error']:.2f} %"]
            for name, v in ((name, row["visitors"]) for name, row in result["windows"].items())
        ],
    )
    if result["projected_charges"]:
        lines += _table(
            f"Projection for {result['projected_charges']:,} charges of the same shape (visitors scaled alike), "
            "computed from the generated records (version items, the months' caches as shared.reports.cache "
            "encodes them, day items, DynamoDB item sizes, 1 MB Query pages):",
            [
                "window",
                "target requests",
                "warm: requests",
                "MB",
                "live: requests",
                "MB",
                "ledger only: requests",
                "MB",
            ],
            [
                [name, row["request_target"], *(row["projected"][k] for k in PROJECTED)]
                for name, row in result["windows"].items()
            ],
        )
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


PROJECTED = ("requests", "mb_read", "live_requests", "live_mb_read", "ledger_only_requests", "ledger_only_mb")


def _table(intro: str, columns: list[str], rows: list[list[Any]]) -> list[str]:
    """A paragraph, then a Markdown table."""
    lines = ["", intro, "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return lines + ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]


if __name__ == "__main__":
    main()
