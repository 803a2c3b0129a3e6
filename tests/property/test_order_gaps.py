"""Order dependences the property suite found outside the ledger, totals and links: minimal examples,
expected to fail until the engine is fixed (strict: a fix makes them pass and must remove the mark)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.revenue import keys

from .harness import Replay, Stack
from .world import MINUTE, T0, ChargeSpec, CustomerSpec, SessionSpec, VisitorSpec, World, stream


def checkout_events(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(visitor, event id) of every Checkout Completed event on a timeline."""
    return sorted(
        (i["visitor_id"], i["event_id"])
        for i in items
        if i["sk"].startswith(keys.TIMELINE_PREFIX) and i.get("type") == "Checkout Completed"
    )


@pytest.mark.xfail(
    strict=True,
    reason="engine._write_new_session places a guest session's Checkout Completed event once, when the "
    "session arrives: a visitor its client_reference_id names (or its email's head) appearing later "
    "gets the session's charge (tier 1) but never the event",
)
def test_a_guest_checkout_event_follows_its_visitor_created_later(stack: Stack) -> None:
    world = World(
        visitors=(VisitorSpec("v2", None, T0 + 30 * MINUTE),),
        customers=(),
        charges=(ChargeSpec("ch_1", None, T0 + MINUTE, 1200, "usd", "pi_1"),),
        sessions=(SessionSpec("cs_1", T0, None, "pi_1", client_reference_id="v2"),),
    )
    given = {item.label: item for item in stream(world)}
    put, session, charge = (
        given["PUT v2 email=None"],
        given["checkout.session.completed cs_1"],
        given["charge.succeeded ch_1"],
    )

    replay = Replay(world, stack)
    replay.apply_all([put, session, charge])
    visitor_first = replay.snapshot()
    assert checkout_events(replay.items()) == [("v2", "cs_1:completed")]

    replay = Replay(world, stack)
    replay.apply_all([session, charge, put])
    assert replay.snapshot() == visitor_first  # the charge does move to v2, tier 1...
    assert checkout_events(replay.items()) == [("v2", "cs_1:completed")]  # ...its Checkout Completed does not


def test_stripe_customer_ids_do_not_depend_on_order(stack: Stack) -> None:
    world = World(
        visitors=(VisitorSpec("v1", "ann@shop.test", T0), VisitorSpec("v2", "bob@shop.test", T0 + MINUTE)),
        customers=(CustomerSpec("cus_a", None, None),),
        charges=(
            ChargeSpec("ch_1", "cus_a", T0 + 10 * MINUTE, 100, "usd", "pi_1", billing_email="ann@shop.test"),
            ChargeSpec("ch_2", "cus_a", T0 + 20 * MINUTE, 200, "usd", "pi_2", billing_email="bob@shop.test"),
        ),
    )
    given = {item.label: item for item in stream(world)}
    puts = [given["PUT v1 email=ann@shop.test"], given["PUT v2 email=bob@shop.test"]]

    def customer_ids(order: list[str]) -> dict[str, set[str]]:
        replay = Replay(world, stack)
        replay.apply_all([*puts, *(given[label] for label in order)])
        state = replay.snapshot()
        assert state.owner("ch_2") == ("v1", 3)  # either way, the link (ch_1, v1) owns both
        return {
            i["visitor_id"]: set(i.get("stripe_customer_ids", ())) for i in replay.items() if i["sk"] == keys.PROFILE
        }

    in_order = customer_ids(["charge.succeeded ch_1", "charge.succeeded ch_2"])
    late_earlier_charge = customer_ids(["charge.succeeded ch_2", "charge.succeeded ch_1"])
    assert in_order == {"v1": {"cus_a"}, "v2": set()}
    assert late_earlier_charge == in_order  # v2 still lists cus_a, whose charges it no longer owns
