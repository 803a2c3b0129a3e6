"""The visitor API handler (functions.visitor_api.app) end to end on moto: HTTP API v2 events in, JSON out."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.visitor_api.app import lambda_handler
from shared.revenue import keys
from tests import raw
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv

VISITOR = "/projects/{project_id}/visitors/{visitor_id}"
TIMELINE = VISITOR + "/timeline"
P = "proj-1"


def call(
    context: Any,
    method: str,
    *,
    visitor: str = "v1",
    project: str = P,
    body: Any = None,
    projects: list[str] | None = None,
    query: dict[str, str] | None = None,
    route: str = VISITOR,
) -> tuple[int, Any]:
    event = http_event(
        method,
        route,
        {"project_id": project, "visitor_id": visitor},
        body=body,
        projects=[P, "proj-2"] if projects is None else projects,
        query=query,
    )
    response = lambda_handler(event, context)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], response_json(response)


def put(context: Any, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    return call(context, "PUT", body=body, **kwargs)


def get(context: Any, **kwargs: Any) -> tuple[int, Any]:
    return call(context, "GET", **kwargs)


def timeline(context: Any, **query: str) -> tuple[int, Any]:
    return call(context, "GET", route=TIMELINE, query=query or None)


def error_code(result: tuple[int, Any]) -> tuple[int, str]:
    status, payload = result
    return status, payload["error"]["code"]


def unauthenticated(method: str, route: str) -> dict[str, Any]:
    """An event without authorizer claims (no token got through)."""
    return http_event(method, route, {"project_id": P, "visitor_id": "v1"}, body={"name": "x"}, projects=None)


def put_event(aws: AwsEnv, visitor_id: str, epoch: int, event_key: str, revenue: int = 2500) -> None:
    """A timeline item written with the layout the booking code uses."""
    values = {
        "event_id": event_key,
        "type": "Charge Succeeded" if revenue else "Invoice Paid",
        "occurred_at": f"epoch:{epoch}",  # opaque to the reader: passed through as written
        "amount": 2500,
        "currency": "usd",
        "revenue": revenue,
        "stripe_object_id": event_key,
        "attribution_tier": 2,
        "kind": "timeline",
        "visitor_id": visitor_id,
    }
    item = {**keys.timeline_event(P, visitor_id, epoch, event_key), **raw.to_item(values)}
    boto3.client("dynamodb").put_item(TableName=aws.revenue_table, Item=item)


# ---- 401 / 400 / 403 / 404, in that order -------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), [("PUT", VISITOR), ("GET", VISITOR), ("GET", TIMELINE)])
def test_no_token_is_401(aws: AwsEnv, lambda_context: Any, method: str, route: str) -> None:
    response = lambda_handler(unauthenticated(method, route), lambda_context)
    assert (response["statusCode"], response_json(response)["error"]["code"]) == (401, "unauthorized")


def test_a_token_without_projects_is_401(aws: AwsEnv, lambda_context: Any) -> None:
    event = http_event("GET", VISITOR, {"project_id": P, "visitor_id": "v1"}, projects=[])
    del event["requestContext"]["authorizer"]["jwt"]["claims"]["projects"]
    response = lambda_handler(event, lambda_context)
    assert response["statusCode"] == 401


@pytest.mark.parametrize(
    ("project", "visitor"),
    [("proj-1", "v 1"), ("proj-1", "v%2F1"), ("proj-1", "x" * 129), ("proj%231", "v1"), ("proj-1", "é")],
)
def test_bad_ids_are_400(aws: AwsEnv, lambda_context: Any, project: str, visitor: str) -> None:
    for method in ("PUT", "GET"):
        result = call(lambda_context, method, project=project, visitor=visitor, body={}, projects=[project])
        assert error_code(result) == (400, "invalid_request")
    result = call(lambda_context, "GET", route=TIMELINE, project=project, visitor=visitor, projects=[project])
    assert error_code(result) == (400, "invalid_request")


def test_ids_of_every_allowed_character_are_accepted(aws: AwsEnv, lambda_context: Any) -> None:
    visitor = "Az09._:-" + "x" * 120  # 128 characters
    status, payload = put(lambda_context, {}, visitor=visitor)
    assert (status, payload["visitor_id"]) == (200, visitor)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": "a@b@c.com"},
        {"email": "@example.com"},
        {"email": "x" * 250 + "@example.com"},
        {"first_seen_at": "last tuesday"},
        {"acquisition": ["google"]},
        {"user_id": 5},
        "{not json",
        "[]",
        "null",
    ],
)
def test_bad_bodies_are_400(aws: AwsEnv, lambda_context: Any, body: Any) -> None:
    status, payload = put(lambda_context, body)
    assert (status, payload["error"]["code"]) == (400, "invalid_request")
    assert payload["error"]["message"]
    # And nothing was created
    assert get(lambda_context)[0] == 404


def test_the_token_is_checked_before_the_body(aws: AwsEnv, lambda_context: Any) -> None:
    event = http_event("PUT", VISITOR, {"project_id": P, "visitor_id": "v1"}, body="{not json", projects=None)
    assert lambda_handler(event, lambda_context)["statusCode"] == 401


def test_the_body_is_checked_before_the_project(aws: AwsEnv, lambda_context: Any) -> None:
    assert error_code(put(lambda_context, {"email": "nope"}, projects=["proj-2"])) == (400, "invalid_request")
    result = call(lambda_context, "GET", route=TIMELINE, query={"limit": "0"}, projects=["proj-2"])
    assert error_code(result) == (400, "invalid_request")


@pytest.mark.parametrize(("method", "route"), [("PUT", VISITOR), ("GET", VISITOR), ("GET", TIMELINE)])
def test_another_projects_visitor_is_403(aws: AwsEnv, lambda_context: Any, method: str, route: str) -> None:
    # Given a visitor of proj-1
    assert put(lambda_context, {"name": "Ann"})[0] == 200
    # When a token for proj-2 only asks for it, Then 403 (and a PUT changes nothing)
    result = call(lambda_context, method, route=route, body={"name": "Mallory"}, projects=["proj-2"])
    assert error_code(result) == (403, "forbidden")
    assert get(lambda_context)[1]["name"] == "Ann"


def test_projects_claim_as_api_gateway_stringifies_it(aws: AwsEnv, lambda_context: Any) -> None:
    event = http_event("PUT", VISITOR, {"project_id": P, "visitor_id": "v1"}, body={}, projects=["other", P])
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["projects"] == f"[other {P}]"
    assert lambda_handler(event, lambda_context)["statusCode"] == 200


def test_an_unknown_visitor_is_404(aws: AwsEnv, lambda_context: Any) -> None:
    assert error_code(get(lambda_context, visitor="nobody")) == (404, "not_found")
    assert error_code(call(lambda_context, "GET", route=TIMELINE, visitor="nobody")) == (404, "not_found")


def test_the_same_visitor_id_in_another_project_is_404(aws: AwsEnv, lambda_context: Any) -> None:
    assert put(lambda_context, {"name": "Ann"})[0] == 200
    assert error_code(get(lambda_context, project="proj-2")) == (404, "not_found")


# ---- PUT and GET ---------------------------------------------------------------------------------


def test_put_then_get_round_trip(aws: AwsEnv, lambda_context: Any) -> None:
    # Given no visitor
    # When the tracker identifies one with every field (and one the API does not know)
    body = {
        "user_id": "u-42",
        "email": "  Ann@Example.com ",
        "name": "Ann",
        "acquisition": {"source": "google", "medium": "cpc", "campaign": "bf", "referrer": "https://g.co/"},
        "first_seen_at": "2026-11-20T09:30:00+01:00",
        "favourite_colour": "teal",
    }
    status, created = put(lambda_context, body)
    # Then it is created, and GET returns the same Visitor
    expected: dict[str, Any] = {
        "visitor_id": "v1",
        "user_id": "u-42",
        "email": "Ann@Example.com",
        "name": "Ann",
        "acquisition": {
            "source": "google",
            "medium": "cpc",
            "campaign": "bf",
            "referrer": "https://g.co/",
            "landing_page": None,
        },
        "first_seen_at": "2026-11-20T08:30:00Z",
        "lifetime_revenue": {},
        "plan": None,
        "stripe_customer_ids": [],
    }
    assert (status, created) == (200, expected)
    assert get(lambda_context) == (200, expected)


def test_a_put_replaces_given_fields_only(aws: AwsEnv, lambda_context: Any) -> None:
    # Given a visitor with a name, a user id and an acquisition
    put(lambda_context, {"name": "Ann", "user_id": "u1", "acquisition": {"source": "google"}})
    # When a later PUT gives a new name and a null acquisition
    status, visitor = put(lambda_context, {"name": "Ann B", "acquisition": None})
    # Then the user id is kept
    assert status == 200
    assert (visitor["name"], visitor["user_id"], visitor["acquisition"]) == ("Ann B", "u1", None)


def test_a_put_without_a_body_creates_an_empty_visitor(aws: AwsEnv, lambda_context: Any) -> None:
    status, visitor = put(lambda_context, None)
    assert status == 200
    assert (visitor["visitor_id"], visitor["email"], visitor["acquisition"]) == ("v1", None, None)


def test_get_shows_what_booking_keeps_on_the_visitor(aws: AwsEnv, lambda_context: Any) -> None:
    # Given a visitor the booking code credited in two currencies, with a customer and a plan
    put(lambda_context, {"email": "ann@example.com"})
    plan = {
        "name": "Pro",
        "status": "active",
        "price_id": "price_1",
        "amount": 900,
        "currency": "usd",
        "interval": "month",
        "current_period_end": "2026-12-27T14:00:00Z",
        "cancel_at_period_end": False,
    }
    boto3.client("dynamodb").update_item(
        TableName=aws.revenue_table,
        Key=keys.visitor(P, "v1"),
        UpdateExpression="SET revenue.usd = :usd, revenue.jpy = :jpy, revenue.eur = :zero, "
        "linked.cus_B = :linked, linked.cus_A = :linked, #plan = :plan",
        ExpressionAttributeNames={"#plan": "plan"},
        ExpressionAttributeValues={
            ":usd": {"N": "12300"},
            ":jpy": {"N": "500"},
            ":zero": {"N": "0"},
            ":linked": {"BOOL": True},
            ":plan": raw.to_item({"plan": plan})["plan"],
        },
    )
    # When the dashboard reads it, and after the tracker PUTs it again
    for status, visitor in (get(lambda_context), put(lambda_context, {"name": "Ann"})):
        # Then revenue (zero totals left out), customers and plan are shown
        assert status == 200
        assert visitor["lifetime_revenue"] == {"usd": 12300, "jpy": 500}
        assert visitor["stripe_customer_ids"] == ["cus_A", "cus_B"]
        assert visitor["plan"] == plan


# ---- timeline ----------------------------------------------------------------------------------


def test_timeline_pages_newest_first(aws: AwsEnv, lambda_context: Any) -> None:
    # Given a visitor with 5 events, and an event of another visitor
    put(lambda_context, {})
    for i in range(5):
        put_event(aws, "v1", 1_795_000_000 + 60 * i, f"ch_{i}", revenue=0 if i == 2 else 2500)
    put_event(aws, "v2", 1_795_999_999, "ch_other")
    # When the dashboard reads it two at a time
    ids: list[list[str]] = []
    cursor = None
    for _ in range(5):
        status, page = timeline(lambda_context, limit="2", **({"cursor": cursor} if cursor else {}))
        assert status == 200
        ids.append([e["id"] for e in page["events"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then its events come newest first, in pages of two, the last without a cursor
    assert ids == [["ch_4", "ch_3"], ["ch_2", "ch_1"], ["ch_0"]]


def test_timeline_events_are_the_contract(aws: AwsEnv, lambda_context: Any) -> None:
    put(lambda_context, {})
    put_event(aws, "v1", 1_795_000_000, "ch_1")
    assert timeline(lambda_context) == (
        200,
        {
            "events": [
                {
                    "id": "ch_1",
                    "type": "Charge Succeeded",
                    "occurred_at": "epoch:1795000000",
                    "amount": 2500,
                    "currency": "usd",
                    "revenue": 2500,
                    "stripe_object_id": "ch_1",
                    "attribution_tier": 2,
                }
            ],
            "next_cursor": None,
        },
    )


def test_timeline_default_limit_is_50(aws: AwsEnv, lambda_context: Any) -> None:
    put(lambda_context, {})
    for i in range(51):
        put_event(aws, "v1", 1_795_000_000 + i, f"ch_{i:02d}")
    status, page = timeline(lambda_context)
    assert (status, len(page["events"]), page["events"][0]["id"]) == (200, 50, "ch_50")
    status, rest = timeline(lambda_context, cursor=page["next_cursor"], limit="100")
    assert (status, [e["id"] for e in rest["events"]], rest["next_cursor"]) == (200, ["ch_00"], None)


def test_an_empty_timeline(aws: AwsEnv, lambda_context: Any) -> None:
    put(lambda_context, {})
    assert timeline(lambda_context) == (200, {"events": [], "next_cursor": None})


@pytest.mark.parametrize("limit", ["0", "101", "-5", "ten", "2.5"])
def test_timeline_limit_out_of_range_is_400(aws: AwsEnv, lambda_context: Any, limit: str) -> None:
    put(lambda_context, {})
    assert error_code(timeline(lambda_context, limit=limit)) == (400, "invalid_request")


@pytest.mark.parametrize("cursor", ["%%%", "UFJPRklMRQ", "eyJzayI6IDF9"])  # garbage, "PROFILE", a JSON object
def test_timeline_invalid_cursor_is_400(aws: AwsEnv, lambda_context: Any, cursor: str) -> None:
    put(lambda_context, {})
    assert error_code(timeline(lambda_context, cursor=cursor)) == (400, "invalid_request")


def test_a_cursor_cannot_reach_another_visitor(aws: AwsEnv, lambda_context: Any) -> None:
    # Given two visitors with events, and a cursor taken from v2's timeline
    put(lambda_context, {})
    put(lambda_context, {}, visitor="v2")
    for i in range(3):
        put_event(aws, "v1", 1_795_000_000 + i, f"v1_{i}")
        put_event(aws, "v2", 1_795_000_000 + i, f"v2_{i}")
    status, page = call(lambda_context, "GET", route=TIMELINE, visitor="v2", query={"limit": "1"})
    assert status == 200
    # When it is used on v1's timeline, Then it only positions within v1's own events
    status, page = timeline(lambda_context, cursor=page["next_cursor"])
    assert (status, [e["id"] for e in page["events"]]) == (200, ["v1_2", "v1_1", "v1_0"])


def test_the_response_is_json_without_secrets_or_internals(aws: AwsEnv, lambda_context: Any) -> None:
    status, visitor = put(lambda_context, {"email": "ann@example.com"})
    assert status == 200
    assert not {"email_key", "email_set_at", "version", "pk", "sk", "created_at"} & set(visitor)
    json.dumps(visitor)
