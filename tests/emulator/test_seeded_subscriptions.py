"""Seeded subscriptions (`POST /_emulator/seed` with `subscriptions`), read through the official SDK
as the backfill reads them: made by the emulator's own Billing and Checkout code at past moments."""

from __future__ import annotations

import time
from collections import Counter

import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl

DAY = 86_400


def seed(control: EmulatorControl, account: EmulatorAccount, **spec: object) -> dict[str, object]:
    now = int(time.time())
    return control.seed(
        account.id, customers=40, charges_per_customer=2, start=now - 400 * DAY, end=now - 3_600, **spec
    )


def test_subscriptions_of_every_status_with_their_invoices_and_charges(
    control: EmulatorControl, account: EmulatorAccount, stripe_client: stripe.StripeClient
) -> None:
    # Given a history with 30 subscriptions, some through Checkout naming visitors
    counts = seed(control, account, subscriptions=30, currencies=["usd", "jpy"], checkout_rate=0.5, seed=3)
    # Then the counts say what was made
    statuses = counts["subscription_statuses"]
    assert isinstance(statuses, dict)
    assert counts["subscriptions"] == sum(statuses.values()) == 30
    assert {"active", "canceled"} <= set(statuses)
    subs = list(stripe_client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter())
    assert Counter(s.status for s in subs) == Counter(statuses)
    # the default list (what the backfill reads) leaves the canceled ones out
    listed = stripe_client.v1.subscriptions.list(params={"limit": 100}).data
    assert len(listed) == 30 - statuses.get("canceled", 0)
    assert {s.customer for s in subs} == {s.customer for s in subs if s.customer}  # one per customer
    assert len({s.customer for s in subs}) == 30
    paid_charges = 0
    for sub in subs:
        item = sub["items"].data[0]
        assert item.price.nickname in ("Starter monthly", "Pro monthly", "Pro yearly")
        assert item.current_period_start < item.current_period_end
        invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id, "limit": 100}).data
        assert invoices
        assert sub.latest_invoice == invoices[0].id
        for invoice in invoices:
            assert invoice.parent.subscription_details.subscription == sub.id
            payments = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
            if invoice.status == "paid" and invoice.amount_paid:
                intent = stripe_client.v1.payment_intents.retrieve(payments[0].payment.payment_intent)
                charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
                assert (charge.status, charge.amount, charge.customer) == (
                    "succeeded",
                    invoice.amount_paid,
                    sub.customer,
                )
                assert charge.created == invoice.created
                paid_charges += 1
        if sub.status == "past_due":
            assert invoices[0].status == "open"  # the last renewal was declined
            assert len(invoices) >= 2
        if sub.status == "trialing":
            assert (len(invoices), invoices[0].amount_paid) == (1, 0)
        if sub.status == "canceled":
            assert sub.ended_at
            assert sub.canceled_at
    assert counts["subscription_charges"] >= paid_charges
    # Checkout-started subscriptions have their completed session, naming the first invoice
    sessions = stripe_client.v1.checkout.sessions.list(params={"limit": 100, "status": "complete"}).data
    by_sub = [s for s in sessions if s.mode == "subscription"]
    assert by_sub
    for session in by_sub:
        assert session.subscription
        assert session.invoice
        assert session.payment_intent is None
    named = [s for s in by_sub if "ripples_visitor_id" in s.metadata]
    for session in named:  # `visitor-<customer index>`, as the one-time sessions name them
        customer = stripe_client.v1.customers.retrieve(str(session.customer))
        assert session.metadata["ripples_visitor_id"] == "visitor" + str(customer.name).split()[-1]


def test_without_subscriptions_the_history_is_as_before(control: EmulatorControl) -> None:
    # The same seed makes the same one-time history with and without subscriptions beside it
    plain, with_subs = control.create_account(), control.create_account()
    a = seed(control, plain, seed=5)
    b = seed(control, with_subs, seed=5, subscriptions=5)
    for name in ("customers", "charges", "failed_charges", "refunds", "checkout_sessions", "with_visitor_id"):
        assert a[name] == b[name]
    assert (a["subscriptions"], a["invoices"], a["subscription_charges"]) == (0, 0, 0)


def test_only_tracked_customers_carry_visitor_ids(control: EmulatorControl, account: EmulatorAccount) -> None:
    seed(control, account, checkout_rate=1, visitor_id_rate=1, visitor_customers=10)
    client = control.client(account.secret_key)
    sessions = list(client.v1.checkout.sessions.list(params={"limit": 100}).auto_paging_iter())
    named = {s.metadata["ripples_visitor_id"] for s in sessions if "ripples_visitor_id" in s.metadata}
    assert named == {f"visitor{i}" for i in range(10)}
