"""The visitor request model, cursors and views (shared.visitors.models): pure, no AWS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.errors import InvalidRequest
from shared.identity import email_key
from shared.visitors.models import (
    UNSET,
    Acquisition,
    TimelineEvent,
    TimelinePage,
    TimelineView,
    Visitor,
    VisitorBody,
    VisitorView,
    decode_cursor,
    encode_cursor,
    iso_utc,
    normalise_email,
    parse_timeline_query,
    utc_stamp,
)

SK = "T#001795000000#ch_1:refund:2"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann@Example.COM\t", "Ann@Example.COM"),
        ("a@b", "a@b"),
        ("x" * 240 + "@example.com", "x" * 240 + "@example.com"),  # 252 characters
    ],
)
def test_emails_that_look_like_addresses_are_kept_trimmed(raw: str, stored: str) -> None:
    assert normalise_email(raw) == stored


@pytest.mark.parametrize(
    "raw", ["", "   ", "ann", "@example.com", "ann@", "ann@@example.com", "a@b@c", "x" * 250 + "@example.com"]
)
def test_emails_that_do_not_look_like_addresses_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="email address"):
        normalise_email(raw)


def test_emails_match_trimmed_and_lower_case() -> None:
    assert email_key(" Ann@Example.COM ") == email_key("ann@example.com") == "ann@example.com"


def test_times_are_stamped_in_utc_with_microseconds() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 11, 27, 15, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert utc_stamp(moment) == "2026-11-27T14:00:00.000005Z"


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("2026-11-27T14:00:00Z", "2026-11-27T14:00:00Z"),
        ("2026-11-27T15:00:00+01:00", "2026-11-27T14:00:00Z"),
        ("2026-11-27T14:00:00.250Z", "2026-11-27T14:00:00.250000Z"),
        ("2026-11-27T14:00:00", "2026-11-27T14:00:00Z"),
        ("2026-11-27", "2026-11-27T00:00:00Z"),
    ],
)
def test_first_seen_at_is_iso_8601_normalised_to_utc(raw: str, utc: str) -> None:
    assert iso_utc(raw) == utc
    assert VisitorBody.model_validate({"first_seen_at": raw}).first_seen_at == utc


@pytest.mark.parametrize("raw", ["yesterday", "27/11/2026", "", "2026-13-01T00:00:00Z"])
def test_first_seen_at_must_be_iso_8601(raw: str) -> None:
    with pytest.raises(ValidationError, match="ISO 8601"):
        VisitorBody.model_validate({"first_seen_at": raw})


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": 42},
        {"user_id": ["u1"]},
        {"acquisition": "google"},
        {"acquisition": {"source": 1}},
        {"name": "x" * 1025},
    ],
)
def test_bad_fields_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VisitorBody.model_validate(body)


def test_only_given_fields_become_changes_and_unknown_fields_are_ignored() -> None:
    # Given a body with some fields, one null, and one this API does not know
    model = VisitorBody.model_validate_json(
        '{"email": " Ann@X.com ", "name": null, "acquisition": {"source": "google", "utm_x": "?"}, "color": "red"}'
    )
    # When it becomes domain changes
    changes = model.to_changes()
    # Then only the given ones are set (null included), normalised
    assert changes.given() == {"email", "name", "acquisition"}
    assert changes.email == "Ann@X.com"
    assert changes.name is None
    assert changes.acquisition == Acquisition(source="google")
    assert changes.user_id is UNSET
    assert changes.first_seen_at is UNSET


def test_cursors_round_trip_and_are_url_safe() -> None:
    cursor = encode_cursor(SK + "?/+")
    assert decode_cursor(cursor) == SK + "?/+"
    assert all(c.isalnum() or c in "-_" for c in cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        "abc",  # not a whole number of bytes
        encode_cursor("PROFILE"),  # base64, but not a timeline key
        encode_cursor("T#123#x"),
        "x" * 3000,
    ],
)
def test_cursors_not_made_by_the_api_are_invalid(cursor: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_cursor(cursor)


@pytest.mark.parametrize(("limit", "expected"), [(None, 50), ("", 50), ("1", 1), ("100", 100), ("007", 7)])
def test_timeline_limits(limit: str | None, expected: int) -> None:
    assert parse_timeline_query(limit, None).limit == expected


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", " 5", "1000"])
def test_timeline_limits_out_of_range_are_invalid(limit: str) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        parse_timeline_query(limit, None)


def test_timeline_query_decodes_its_cursor() -> None:
    assert parse_timeline_query("10", encode_cursor(SK)).after_sk == SK
    assert parse_timeline_query("10", "").after_sk is None


def test_the_visitor_view_is_the_contract() -> None:
    visitor = Visitor(
        "p1",
        "v1",
        email="ann@x.com",
        email_key="ann@x.com",
        acquisition=Acquisition(source="google"),
        lifetime_revenue={"usd": 12300},
        plan={"name": "Pro", "status": "active", "amount": 900, "subscription_state_at": 1},
        stripe_customer_ids=("cus_2", "cus_1"),
    )
    assert VisitorView.of(visitor).model_dump() == {
        "visitor_id": "v1",
        "user_id": None,
        "email": "ann@x.com",
        "name": None,
        "acquisition": {"source": "google", "medium": None, "campaign": None, "referrer": None, "landing_page": None},
        "first_seen_at": None,
        "lifetime_revenue": {"usd": 12300},
        "plan": {
            "name": "Pro",
            "status": "active",
            "price_id": None,
            "amount": 900,
            "currency": None,
            "interval": None,
            "current_period_end": None,
            "cancel_at_period_end": None,
        },
        "stripe_customer_ids": ["cus_1", "cus_2"],
    }


def test_the_timeline_view_carries_an_opaque_cursor() -> None:
    event = TimelineEvent("ch_1", "Charge Succeeded", "2026-11-27T14:00:00Z", 2500, "usd", 2500, "ch_1", 1)
    view = TimelineView.of(TimelinePage((event,), SK)).model_dump()
    assert view["events"] == [
        {
            "id": "ch_1",
            "type": "Charge Succeeded",
            "occurred_at": "2026-11-27T14:00:00Z",
            "amount": 2500,
            "currency": "usd",
            "revenue": 2500,
            "stripe_object_id": "ch_1",
            "attribution_tier": 1,
        }
    ]
    assert decode_cursor(view["next_cursor"]) == SK
    assert TimelineView.of(TimelinePage((), None)).next_cursor is None
