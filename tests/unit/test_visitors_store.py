"""Visitors in DynamoDB (shared.visitors.store) on moto, with the table from template.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pynamodb.exceptions import PynamoDBException

from shared import tables
from shared.errors import ServiceUnavailable, StaleUpdate
from shared.revenue import keys
from shared.visitors.models import (
    EmailHead,
    EmailMember,
    PutHead,
    PutMember,
    TimelineEvent,
    Visitor,
    VisitorBody,
    VisitorChanges,
    VisitorWrite,
)
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import raw as stored
from tests.conftest import AwsEnv

P = "proj-1"
T0 = datetime(2026, 11, 27, 14, 0, 0, 123456, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(aws: AwsEnv) -> DynamoVisitorStore:
    return DynamoVisitorStore.default()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: DynamoVisitorStore, clock: Clock) -> VisitorService:
    return VisitorService(store, clock)


def body(**fields: object) -> VisitorChanges:
    return VisitorBody.model_validate(fields).to_changes()


def raw(aws: AwsEnv, key: dict[str, Any]) -> dict[str, Any] | None:
    item = boto3.client("dynamodb").get_item(TableName=aws.revenue_table, Key=key, ConsistentRead=True).get("Item")
    return stored.from_item(item) if item else None


def email_partition(aws: AwsEnv, email_key: str) -> dict[str, dict[str, Any]]:
    """Every item of an email's index partition, by sort key."""
    response = boto3.client("dynamodb").query(
        TableName=aws.revenue_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.email_pk(P, email_key)}},
        ConsistentRead=True,
    )
    return {item["sk"]: item for item in map(stored.from_item, response["Items"])}


def book_revenue(aws: AwsEnv, visitor_id: str) -> None:
    """What the booking code keeps on a profile: totals, customers and the plan (its own UpdateItem)."""
    boto3.client("dynamodb").update_item(
        TableName=aws.revenue_table,
        Key=keys.visitor(P, visitor_id),
        UpdateExpression="ADD revenue.usd :usd, revenue.eur :eur "
        "SET linked.cus_1 = :t, linked.cus_2 = :t, #plan = :plan",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#plan": "plan"},
        ExpressionAttributeValues={
            ":usd": {"N": "12300"},
            ":eur": {"N": "500"},
            ":t": {"BOOL": True},
            ":plan": {"M": {"name": {"S": "Pro"}, "amount": {"N": "900"}, "status": {"S": "active"}}},
        },
    )


BOOKED = {
    "revenue": {"usd": 12300, "eur": 500},
    "linked": {"cus_1": True, "cus_2": True},
    "plan": {"name": "Pro", "amount": 900, "status": "active"},
}


# ---- profiles -----------------------------------------------------------------------------------


def test_a_put_never_touches_what_booking_keeps_on_the_profile(
    aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore
) -> None:
    # Given a visitor the booking code has credited
    service.save(P, "v1", body(name="Ann", email="ann@x.com"))
    book_revenue(aws, "v1")
    # When every field is replaced, then removed
    service.save(
        P,
        "v1",
        body(user_id="u1", email="bob@x.com", name="Bob", acquisition={"source": "g"}, first_seen_at="2026-11-01"),
    )
    service.save(P, "v1", body(user_id=None, email=None, name=None, acquisition=None, first_seen_at=None))
    # Then the totals, customers and plan are as booking left them
    item = raw(aws, keys.visitor(P, "v1"))
    assert item is not None
    assert {k: item[k] for k in BOOKED} == BOOKED
    assert not {"user_id", "email", "email_key", "email_set_at", "name", "acquisition", "first_seen_at"} & set(item)
    # And the store reads them back as the visitor's revenue, customers and plan
    v = store.get(P, "v1")
    assert v is not None
    assert (v.lifetime_revenue, v.stripe_customer_ids) == ({"usd": 12300, "eur": 500}, ("cus_1", "cus_2"))
    assert v.plan == BOOKED["plan"]


def test_booking_between_a_puts_read_and_write_is_kept(
    aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore, clock: Clock
) -> None:
    # Given a visitor, and a PUT decided from a read taken before booking credits it
    service.save(P, "v1", body())
    current = store.get(P, "v1", consistent=True)
    assert current is not None
    book_revenue(aws, "v1")
    write = VisitorWrite(
        visitor=Visitor(P, "v1", name="Ann", created_at=current.created_at, updated_at="x", version=2),
        fields=frozenset({"name"}),
        expected_version=current.version,
    )
    # When the PUT is written
    store.save(write)
    # Then booking's attributes are still there (booking does not move the version)
    item = raw(aws, keys.visitor(P, "v1"))
    assert item is not None
    assert item["name"] == "Ann"
    assert {k: item[k] for k in BOOKED} == BOOKED


def test_the_profile_item_has_the_documented_attributes(aws: AwsEnv, service: VisitorService) -> None:
    service.save(
        P,
        "v1",
        body(
            user_id="u1",
            email=" Ann@X.com ",
            name="Ann",
            acquisition={"source": "google", "medium": "cpc"},
            first_seen_at="2026-11-01T10:00:00Z",
        ),
    )
    assert raw(aws, keys.visitor(P, "v1")) == {
        "pk": "P#proj-1#V#v1",
        "sk": "PROFILE",
        "project_id": P,
        "visitor_id": "v1",
        "user_id": "u1",
        "email": "Ann@X.com",
        "email_key": "ann@x.com",
        "email_set_at": "2026-11-27T14:00:00.123456Z",
        "name": "Ann",
        "acquisition": {"source": "google", "medium": "cpc"},
        "first_seen_at": "2026-11-01T10:00:00Z",
        "created_at": "2026-11-27T14:00:00.123456Z",
        "updated_at": "2026-11-27T14:00:00.123456Z",
        "version": 1,
        # the re-attribution this PUT started: shared.revenue.reattribution removes it once it ran
        "pending": {"token": 1, "created": True, "emails": ["ann@x.com"]},
        "kind": "profile",  # the pynamodb model it is read as
        "revenue": {},  # kept by booking: lifetime revenue per currency, linked customers, subscriptions
        "linked": {},
        "subscriptions": {},
    }


def test_a_stale_profile_version_writes_nothing(
    aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore
) -> None:
    # Given a visitor at version 1
    service.save(P, "v1", body(name="Ann"))
    # When a write decided from another version arrives, with index changes
    member = EmailMember("2026-11-27T15:00:00.000000Z", "v1")
    write = VisitorWrite(
        visitor=Visitor(P, "v1", name="Late", created_at="x", updated_at="x", version=1),
        fields=frozenset({"name"}),
        expected_version=None,
        index=(PutMember("a@x.com", member), PutHead("a@x.com", EmailHead("v1", member.set_at, 1), None)),
    )
    # Then it is refused as stale, and none of it is written
    with pytest.raises(StaleUpdate):
        store.save(write)
    item = raw(aws, keys.visitor(P, "v1"))
    assert item is not None
    assert item["name"] == "Ann"
    assert email_partition(aws, "a@x.com") == {}
    # Also without index changes (a single UpdateItem)
    with pytest.raises(StaleUpdate):
        store.save(VisitorWrite(write.visitor, write.fields, expected_version=7))


def test_a_stale_head_cancels_the_whole_write(aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore) -> None:
    # Given an email headed by v1 (head version 1)
    service.save(P, "v1", body(email="a@x.com"))
    service.save(P, "v2", body())
    # When v2 writes its email decided from a head it believed absent
    member = EmailMember("2026-11-27T15:00:00.000000Z", "v2")
    write = VisitorWrite(
        visitor=Visitor(P, "v2", email="a@x.com", email_key="a@x.com", email_set_at=member.set_at, version=2),
        fields=frozenset({"email"}),
        expected_version=1,
        index=(PutMember("a@x.com", member), PutHead("a@x.com", EmailHead("v2", member.set_at, 1), None)),
    )
    # Then nothing is written: not the profile, not the member
    with pytest.raises(StaleUpdate):
        store.save(write)
    v2 = store.get(P, "v2")
    assert v2 is not None
    assert v2.email is None
    assert set(email_partition(aws, "a@x.com")) == {"HEAD", "M#2026-11-27T14:00:00.123456Z#v1"}


def test_get_and_exists_of_an_unknown_visitor(store: DynamoVisitorStore) -> None:
    assert store.get(P, "nobody") is None
    assert not store.exists(P, "nobody")


# ---- the email index ----------------------------------------------------------------------------


def test_the_first_visitor_stays_head_when_a_second_identifies_in_another_case(
    aws: AwsEnv, service: VisitorService, clock: Clock
) -> None:
    # Given v1 identified with an email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    # When v2 identifies later with the same email in another case
    service.save(P, "v2", body(email=" ANN@Example.com"))
    # Then v1 is still the head, and both are members, in the order they identified
    partition = email_partition(aws, "ann@example.com")
    assert partition["HEAD"] == {
        "pk": "P#proj-1#EM#ann@example.com",
        "sk": "HEAD",
        "visitor_id": "v1",
        "set_at": "2026-11-27T14:00:00.123456Z",
        "version": 2,
        "kind": "email_head",
        "project_id": P,
    }
    members = [item for sk, item in sorted(partition.items()) if sk.startswith("M#")]
    assert [(m["visitor_id"], m["set_at"]) for m in members] == [
        ("v1", "2026-11-27T14:00:00.123456Z"),
        ("v2", "2026-11-27T14:00:01.123456Z"),
    ]


def test_the_head_is_recomputed_when_the_first_changes_email(
    aws: AwsEnv, service: VisitorService, clock: Clock
) -> None:
    # Given v1, v2, v3 identified with one email in turn
    for visitor_id in ("v1", "v2", "v3"):
        service.save(P, visitor_id, body(email="ann@example.com"))
        clock.tick()
    # When v1 changes its email
    service.save(P, "v1", body(email="ann@other.com"))
    # Then v2 heads the old email, v1 is no member of it, and v1 heads the new email
    old = email_partition(aws, "ann@example.com")
    assert (old["HEAD"]["visitor_id"], old["HEAD"]["set_at"]) == ("v2", "2026-11-27T14:00:01.123456Z")
    assert sorted(item["visitor_id"] for sk, item in old.items() if sk.startswith("M#")) == ["v2", "v3"]
    assert email_partition(aws, "ann@other.com")["HEAD"]["visitor_id"] == "v1"


def test_the_head_is_deleted_when_the_last_member_leaves(aws: AwsEnv, service: VisitorService, clock: Clock) -> None:
    # Given two visitors with one email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    service.save(P, "v2", body(email="ann@example.com"))
    # When both remove it
    service.save(P, "v1", body(email=None))
    service.save(P, "v2", body(email=None))
    # Then the email's partition is empty
    assert email_partition(aws, "ann@example.com") == {}


def test_the_same_email_again_keeps_email_set_at(aws: AwsEnv, service: VisitorService, clock: Clock) -> None:
    # Given v1 identified with an email
    service.save(P, "v1", body(email="ann@example.com"))
    before = email_partition(aws, "ann@example.com")
    clock.tick(86_400)
    # When the same email comes again (another case, other fields)
    service.save(P, "v1", body(email="Ann@Example.com ", name="Ann"))
    # Then email_set_at is unchanged, and so is the index
    item = raw(aws, keys.visitor(P, "v1"))
    assert item is not None
    assert (item["email"], item["email_set_at"]) == ("Ann@Example.com", "2026-11-27T14:00:00.123456Z")
    assert item["updated_at"] == "2026-11-28T14:00:00.123456Z"
    assert email_partition(aws, "ann@example.com") == before


def test_racing_puts_for_one_email_leave_the_first_as_head(
    aws: AwsEnv, store: DynamoVisitorStore, clock: Clock
) -> None:
    # Given v1's PUT reading the index just before v2's PUT commits the same email
    inner = VisitorService(store, clock)

    class RacingStore(DynamoVisitorStore):
        raced = False

        def save(self, write: VisitorWrite) -> None:
            if not self.raced:
                self.raced = True
                inner.save(P, "v2", body(email="ann@example.com"))
                clock.tick()
            super().save(write)

    racing = RacingStore()
    # When v1's PUT writes
    VisitorService(racing, clock).save(P, "v1", body(email="ANN@example.com"))
    # Then its first attempt was refused, its retry saw v2: v2 heads, both are members
    partition = email_partition(aws, "ann@example.com")
    assert partition["HEAD"]["visitor_id"] == "v2"
    assert sorted(item["visitor_id"] for sk, item in partition.items() if sk.startswith("M#")) == ["v1", "v2"]


def test_first_members_are_in_identification_order(
    service: VisitorService, store: DynamoVisitorStore, clock: Clock
) -> None:
    for visitor_id in ("v3", "v1", "v2"):
        service.save(P, visitor_id, body(email="ann@example.com"))
        clock.tick()
    assert [m.visitor_id for m in store.first_members(P, "ann@example.com", 2)] == ["v3", "v1"]
    assert store.email_head(P, "ann@example.com") == EmailHead("v3", "2026-11-27T14:00:00.123456Z", 3)
    assert store.email_head(P, "nobody@example.com") is None


# ---- timelines ----------------------------------------------------------------------------------


def put_event(aws: AwsEnv, visitor_id: str, epoch: int, event_key: str, **attributes: Any) -> None:
    """A timeline item as the booking code writes it."""
    values = {
        "event_id": event_key,
        "type": "Charge Succeeded",
        "occurred_at": datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z"),
        "amount": 2500,
        "currency": "usd",
        "revenue": 2500,
        "stripe_object_id": event_key,
        "attribution_tier": 1,
        "kind": "timeline",
        "visitor_id": visitor_id,
        **attributes,
    }
    item = {**keys.timeline_event(P, visitor_id, epoch, event_key), **stored.to_item(values)}
    boto3.client("dynamodb").put_item(TableName=aws.revenue_table, Item=item)


def test_timeline_pages_newest_first(aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore) -> None:
    # Given a visitor with five events (two in the same second) and another visitor's event
    service.save(P, "v1", body())
    for i, epoch in enumerate([1_795_000_000, 1_795_000_100, 1_795_000_100, 1_795_000_200, 1_795_000_300]):
        put_event(aws, "v1", epoch, f"ch_{i}")
    put_event(aws, "v2", 1_795_000_400, "ch_other")
    # When it is read two at a time
    pages = []
    after = None
    while True:
        page = store.timeline(P, "v1", 2, after)
        pages.append([e.id for e in page.events])
        if page.last_sk is None:
            break
        after = page.last_sk
    # Then all its events come newest first, the last page without a cursor, the profile never
    assert pages == [["ch_4", "ch_3"], ["ch_2", "ch_1"], ["ch_0"]]


def test_a_full_last_page_has_no_cursor(aws: AwsEnv, service: VisitorService, store: DynamoVisitorStore) -> None:
    service.save(P, "v1", body())
    for i in range(4):
        put_event(aws, "v1", 1_795_000_000 + i, f"ch_{i}")
    first = store.timeline(P, "v1", 2, None)
    assert first.last_sk is not None
    second = store.timeline(P, "v1", 2, first.last_sk)
    assert ([e.id for e in second.events], second.last_sk) == (["ch_1", "ch_0"], None)


def test_timeline_events_as_booking_writes_them(aws: AwsEnv, store: DynamoVisitorStore) -> None:
    # Given a refund and a context event without amount, currency or tier
    put_event(aws, "v1", 1_795_000_000, "ch_1:refund:1", type="Charge Refunded", revenue=-500, amount=500)
    put_event(
        aws,
        "v1",
        1_795_000_100,
        "sub_1:evt_1",
        type="Subscription Canceled",
        amount=None,
        currency=None,
        revenue=0,
        stripe_object_id="sub_1",
        attribution_tier=None,
    )
    # When the timeline is read, Then the events carry what was written, nulls for what was not
    events = store.timeline(P, "v1", 50, None).events
    assert events == (
        TimelineEvent("sub_1:evt_1", "Subscription Canceled", "2026-11-18T11:08:20Z", None, None, 0, "sub_1", None),
        TimelineEvent("ch_1:refund:1", "Charge Refunded", "2026-11-18T11:06:40Z", 500, "usd", -500, "ch_1:refund:1", 1),
    )


# ---- DynamoDB failures --------------------------------------------------------------------------


def stubbed(aws: AwsEnv, prepare: Callable[[Stubber], Any]) -> Iterator[DynamoVisitorStore]:
    """The store with its DynamoDB client (pynamodb's) answering as `prepare` scripts it."""
    (client,) = {id(c): c for c in tables.clients()[:1]}.values()
    with Stubber(client) as stubber:
        prepare(stubber)
        yield DynamoVisitorStore.default()


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttling_is_service_unavailable(aws: AwsEnv, code: str) -> None:
    for store in stubbed(aws, lambda s: s.add_client_error("get_item", service_error_code=code, http_status_code=400)):
        with pytest.raises(ServiceUnavailable):
            store.get(P, "v1")


def test_a_transaction_cancelled_by_throttling_is_service_unavailable(aws: AwsEnv) -> None:
    reasons = [{"Code": "None"}, {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity"}]
    member = EmailMember("2026-11-27T15:00:00.000000Z", "v1")
    write = VisitorWrite(Visitor(P, "v1", created_at="x", version=1), frozenset(), None, (PutMember("a@x", member),))
    for store in stubbed(
        aws,
        lambda s: s.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            modeled_fields={"CancellationReasons": reasons},
        ),
    ):
        with pytest.raises(ServiceUnavailable):
            store.save(write)


@pytest.mark.parametrize("reason", ["ConditionalCheckFailed", "TransactionConflict"])
def test_a_transaction_cancelled_by_a_race_is_stale(aws: AwsEnv, reason: str) -> None:
    member = EmailMember("2026-11-27T15:00:00.000000Z", "v1")
    write = VisitorWrite(Visitor(P, "v1", created_at="x", version=1), frozenset(), None, (PutMember("a@x", member),))
    for store in stubbed(
        aws,
        lambda s: s.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            modeled_fields={"CancellationReasons": [{"Code": "None"}, {"Code": reason}]},
        ),
    ):
        with pytest.raises(StaleUpdate):
            store.save(write)


def test_other_errors_are_not_hidden(aws: AwsEnv) -> None:
    from botocore.exceptions import ClientError

    for store in stubbed(aws, lambda s: s.add_client_error("get_item", service_error_code="ValidationException")):
        with pytest.raises(PynamoDBException) as raised:
            store.get(P, "v1")
        assert isinstance(raised.value.cause, ClientError)
