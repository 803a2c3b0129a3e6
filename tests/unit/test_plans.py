"""Rule 6: plan fields from Stripe subscriptions, the order of their states, and a visitor's plan."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.stripe_emulator import fixtures
from local.stripe_emulator.expand import list_object
from shared.revenue.plans import (
    EVENT_CREATED,
    EVENT_DELETED,
    EVENT_UPDATED,
    SubscriptionState,
    event_title,
    is_newer,
    merge,
    order_key,
    state_from_event,
    visitor_plan,
)

PERIOD_START = 1_793_109_600  # 2026-10-28T14:00:00Z
PERIOD_END = 1_795_788_000  # 2026-11-27T14:00:00Z


def price(**overrides: Any) -> dict[str, Any]:
    """A recurring price as the emulator creates it (monthly 20.00 USD, no nickname or lookup key)."""
    fields: dict[str, Any] = {"id": "price_basic", "unit_amount": 2000, "unit_amount_decimal": "2000"}
    return fixtures.build("price", **{**fields, **overrides})


def item(the_price: dict[str, Any] | None = None, quantity: int | None = 1, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": "si_1",
        "subscription": "sub_1",
        "price": the_price or price(),
        "quantity": quantity,
        "current_period_start": PERIOD_START,
        "current_period_end": PERIOD_END,
    }
    return fixtures.build("subscription_item", **{**fields, **overrides})


def subscription(*items: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A subscription as a webhook carries it: Stripe's example object with our items and fields."""
    fields: dict[str, Any] = {
        "id": "sub_1",
        "customer": "cus_1",
        "created": PERIOD_START,
        "status": "active",
        "cancel_at_period_end": False,
        "metadata": {},
        "items": list_object(list(items or [item()]), False, "/v1/subscription_items?subscription=sub_1"),
    }
    return fixtures.build("subscription", **{**fields, **overrides})


def state(
    event_created: int | None = 1000,
    event_type: str = EVENT_UPDATED,
    items: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> SubscriptionState:
    """The state an event of `event_type` created at `event_created` carries; None: a read from the API."""
    sub = subscription(*(items or []), **overrides)
    return state_from_event(event_type if event_created is not None else None, sub, event_created)


# ---- plan fields -------------------------------------------------------------------------------


def test_plan_fields_of_a_one_item_subscription() -> None:
    # Given a monthly 20.00 USD price with a nickname, on a subscription whose metadata names a visitor
    sub = subscription(
        item(price(nickname="Pro", lookup_key="pro_monthly")),
        metadata={"ripples_visitor_id": " v_1 "},
        cancel_at_period_end=True,
    )
    # When a customer.subscription.updated event carries it
    s = state_from_event(EVENT_UPDATED, sub, 1_793_200_000)
    # Then the plan has the api.md fields, and the state keeps what orders it
    assert s.plan() == {
        "name": "Pro",
        "status": "active",
        "price_id": "price_basic",
        "amount": 2000,
        "currency": "usd",
        "interval": "month",
        "current_period_end": "2026-11-27T14:00:00Z",
        "cancel_at_period_end": True,
    }
    assert (s.subscription_id, s.customer_id, s.metadata_visitor_id) == ("sub_1", "cus_1", "v_1")
    assert (s.event_created, s.created, s.current_period_start) == (1_793_200_000, PERIOD_START, PERIOD_START)


@pytest.mark.parametrize(
    ("nickname", "lookup_key", "name"),
    [("Pro", "pro_monthly", "Pro"), (None, "pro_monthly", "pro_monthly"), (None, None, "price_basic")],
)
def test_the_name_falls_back_from_nickname_to_lookup_key_to_price_id(
    nickname: str | None, lookup_key: str | None, name: str
) -> None:
    # Given a price with or without a nickname and a lookup key / When its subscription is read
    s = state_from_event(None, subscription(item(price(nickname=nickname, lookup_key=lookup_key))), None)
    # Then the plan's name is the first one present
    assert s.name == name


def test_the_amount_sums_every_item_times_its_quantity_and_the_rest_comes_from_the_first_item() -> None:
    # Given a yearly seat price x 3 and a yearly add-on, with different periods on each item
    seats = item(price(id="price_seat", unit_amount=1500, recurring={"interval": "year"}), quantity=3)
    addon = item(price(id="price_addon", unit_amount=500), id="si_2", current_period_end=PERIOD_START)
    # When the subscription is read
    s = state_from_event(None, subscription(seats, addon), None)
    # Then the amount is 3 x 1500 + 500, the other fields are the first item's
    assert (s.amount, s.price_id, s.name, s.interval) == (5000, "price_seat", "price_seat", "year")
    assert s.current_period_end == "2026-11-27T14:00:00Z"


def test_a_zero_decimal_currency_keeps_its_amount_as_sent() -> None:
    # Given a 980 JPY price x 2 (JPY has no minor unit)
    sub = subscription(item(price(currency="jpy", unit_amount=980), quantity=2), currency="JPY")
    # When read / Then the amount stays 1960 (never divided) and the currency is lower case
    assert state_from_event(None, sub, None).plan()["amount"] == 1960
    assert state_from_event(None, sub, None).currency == "jpy"


def test_items_without_a_unit_amount_or_quantity_add_nothing() -> None:
    # Given a tiered price (no unit_amount) and a metered item (no quantity) beside a 10.00 item
    tiered = item(price(id="price_tiered", unit_amount=None, billing_scheme="tiered"))
    metered = item(price(id="price_metered"), quantity=None, id="si_2")
    fixed = item(price(id="price_fixed", unit_amount=1000), id="si_3")
    # When read / Then only the fixed item counts, and a plan with no known amount has none
    assert state_from_event(None, subscription(tiered, metered, fixed), None).amount == 1000
    assert state_from_event(None, subscription(tiered), None).amount is None


def test_deleted_keeps_the_plan_with_status_canceled() -> None:
    # Given an active subscription deleted (Stripe sends the subscription as it was at deletion)
    sub = subscription(item(price(nickname="Pro")), status="active", canceled_at=1_794_000_000, ended_at=1_794_000_000)
    # When customer.subscription.deleted carries it
    s = state_from_event(EVENT_DELETED, sub, 1_794_000_000)
    # Then the plan is kept, its status canceled
    assert s.plan()["status"] == "canceled"
    assert (s.name, s.amount, s.ended_at) == ("Pro", 2000, 1_794_000_000)


def test_an_expanded_customer_gives_its_id() -> None:
    s = state_from_event(EVENT_CREATED, subscription(customer={"id": "cus_9", "object": "customer"}), 1)
    assert s.customer_id == "cus_9"


def test_other_event_types_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"charge\.succeeded"):
        state_from_event("charge.succeeded", subscription(), 1)
    with pytest.raises(ValueError, match=r"invoice\.paid"):
        event_title("invoice.paid")


@pytest.mark.parametrize(
    ("event_type", "title"),
    [
        (EVENT_CREATED, "Subscription Updated"),
        (EVENT_UPDATED, "Subscription Updated"),
        (EVENT_DELETED, "Subscription Canceled"),
    ],
)
def test_event_titles(event_type: str, title: str) -> None:
    assert event_title(event_type) == title


# ---- order of states of one subscription -------------------------------------------------------


def test_an_older_event_never_overwrites_a_newer_one() -> None:
    # Given the plan after an upgrade at 2000, and the event of the earlier plan, delivered late
    newer = state(2000, items=[item(price(id="price_pro"))])
    older = state(1000, items=[item(price(id="price_basic"))])
    # When both orders are merged / Then the upgrade stays
    assert merge(newer, older) == merge(older, newer) == newer
    assert is_newer(newer, older)
    assert not is_newer(older, newer)


def test_ties_on_the_event_are_broken_by_the_subscriptions_own_timestamps() -> None:
    # Given two events of the same second: a renewal (later period) and the period before it
    renewed = state(1000, items=[item(current_period_start=PERIOD_END, current_period_end=PERIOD_END + 30 * 86_400)])
    before = state(1000)
    # When merged either way / Then the later period wins
    assert merge(before, renewed) == merge(renewed, before) == renewed


def test_a_deletion_beats_an_update_of_the_same_second() -> None:
    # Given an update and the deletion Stripe sent after it, both stamped the same second
    updated = state(1000, EVENT_UPDATED, cancel_at_period_end=True, canceled_at=900)
    deleted = state(1000, EVENT_DELETED, canceled_at=900, ended_at=1000)
    # When merged either way / Then the subscription is canceled
    assert merge(updated, deleted).status == merge(deleted, updated).status == "canceled"


def test_the_first_payment_activates_a_subscription_created_in_the_same_second() -> None:
    # Given created (incomplete) and updated (active) with the same `created`, as a Checkout sends them
    created = state(1000, EVENT_CREATED, status="incomplete")
    activated = state(1000, EVENT_UPDATED, status="active")
    # When merged either way / Then it is active
    assert merge(activated, created) == merge(created, activated) == activated


def test_a_read_is_as_recent_as_its_latest_timestamp() -> None:
    # Given an event of the first period, and a backfill read of the subscription two periods later
    event = state(PERIOD_START + 10)
    read = state(None, items=[item(current_period_start=PERIOD_END, current_period_end=PERIOD_END + 30 * 86_400)])
    # When merged / Then the read wins: its period started after that event
    assert merge(event, read) == merge(read, event) == read
    # and an event after the read's period start wins over the read
    later = state(PERIOD_END + 5, status="past_due")
    assert merge(read, later) == merge(later, read) == later


def test_merge_refuses_states_of_different_subscriptions() -> None:
    with pytest.raises(ValueError, match="different subscriptions"):
        merge(state(1), state(2, id="sub_2"))


@st.composite
def states_of_one_subscription(draw: st.DrawFn) -> SubscriptionState:
    """Any state of sub_1: few distinct values, so that ties on every part of the key are frequent."""
    small = st.integers(min_value=1, max_value=4)
    event_created = draw(st.none() | small)
    event_type = draw(st.sampled_from([EVENT_CREATED, EVENT_UPDATED, EVENT_DELETED]))
    the_price = price(
        id=draw(st.sampled_from(["price_a", "price_b"])),
        nickname=draw(st.none() | st.just("Pro")),
        unit_amount=draw(st.sampled_from([0, 1000])),
    )
    return state(
        event_created,
        event_type,
        status=draw(st.sampled_from(["incomplete", "trialing", "active", "past_due", "canceled", "whatever"])),
        created=draw(small),
        canceled_at=draw(st.none() | small),
        ended_at=draw(st.none() | small),
        cancel_at_period_end=draw(st.booleans()),
        metadata=draw(st.sampled_from([{}, {"ripples_visitor_id": "v_1"}])),
        items=[item(the_price, quantity=draw(st.integers(1, 2)), current_period_start=draw(st.none() | small))],
    )


@settings(max_examples=300, deadline=None)
@given(
    states=st.lists(states_of_one_subscription(), min_size=1, max_size=6),
    data=st.data(),
)
def test_any_permutation_and_duplication_of_states_merges_to_the_same_state(
    states: list[SubscriptionState], data: st.DataObject
) -> None:
    # Given states of one subscription, delivered in another order with some delivered twice
    again = data.draw(st.lists(st.sampled_from(states), max_size=4))
    delivery = data.draw(st.permutations(states + again))
    # When each is merged into what is known
    merged = functools.reduce(merge, delivery)
    # Then the result is the same as in the original order, and it is one of the states
    assert merged == functools.reduce(merge, states)
    assert merged in states
    # and the order is total: equal keys only for equal states
    for a in states:
        for b in states:
            assert (order_key(a) == order_key(b)) == (a == b)


# ---- the visitor's plan ------------------------------------------------------------------------


def test_no_states_no_plan() -> None:
    assert visitor_plan([]) is None


def test_the_newest_live_subscription_wins_over_a_newer_cancellation() -> None:
    # Given an older active subscription, a newer trialing one, and one canceled after both
    states = [
        state(1000, id="sub_a", items=[item(price(id="price_a"))]),
        state(2000, id="sub_b", status="trialing", items=[item(price(id="price_b"))]),
        state(3000, EVENT_DELETED, id="sub_c", items=[item(price(id="price_c"))]),
    ]
    # When the visitor's plan is chosen / Then it is the newest live one
    plan = visitor_plan(states)
    assert plan is not None
    assert (plan["price_id"], plan["status"]) == ("price_b", "trialing")


def test_past_due_counts_as_live() -> None:
    states = [
        state(1000, id="sub_a", status="past_due"),
        state(2000, EVENT_DELETED, id="sub_b"),
    ]
    plan = visitor_plan(states)
    assert plan is not None
    assert plan["status"] == "past_due"


def test_the_latest_state_of_each_subscription_is_what_counts() -> None:
    # Given sub_a newest while active, then deleted; sub_b active, older than sub_a's last event
    states = [
        state(3000, id="sub_a", items=[item(price(id="price_a"))]),
        state(1000, id="sub_b", items=[item(price(id="price_b"))]),
        state(4000, EVENT_DELETED, id="sub_a", items=[item(price(id="price_a"))]),
    ]
    # When chosen / Then sub_a is canceled now, so sub_b shows
    plan = visitor_plan(reversed(states))
    assert plan is not None
    assert plan["price_id"] == "price_b"


def test_all_canceled_shows_the_most_recently_canceled() -> None:
    # Given two deleted subscriptions, and a canceled one read in a backfill (no event: its ended_at)
    states = [
        state(2000, EVENT_DELETED, id="sub_a", items=[item(price(id="price_a"))]),
        state(1000, EVENT_DELETED, id="sub_b", items=[item(price(id="price_b"))]),
        state(None, id="sub_c", status="canceled", ended_at=1500, items=[item(price(id="price_c"))]),
    ]
    # When chosen / Then the last cancellation shows, with its plan kept
    plan = visitor_plan(states)
    assert plan is not None
    assert (plan["price_id"], plan["status"]) == ("price_a", "canceled")


def test_reads_without_events_compare_by_the_subscriptions_created_then_id() -> None:
    # Given subscriptions read in a backfill: sub_a created later than sub_b, sub_c tied with sub_a
    a = state(None, id="sub_a", created=2000, items=[item(price(id="price_a"), current_period_start=None)])
    b = state(None, id="sub_b", created=1000, items=[item(price(id="price_b"), current_period_start=None)])
    c = state(None, id="sub_c", created=2000, items=[item(price(id="price_c"), current_period_start=None)])
    # When chosen, in any order / Then the latest created wins, and a tie goes to the greater id
    assert shown_price([a, b]) == "price_a"
    assert shown_price([c, a, b]) == shown_price([b, a, c]) == "price_c"


def shown_price(states: list[SubscriptionState]) -> str:
    plan = visitor_plan(states)
    assert plan is not None
    return str(plan["price_id"])
