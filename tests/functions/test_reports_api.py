"""The reports handler (functions.reports_api.app) end to end on moto: ledger entries, visitor profiles
and the daily rollups written in the documented layout (docs/data-model.md; the rollups summed from the
entries as tests.revenue_checks.rollups_from_ledger does); the report reads whole UTC days from the
rollups and the partial days at the window's edges through the GSI ByCreated."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from functions.reports_api.app import lambda_handler
from shared import tables
from shared.errors import ServiceUnavailable
from shared.reports import store
from shared.revenue import keys, rollups
from tests import raw
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv
from tests.revenue_checks import rollups_from_ledger, scan

REVENUE = "/projects/{project_id}/revenue"
P = "proj-1"
T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
DAY = 86_400


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def call(
    context: Any, *, project: str = P, projects: list[str] | None = None, **query: str
) -> tuple[int, dict[str, Any]]:
    event = http_event(
        "GET",
        REVENUE,
        {"project_id": project},
        projects=[P, "proj-2"] if projects is None else projects,
        query=query or None,
    )
    response = lambda_handler(event, context)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], response_json(response)


def report(context: Any, **query: str) -> dict[str, Any]:
    status, body = call(context, **query)
    assert status == 200, body
    return body


def entry_item(
    charge_id: str,
    created: int,
    amount: int,
    *,
    refunded: int = 0,
    currency: str = "usd",
    visitor: str | None = None,
    tier: int | None = None,
    source: str | None = None,
    project: str = P,
    **extra: Any,
) -> dict[str, Any]:
    """A ledger entry as booking writes it: no visitor_id, tier or source when unattributed; `source`
    is the owner's acquisition.source (booking keeps it current), absent when the owner has none."""
    values = {
        "project_id": project,
        "charge_id": charge_id,
        "created": created,
        "currency": currency,
        "amount": amount,
        "refunded": refunded,
        "visitor_id": visitor,
        "tier": tier,
        "source": source,
        "customer_id": f"cus_{visitor or 'anon'}",
        "kind": "ledger",
        "version": 1,
        **extra,
        **keys.ledger_index(project, created, charge_id),
    }
    return {**keys.ledger(project, charge_id), **raw.to_item(values)}


def profile_item(visitor: str, source: str | None, *, project: str = P) -> dict[str, Any]:
    """A visitor profile as the visitor API writes it; `acquisition` only when a source is given."""
    values = {
        "project_id": project,
        "visitor_id": visitor,
        "version": 1,
        "kind": "profile",
        "acquisition": {"source": source, "medium": "cpc"} if source else None,
    }
    return {**keys.visitor(project, visitor), **raw.to_item(values)}


def write(aws: AwsEnv, items: list[dict[str, Any]]) -> None:
    """The items, then the rollups as booking keeps them: summed again from every ledger entry, and
    their months' versions (a new generation: what a report cached before is stale)."""
    _put(aws, items)
    if any(item["sk"]["S"] == keys.LEDGER for item in items):
        rolled = rollups_from_ledger(scan(aws.revenue_table))
        _put(aws, [rollup_item(pk, sk, counts) for (pk, sk), counts in rolled.items()])
        months: dict[tuple[str, str, int], set[str]] = {}
        for pk, sk in rolled:
            day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).split("#")
            months.setdefault((pk, day[:7], int(shard)), set()).add(day)
        _put(aws, [month_item(pk, month, shard, days) for (pk, month, shard), days in sorted(months.items())])


def month_item(pk: str, month: str, shard: int, days: set[str]) -> dict[str, Any]:
    """A month shard's version item (shared.revenue.rollups.month_versions), each day written once."""
    values = {"kind": "rollup_month", "writes": 1, "generation": uuid.uuid4().hex}
    values |= {rollups.day_version(day): 1 for day in days}
    return {"pk": {"S": pk}, "sk": {"S": keys.month_sk(month, shard)}, **raw.to_item(values)}


def rollup_item(pk: str, sk: str, counts: dict[str, int]) -> dict[str, Any]:
    """One day shard of a project's rollup (shared.revenue.rollups): counts as top-level numbers."""
    project = pk.removeprefix("P#").removesuffix("#ROLLUP")
    values = {"kind": "rollup", "project_id": project, "day": sk.split("#")[1], "writes": 1, **counts}
    return {"pk": {"S": pk}, "sk": {"S": sk}, **raw.to_item(values)}


def _put(aws: AwsEnv, items: list[dict[str, Any]]) -> None:
    client = boto3.client("dynamodb")
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        response = client.batch_write_item(RequestItems={aws.revenue_table: chunk})
        assert not response.get("UnprocessedItems")


def count_queries(operation: str = "Query") -> list[dict[str, Any]]:
    """The calls of the operation the handler makes from now on (their parameters), through botocore's events."""
    calls: list[dict[str, Any]] = []
    for client in tables.clients():
        client.meta.events.register(
            f"provide-client-params.dynamodb.{operation}", lambda params, **_: calls.append(dict(params))
        )
    return calls


def index_queries(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [q for q in queries if q.get("IndexName") == "ByCreated"]


def rollup_queries(queries: list[dict[str, Any]], prefix: str = keys.ROLLUP_PREFIX) -> list[dict[str, Any]]:
    """The Queries of the rollup partition's items whose sort keys start with `prefix` (day items,
    by default; the months' versions and the report's caches are items of it too)."""
    return [
        q
        for q in queries
        if "IndexName" not in q
        and any(str(v.get("S", "")).startswith(prefix) for v in q["ExpressionAttributeValues"].values())
    ]


@pytest.fixture
def ledger(aws: AwsEnv) -> None:
    """Four visitors (two from google, one without a source, one from a newsletter), six payments."""
    write(
        aws,
        [
            profile_item("v1", "google"),
            profile_item("v2", "google"),
            profile_item("v3", None),
            profile_item("v4", "newsletter"),
            entry_item("ch_1", T0, 2500, visitor="v1", tier=1, source="google"),
            entry_item("ch_2", T0 + 100, 1000, refunded=400, visitor="v1", tier=3, source="google"),
            entry_item("ch_3", T0 + 200, 3000, refunded=3000, visitor="v2", tier=2, source="google"),  # fully refunded
            entry_item("ch_4", T0 + 300, 5000, currency="jpy", visitor="v3", tier=2),
            entry_item("ch_5", T0 + 400, 700),  # unattributed
            entry_item("ch_6", T0 + 500, 900, currency="eur", visitor="v4", tier=1, source="newsletter"),
            # Another project's money, with the same visitor id and the same `created`: never counted.
            profile_item("v1", "bing", project="proj-2"),
            entry_item("ch_9", T0 + 100, 99_999, visitor="v1", tier=1, source="bing", project="proj-2"),
            # Items beside the ledger: the GSI holds only ledger entries.
            {
                **keys.unattributed(P, "usd"),
                **raw.to_item({"kind": "unattributed", "currency": "usd", "amount": 700}),
            },
        ],
    )


# ---- the report ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("ledger")
def test_all_time_report(lambda_context: Any) -> None:
    assert report(lambda_context) == {
        "totals": {"eur": 900, "jpy": 5000, "usd": 3800},
        "by_source": [
            {"source": "(none)", "revenue": {"jpy": 5000}, "payments": 1, "visitors": 1},
            {"source": "google", "revenue": {"usd": 3100}, "payments": 3, "visitors": 2},
            {"source": "newsletter", "revenue": {"eur": 900}, "payments": 1, "visitors": 1},
        ],
        "unattributed": {"revenue": {"usd": 700}, "payments": 1},
        "by_tier": {"1": {"eur": 900, "usd": 2500}, "2": {"jpy": 5000}, "3": {"usd": 600}},
    }


@pytest.mark.usefixtures("ledger")
def test_the_window_is_half_open_on_stripe_created(lambda_context: Any) -> None:
    # from = ch_2's created (included), to = ch_5's created (excluded): ch_2, ch_3, ch_4
    body = report(lambda_context, **{"from": iso(T0 + 100), "to": iso(T0 + 400)})

    assert body == {
        "totals": {"jpy": 5000, "usd": 600},
        "by_source": [
            {"source": "(none)", "revenue": {"jpy": 5000}, "payments": 1, "visitors": 1},
            {"source": "google", "revenue": {"usd": 600}, "payments": 2, "visitors": 2},
        ],
        "unattributed": {"revenue": {}, "payments": 0},
        "by_tier": {"1": {}, "2": {"jpy": 5000}, "3": {"usd": 600}},
    }


@pytest.mark.usefixtures("ledger")
@pytest.mark.parametrize(
    ("query", "charges"),
    [
        ({"from": iso(T0 + 400)}, 2),  # ch_5 (at from), ch_6
        ({"from": iso(T0 + 400.5)}, 1),  # a fraction past ch_5's second: ch_6 only
        ({"to": iso(T0 + 100)}, 1),  # ch_1; ch_2 is at `to`
        ({"to": iso(T0 + 100.5)}, 2),  # ch_2's second is before `to`
        ({"from": iso(T0 + 500), "to": iso(T0 + 501)}, 1),  # the one second of ch_6
        ({"from": iso(T0 + 500), "to": iso(T0 + 500)}, 0),
        ({"from": iso(T0 + 501), "to": iso(T0)}, 0),  # to before from: nothing
        ({"from": "2026-11-01T01:01:40+01:00", "to": "2026-11-01T00:05:00"}, 2),  # offset; none = UTC
        ({"from": "2026-11-01"}, 6),
        ({"to": "2026-11-01"}, 0),
    ],
)
def test_bounds_select_by_created(lambda_context: Any, query: dict[str, str], charges: int) -> None:
    body = report(lambda_context, **query)

    assert sum(s["payments"] for s in body["by_source"]) + body["unattributed"]["payments"] == charges


@pytest.mark.usefixtures("ledger")
def test_an_empty_window_reads_nothing(lambda_context: Any) -> None:
    queries = count_queries()

    body = report(lambda_context, **{"from": iso(T0 + 10), "to": iso(T0)})

    assert body["by_tier"] == {"1": {}, "2": {}, "3": {}}
    assert (body["totals"], body["by_source"]) == ({}, [])
    assert queries == []


def test_a_project_without_ledger_has_an_empty_report(aws: AwsEnv, lambda_context: Any) -> None:
    assert report(lambda_context) == {
        "totals": {},
        "by_source": [],
        "unattributed": {"revenue": {}, "payments": 0},
        "by_tier": {"1": {}, "2": {}, "3": {}},
    }


def test_an_owner_without_a_profile_counts_under_none(aws: AwsEnv, lambda_context: Any) -> None:
    write(aws, [entry_item("ch_1", T0, 1200, visitor="gone", tier=3)])  # booking recorded no source

    assert report(lambda_context)["by_source"] == [
        {"source": "(none)", "revenue": {"usd": 1200}, "payments": 1, "visitors": 1}
    ]


def test_every_page_of_the_index_is_read(aws: AwsEnv, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "QUERY_PAGE_LIMIT", 4)
    write(aws, [profile_item("v1", "google")])
    entries = [
        entry_item(
            f"ch_{i:02d}", T0 + i, 100, visitor="v1" if i % 2 else None, tier=1, source="google" if i % 2 else None
        )
        for i in range(30)
    ]
    write(aws, entries)
    queries = count_queries()

    body = report(lambda_context, **{"from": iso(T0 + 3), "to": iso(T0 + 28)})  # ch_03 .. ch_27: 25 entries

    assert len(queries) == 7  # 25 entries in pages of 4 (inside one day: the index alone, no rollup)
    assert all(q["IndexName"] == "ByCreated" and q["Limit"] == 4 for q in queries)
    assert body["totals"] == {"usd": 2500}
    assert body["by_source"] == [{"source": "google", "revenue": {"usd": 1300}, "payments": 13, "visitors": 1}]
    assert body["unattributed"] == {"revenue": {"usd": 1200}, "payments": 12}


@pytest.mark.parametrize(
    ("query", "index_pages"),
    [
        # All time: whole days only, from the rollups (one Query, one page); no entry is read.
        ({}, 0),
        # To a time inside Nov 1: the days before it from the rollups (none), the part of Nov 1 from
        # the index: 1,200 entries of ~1 KB, more than one 1 MB page.
        ({"to": iso(T0 + 1200)}, 2),
    ],
)
def test_a_large_ledger_is_read_past_dynamodbs_1_mb_pages(
    aws: AwsEnv, lambda_context: Any, query: dict[str, str], index_pages: int
) -> None:
    """1,200 entries of ~1 KB owned by 150 visitors, all created on one day."""
    sources = ["google", "bing", "newsletter", None]
    write(aws, [profile_item(f"v{n:03d}", sources[n % 4]) for n in range(150)])
    padding = ["x" * 900]  # stands for the emails booking keeps on an entry
    entries = [
        entry_item(
            f"ch_{i:04d}",
            T0 + i,
            1000,
            refunded=100 * (i % 2),
            visitor=f"v{i % 150:03d}",
            tier=1 + i % 3,
            source=sources[i % 150 % 4],
        )
        for i in range(1200)
    ]
    write(aws, [{**item, **raw.to_item({"emails": padding})} for item in entries])
    queries = count_queries()

    body = report(lambda_context, **query)

    assert len(index_queries(queries)) >= index_pages
    assert len(rollup_queries(queries)) == (0 if "to" in query else 1)  # (no month before Nov has rollups)
    assert body["totals"] == {"usd": 1200 * 1000 - 600 * 100}
    assert {s["source"]: (s["payments"], s["visitors"]) for s in body["by_source"]} == {
        "(none)": (296, 37),
        "bing": (304, 38),
        "google": (304, 38),
        "newsletter": (296, 37),
    }
    assert body["unattributed"] == {"revenue": {}, "payments": 0}


# ---- 401 / 400 / 403, in that order ----------------------------------------------------------------


def test_no_token_is_401(aws: AwsEnv, lambda_context: Any) -> None:
    event = http_event("GET", REVENUE, {"project_id": P}, projects=None, query={"from": "yesterday"})

    response = lambda_handler(event, lambda_context)

    assert (response["statusCode"], response_json(response)["error"]["code"]) == (401, "unauthorized")


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "1795000000", ""])
@pytest.mark.parametrize("name", ["from", "to"])
def test_unparsable_bounds_are_400_before_the_project_check(
    aws: AwsEnv, lambda_context: Any, name: str, value: str
) -> None:
    status, body = call(lambda_context, projects=["proj-2"], **{name: value})

    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert name in body["error"]["message"]


def test_an_invalid_project_id_is_400(aws: AwsEnv, lambda_context: Any) -> None:
    status, body = call(lambda_context, project="bad%20id", projects=["bad%20id"])

    assert (status, body["error"]["code"]) == (400, "invalid_request")


@pytest.mark.usefixtures("ledger")
def test_another_projects_token_is_403(lambda_context: Any) -> None:
    status, body = call(lambda_context, projects=["proj-2"])

    assert (status, body["error"]["code"]) == (403, "forbidden")


# ---- storage failures: 503, so the dashboard retries --------------------------------------------


def _throttled(**_: Any) -> None:
    error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
    raise ClientError(error, "Query")


def _unreachable(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


@pytest.mark.usefixtures("ledger")
@pytest.mark.parametrize("failure", [_throttled, _unreachable])
def test_a_failing_query_is_503(lambda_context: Any, failure: Any) -> None:
    for client in tables.clients():
        client.meta.events.register("before-call.dynamodb.Query", failure)

    status, body = call(lambda_context)

    assert (status, body["error"]["code"]) == (503, "service_unavailable")


@pytest.mark.usefixtures("ledger")
@pytest.mark.parametrize("query", [{}, {"from": iso(T0 + 100)}, {"to": iso(T0 + 450)}])
def test_a_failing_index_or_rollup_query_is_503(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch, query: dict[str, str]
) -> None:
    def unavailable(*_: Any, **__: Any) -> Any:
        raise ServiceUnavailable("DynamoDB is throttling; retry.")

    monkeypatch.setattr(store, "ledger_rows", unavailable)
    monkeypatch.setattr(store, "rollup_items", unavailable)

    status, body = call(lambda_context, **query)

    assert (status, body["error"]["code"]) == (503, "service_unavailable")


# ---- what it reads: rollups for whole days, the index for the edges, never a profile ---------------


@pytest.mark.usefixtures("ledger")
@pytest.mark.parametrize(
    ("query", "rollup", "index"),
    [
        ({}, 1, 0),  # all time: whole days only
        ({"from": "2026-10-01", "to": "2026-12-01"}, 1, 0),  # midnights: whole days only
        ({"from": iso(T0 - 3 * DAY + 5), "to": iso(T0 + 2 * DAY + 7)}, 1, 2),  # both edges inside days
        ({"from": iso(T0 - DAY + 5)}, 1, 1),  # from inside a day, to open
        ({"to": iso(T0 + 450)}, 0, 1),  # the days before Nov 1 (no month of them has rollups), Nov 1 to 00:07:30
        ({"from": iso(T0 + 100), "to": iso(T0 + 450)}, 0, 1),  # inside one day: the index alone
        ({"from": iso(T0 - 60), "to": iso(T0 + 450)}, 0, 1),  # two partial days, no whole one: one query
    ],
)
def test_whole_days_come_from_the_rollups_and_partial_days_from_the_index(
    lambda_context: Any, query: dict[str, str], rollup: int, index: int
) -> None:
    queries = count_queries()
    batch_gets = count_queries("BatchGetItem")

    body = report(lambda_context, **query)

    assert (len(rollup_queries(queries)), len(index_queries(queries))) == (rollup, index)
    # (whole days: the months' versions queried once, and their caches once where any month has
    # rollups; then the day items of the months whose cache is stale: all of them, the first report)
    versions = len(rollup_queries(queries, keys.MONTH_PREFIX))
    assert len(rollup_queries(queries, keys.REPORT_CACHE_PREFIX)) == rollup <= versions <= 1
    assert batch_gets == []  # the entries record their owner's source: no profile is read
    assert body["totals"]  # the fixture's charges are all inside every one of these windows
    # And asked again, the whole days come from the months' caches: no day item is read
    queries.clear()
    assert report(lambda_context, **query) == body
    assert (len(rollup_queries(queries)), len(index_queries(queries))) == (0, index)


@pytest.mark.usefixtures("ledger")
def test_a_window_cut_across_days_adds_up(aws: AwsEnv, lambda_context: Any) -> None:
    # Given charges on Nov 2 (a whole day of the window) and Nov 3 (its last, partial day)
    write(
        aws,
        [
            entry_item("ch_7", T0 + DAY + 10, 111, visitor="v1", tier=1, source="google"),
            entry_item("ch_8", T0 + 2 * DAY + 60, 222, visitor="v4", tier=2, source="newsletter"),
            entry_item("ch_10", T0 + 2 * DAY + 43_200, 444, visitor="v4", tier=2, source="newsletter"),  # at `to`
        ],
    )

    # When the window runs from ch_3 (Nov 1, 00:03:20: the index) to Nov 3 12:00 (the index), Nov 2 whole
    body = report(lambda_context, **{"from": iso(T0 + 200), "to": iso(T0 + 2 * DAY + 43_200)})

    # Then ch_3 .. ch_6 of Nov 1, ch_7 of Nov 2 and ch_8 of Nov 3 count; v1 and v2 are google's
    assert body == {
        "totals": {"eur": 900, "jpy": 5000, "usd": 111 + 222 + 700},
        "by_source": [
            {"source": "(none)", "revenue": {"jpy": 5000}, "payments": 1, "visitors": 1},
            {"source": "google", "revenue": {"usd": 111}, "payments": 2, "visitors": 2},
            {"source": "newsletter", "revenue": {"eur": 900, "usd": 222}, "payments": 2, "visitors": 1},
        ],
        "unattributed": {"revenue": {"usd": 700}, "payments": 1},
        "by_tier": {"1": {"eur": 900, "usd": 111}, "2": {"jpy": 5000, "usd": 222}, "3": {}},
    }


def test_the_source_is_the_one_the_entry_records(aws: AwsEnv, lambda_context: Any) -> None:
    """Booking keeps an entry's `source` equal to its owner's acquisition.source; the report trusts it
    (here the two disagree on purpose, which booking never leaves: the entry wins, on every path)."""
    write(aws, [profile_item("v1", "google"), entry_item("ch_1", T0 + 10, 500, visitor="v1", tier=1, source="bing")])

    for query in ({}, {"from": iso(T0 + 1)}):
        assert report(lambda_context, **query)["by_source"] == [
            {"source": "bing", "revenue": {"usd": 500}, "payments": 1, "visitors": 1}
        ]
