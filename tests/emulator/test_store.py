"""Unit tests of store.Collection.page: the ordering, cursors, ranges and filters behind every list endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from local.stripe_emulator.store import Collection, field_getter
from local.stripe_emulator.wire import StripeError


def obj(object_id: str, created: int, **fields: Any) -> dict[str, Any]:
    return {"id": object_id, "created": created, **fields}


def ids(collection: Collection, **kwargs: Any) -> list[str]:
    kwargs.setdefault("limit", 100)
    return [o["id"] for o in collection.page(**kwargs).data]


def collection_of(*objects: dict[str, Any], **indexed: Any) -> Collection:
    collection = Collection({name: field_getter(name) for name in indexed.get("index", ())})
    for o in objects:
        collection.save(o)
    return collection


@pytest.fixture
def ten() -> Collection:
    """o0 .. o9 created at 100, 110, .. 190, saved out of order."""
    objects = [obj(f"o{i}", 100 + 10 * i) for i in range(10)]
    return collection_of(*objects[5:], *objects[:5])


def test_newest_first(ten: Collection) -> None:
    # Given objects saved out of order, When a page is read, Then it is ordered by `created`, newest first
    assert ids(ten) == [f"o{i}" for i in range(9, -1, -1)]


def test_equal_created_are_ordered_by_insertion() -> None:
    # Given three objects created in the same second, saved a, b, c
    collection = collection_of(obj("a", 5), obj("b", 5), obj("c", 5), obj("older", 4), obj("newer", 6))

    # When listed, Then within the second the later insertion counts as newer, and the order is stable
    assert ids(collection) == ["newer", "c", "b", "a", "older"]
    assert ids(collection, limit=2, starting_after="c") == ["b", "a"]
    assert ids(collection, limit=2, ending_before="a") == ["c", "b"]


def test_saving_again_keeps_the_position() -> None:
    # Given a, b in one second, When a is updated and saved again, Then it does not move ahead of b
    collection = collection_of(obj("a", 5), obj("b", 5))
    collection.save(obj("a", 5, status="updated"))
    assert ids(collection) == ["b", "a"]
    assert collection.get("a") == obj("a", 5, status="updated")


def test_limit_and_has_more(ten: Collection) -> None:
    # Given ten objects, When read 4, 10 and 11 at a time, Then has_more is true only while some are left
    assert (len(ten.page(limit=4).data), ten.page(limit=4).has_more) == (4, True)
    assert ten.page(limit=10).has_more is False
    assert ten.page(limit=11).has_more is False
    assert len(ten.page(limit=11).data) == 10


def test_starting_after_walks_forward(ten: Collection) -> None:
    # Given ten objects, When pages of 4 follow `starting_after` the last id
    pages = []
    cursor = None
    while True:
        page = ten.page(limit=4, starting_after=cursor)
        pages.append([o["id"] for o in page.data])
        if not page.has_more:
            break
        cursor = page.data[-1]["id"]

    # Then each object is read once, in order, and only the last page says no more
    assert pages == [["o9", "o8", "o7", "o6"], ["o5", "o4", "o3", "o2"], ["o1", "o0"]]


def test_ending_before_walks_backward(ten: Collection) -> None:
    # Given ten objects, When a page of 3 ends before o2
    page = ten.page(limit=3, ending_before="o2")

    # Then it holds the three just newer than o2, still newest first, with more beyond
    assert [o["id"] for o in page.data] == ["o5", "o4", "o3"]
    assert page.has_more is True

    # And the page before the first object reaches the newest without more
    last = ten.page(limit=3, ending_before="o6")
    assert [o["id"] for o in last.data] == ["o9", "o8", "o7"]
    assert last.has_more is False
    assert ten.page(limit=3, ending_before="o9").data == []


def test_starting_after_the_oldest_is_empty(ten: Collection) -> None:
    # Given ten objects, When a page starts after the oldest, Then it is empty without more
    page = ten.page(limit=3, starting_after="o0")
    assert (page.data, page.has_more) == ([], False)


@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
def test_unknown_cursor_is_a_400(ten: Collection, param: str) -> None:
    # Given an id that is not in the collection, When used as a cursor, Then Stripe's 400 names the param
    with pytest.raises(StripeError) as caught:
        ten.page(limit=3, **{param: "nope"})
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "resource_missing", param)


def test_deleted_object_leaves_the_list_and_cannot_be_a_cursor(ten: Collection) -> None:
    # Given ten objects, When o5 is deleted
    ten.delete("o5")

    # Then lists skip it, and it no longer serves as a cursor
    assert "o5" not in ids(ten)
    assert len(ten) == 9
    with pytest.raises(StripeError):
        ten.page(limit=1, starting_after="o5")


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ({"gt": 150}, ["o9", "o8", "o7", "o6"]),
        ({"gte": 150}, ["o9", "o8", "o7", "o6", "o5"]),
        ({"lt": 120}, ["o1", "o0"]),
        ({"lte": 120}, ["o2", "o1", "o0"]),
        ({"gte": 120, "lt": 150}, ["o4", "o3", "o2"]),
        ({"gt": 120, "lte": 150}, ["o5", "o4", "o3"]),
        ({"gte": 155, "lte": 155}, []),
        ({"gt": 190}, []),
    ],
)
def test_created_ranges(ten: Collection, created: dict[str, int], expected: list[str]) -> None:
    # Given objects every 10 s, When filtered by a `created` range, Then the bounds' strictness is respected
    assert ids(ten, created=created) == expected


def test_created_range_with_cursors(ten: Collection) -> None:
    # Given a range 120..170, When paged with cursors inside it, Then pages stay inside the range
    window = {"gte": 120, "lte": 170}
    assert ids(ten, created=window, limit=2) == ["o7", "o6"]
    assert ids(ten, created=window, limit=2, starting_after="o6") == ["o5", "o4"]
    assert ids(ten, created=window, limit=10, starting_after="o4") == ["o3", "o2"]
    assert ids(ten, created=window, limit=10, ending_before="o5") == ["o7", "o6"]
    # A cursor outside the range still bounds it
    assert ids(ten, created=window, limit=2, starting_after="o9") == ["o7", "o6"]
    assert ids(ten, created=window, limit=10, ending_before="o0") == ["o7", "o6", "o5", "o4", "o3", "o2"]


def test_index_filter() -> None:
    # Given charges of two customers, interleaved
    collection = collection_of(
        *(obj(f"ch{i}", i, customer="cus_a" if i % 2 else "cus_b") for i in range(6)), index=("customer",)
    )

    # When filtered by customer, Then only that customer's, newest first, with cursors and has_more
    assert ids(collection, where={"customer": "cus_a"}) == ["ch5", "ch3", "ch1"]
    page = collection.page(limit=1, where={"customer": "cus_b"}, starting_after="ch4")
    assert ([o["id"] for o in page.data], page.has_more) == (["ch2"], True)
    assert ids(collection, where={"customer": "cus_b"}, ending_before="ch0", limit=1) == ["ch2"]
    assert ids(collection, where={"customer": "cus_nobody"}) == []


def test_objects_without_the_indexed_value_are_not_indexed() -> None:
    # Given a charge without customer, When filtered on customer None is not a value, Then it matches nothing
    collection = collection_of(obj("guest", 1, customer=None), obj("known", 2, customer="cus_a"), index=("customer",))
    assert ids(collection, where={"customer": "cus_a"}) == ["known"]
    assert ids(collection) == ["known", "guest"]


def test_update_reindexes() -> None:
    # Given a customer with an email
    collection = collection_of(obj("cus_1", 1, email="old@example.com"), index=("email",))

    # When the email changes and the object is saved again
    collection.save(obj("cus_1", 1, email="new@example.com"))

    # Then it is found by the new email only
    assert ids(collection, where={"email": "new@example.com"}) == ["cus_1"]
    assert ids(collection, where={"email": "old@example.com"}) == []

    # And when the email is removed, by neither; when deleted, it leaves every index
    collection.save(obj("cus_1", 1, email=None))
    assert ids(collection, where={"email": "new@example.com"}) == []
    collection.save(obj("cus_1", 1, email="again@example.com"))
    collection.delete("cus_1")
    assert ids(collection, where={"email": "again@example.com"}) == []


def test_status_change_moves_between_index_values() -> None:
    # Given two open sessions, When one completes (mutated in place and saved), Then each status lists the right one
    first, second = obj("cs_1", 1, status="open"), obj("cs_2", 2, status="open")
    collection = collection_of(first, second, index=("status",))
    first["status"] = "complete"
    collection.save(first)
    assert ids(collection, where={"status": "open"}) == ["cs_2"]
    assert ids(collection, where={"status": "complete"}) == ["cs_1"]


def test_several_filters_and_a_predicate() -> None:
    # Given invoices of two customers in two statuses
    collection = collection_of(
        obj("in1", 1, customer="a", status="paid", total=5),
        obj("in2", 2, customer="a", status="open", total=5),
        obj("in3", 3, customer="b", status="paid", total=5),
        obj("in4", 4, customer="a", status="paid", total=0),
        index=("customer", "status"),
    )

    # When filtered on both indexes, Then both apply
    assert ids(collection, where={"customer": "a", "status": "paid"}) == ["in4", "in1"]

    # And a predicate narrows further, has_more counting only matches
    page = collection.page(limit=1, where={"customer": "a"}, predicate=lambda o: o["total"] > 0)
    assert ([o["id"] for o in page.data], page.has_more) == (["in2"], True)
    page = collection.page(limit=1, where={"customer": "a"}, predicate=lambda o: o["total"] > 0, starting_after="in2")
    assert ([o["id"] for o in page.data], page.has_more) == (["in1"], False)


def test_iter_newest_first(ten: Collection) -> None:
    # Given ten objects, When iterated, Then newest first, like a page without limit
    assert [o["id"] for o in ten.iter_newest_first()] == ids(ten)
