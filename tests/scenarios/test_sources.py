"""Scenarios of a visitor's acquisition source changing after it paid (issue 11): its revenue, its
payments and itself move to the new source in the report, the rollups stay equal to the ledger,
and a payment booked while the source changes is counted under the new one."""

from __future__ import annotations

from typing import Any

from tests.revenue_checks import assert_invariant, dynamodb_hook

from .harness import Shop, event_object, event_type, nonzero
from .harness import shop_fixture as shop_fixture  # the `shop` fixture
from .harness import shops_fixture as shops_fixture  # the `shop` fixture uses it


def by_source(report: dict[str, Any]) -> dict[str, tuple[dict[str, int], int, int]]:
    return {
        row["source"]: (nonzero(row["revenue"]), row["payments"], row["visitors"])
        for row in report["by_source"]
        if row["payments"]
    }


def test_a_visitor_whose_source_changes_takes_its_revenue_payments_and_itself_along(shop: Shop) -> None:
    # Given a visitor from google who paid three times, one of them refunded in part
    shop.put_visitor("v1", email="buyer@example.com", acquisition={"source": "google"})
    shop.put_visitor("v2", acquisition={"source": "google"})
    customer = shop.client.v1.customers.create(params={"email": "buyer@example.com"})
    charges = [shop.pay(amount, customer=customer.id)[1] for amount in (1000, 2000, 3000)]
    shop.client.v1.refunds.create(params={"charge": charges[0], "amount": 400})
    shop.deliver_all(shop.new_events())
    assert by_source(shop.revenue()) == {"google": ({"usd": 5600}, 3, 1)}
    shop.invariant()
    # When the tracker says it came from twitter after all
    shop.put_visitor("v1", acquisition={"source": "twitter", "medium": "social"})
    # Then its revenue, payments and the visitor itself count for twitter; rollups follow the ledger
    assert by_source(shop.revenue()) == {"twitter": ({"usd": 5600}, 3, 1)}
    shop.invariant()
    # And a refund after the move is netted under twitter; a visitor without source is "(none)"
    shop.client.v1.refunds.create(params={"charge": charges[1]})
    shop.deliver_all(shop.new_events())
    assert by_source(shop.revenue()) == {"twitter": ({"usd": 3600}, 3, 1)}
    shop.put_visitor("v1", acquisition=None)
    assert by_source(shop.revenue()) == {"(none)": ({"usd": 3600}, 3, 1)}
    shop.invariant()


def test_a_payment_booked_while_the_source_changes_counts_under_the_new_source(shop: Shop) -> None:
    # Given a visitor from google with a customer of its own
    shop.put_visitor("v1", email="race@example.com", acquisition={"source": "google"})
    customer = shop.client.v1.customers.create(params={"email": "race@example.com"})
    shop.pay(1500, customer=customer.id)
    shop.deliver_all(shop.new_events())
    _, charge = shop.pay(2500, customer=customer.id)
    (body,) = [e for e in shop.new_events() if event_type(e) == "charge.succeeded"]
    assert event_object(body)["id"] == charge
    changed: list[str] = []

    def source_changes_first(params: dict[str, Any], **_: Any) -> None:
        """Just before the transaction booking the charge: the tracker changes the source."""
        if not changed and f"#CH#{charge}" in repr(params):
            changed.append("newsletter")
            shop.put_visitor("v1", acquisition={"source": "newsletter"})

    # When the charge's booking is about to commit, the source changes under it
    with dynamodb_hook("before-call.dynamodb.TransactWriteItems", source_changes_first):
        assert shop.deliver(body) == "booked"
    # Then the booking found the profile changed, decided again, and counts under the new source
    assert changed
    assert by_source(shop.revenue()) == {"newsletter": ({"usd": 4000}, 2, 1)}
    assert_invariant(shop.aws.revenue_table)
