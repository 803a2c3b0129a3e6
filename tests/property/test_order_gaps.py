"""Engine bugs found while writing the property suite, as minimal examples. Those still open are marked
xfail (strict: the fix makes them pass, and must remove the mark); fixed ones stay as regressions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.iam.identity import acting_as
from shared.revenue import engine, keys
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests import revenue_checks

from .harness import Replay, Stack, assert_rule_2, strict_decisions
from .world import MINUTE, PROJECT, T0, ChargeSpec, CustomerSpec, SessionSpec, VisitorSpec, World, stream


def checkout_events(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(visitor, event id) of every Checkout Completed event on a timeline."""
    return sorted(
        (i["visitor_id"], i["event_id"])
        for i in items
        if i["sk"].startswith(keys.TIMELINE_PREFIX) and i.get("type") == "Checkout Completed"
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


def test_a_visitor_changing_its_email_gives_up_one_customer_and_takes_another(stack: Stack) -> None:
    world = World(
        visitors=(VisitorSpec("v1", "ann@shop.test", T0),),
        customers=(CustomerSpec("cus_a", "ann@shop.test", None), CustomerSpec("cus_b", "bob@shop.test", None)),
        charges=(
            ChargeSpec("ch_1", "cus_a", T0 + MINUTE, 100, "usd", "pi_1"),
            ChargeSpec("ch_2", "cus_b", T0 + 2 * MINUTE, 200, "usd", "pi_2"),
        ),
    )
    replay = Replay(world, stack)
    replay.apply_all(stream(world))
    before = replay.snapshot()
    assert (before.owner("ch_1"), before.owner("ch_2")) == (("v1", 2), (None, None))

    # v1 changes its email: it leaves ann@ (cus_a's) and takes bob@ (cus_b's), one decision for both
    moment = datetime.fromtimestamp(T0 + 10 * MINUTE, UTC)
    service = VisitorService(DynamoVisitorStore.default(), clock=lambda: moment)
    with acting_as("VisitorApiFunction"):
        saved = service.save(PROJECT, "v1", VisitorChanges(email="bob@shop.test"))
    assert saved.emails_moved == ("ann@shop.test", "bob@shop.test")
    with strict_decisions(), acting_as("VisitorApiFunction"):
        engine.on_visitor_saved(PROJECT, "v1", saved.created, saved.emails_moved, replay.applier.fetch_customer)

    after = replay.snapshot()
    assert (after.owner("ch_1"), after.owner("ch_2")) == ((None, None), ("v1", 2))
    assert after.links == {"cus_a": None, "cus_b": ("v1", 2, (T0 + 2 * MINUTE, "ch_2"))}
    assert after.totals == {"v1": {"usd": 200}}
    assert after.unattributed == {"usd": 100}
    (profile,) = [i for i in replay.items() if i["sk"] == keys.PROFILE]
    assert set(revenue_checks.linked_customers_of(profile)) == {"cus_b"}


def test_a_late_session_naming_no_known_visitor_keeps_its_charges_own_metadata_visitor(stack: Stack) -> None:
    # A linked customer (v1 by email) whose later charge names v3 in its own metadata (tier 1), then
    # the Checkout Session that paid that charge, naming a visitor this project does not know.
    world = World(
        visitors=(VisitorSpec("v1", "ann@shop.test", T0), VisitorSpec("v3", None, T0)),
        customers=(CustomerSpec("cus_a", "ann@shop.test", None),),
        charges=(
            ChargeSpec("ch_1", "cus_a", T0 + MINUTE, 100, "usd", "pi_1"),
            ChargeSpec("ch_2", "cus_a", T0 + 3 * MINUTE, 200, "usd", "pi_2", meta_visitor="v3"),
        ),
        sessions=(SessionSpec("cs_2", T0 + 2 * MINUTE, "cus_a", "pi_2", meta_visitor="ghost"),),
    )
    inputs = stream(world)
    session = next(i for i in inputs if i.label == "checkout.session.completed cs_2")
    replay = Replay(world, stack)
    replay.apply_all([i for i in inputs if i is not session] + [session])
    state = replay.snapshot()
    assert state.owner("ch_2") == ("v3", 1)
    assert_rule_2(world, state)
