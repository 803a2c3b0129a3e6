"""The scheduled reconcile, in-process (moto, the emulator, each function's role enforced): a deleted
webhook endpoint recreated and its secret stored, lost webhooks' charges and refunds booked once,
refusals recorded on their integration without stopping the sweep of the others (domain rule 7)."""

from __future__ import annotations

import time
from typing import Any

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared.reconcile import sweep
from shared.reconcile.state import epoch
from shared.stripe_api.events import PROCESSED_EVENT_TYPES
from tests.conftest import AwsEnv, Receiver

from .harness import open_merchant, reconcile

PROJECT = "shop-1"


def recent(iso: str | None) -> bool:
    return iso is not None and abs(epoch(iso) - time.time()) < 60


def money(entry: dict[str, Any]) -> tuple[int, int]:
    return int(entry["amount"]), int(entry["refunded"])


def test_a_deleted_endpoint_is_recreated_and_lost_webhooks_are_booked_once(
    hooks: Receiver,
    aws: AwsEnv,
    stripe_clock: EmulatorControl,
    account: EmulatorAccount,
    refunds_key: str,
) -> None:
    # Given a connected shop whose key can list refunds, and a visitor identified with the buyer's email
    shop = open_merchant(PROJECT, account, refunds_key, stripe_clock, hooks, aws)
    shop.put_visitor("v-1", email="buyer@example.com")
    old_endpoint, old_secret = shop.integration().webhook_endpoint_id, shop.webhook_secret()
    # A payment of an hour ago, whose webhook arrived (older than anything a sweep lists by `created`)
    stripe_clock.call("POST", "clock", {"advance": -3600})
    kept = shop.pay(4000)
    stripe_clock.call("POST", "clock", {"advance": 3600})
    assert [shop.forward(d, signed_now=True) for d in shop.deliveries_of("charge.succeeded", kept)] == [200]
    # Then its refund and another payment, whose webhooks are lost
    shop.refund(kept, 1500)
    lost = shop.pay(2500)
    (lost_refund,) = shop.deliveries_of("charge.refunded", kept)
    assert shop.deliveries_of("charge.succeeded", lost)
    # And the merchant deletes Ripples' webhook endpoint
    shop.client.v1.webhook_endpoints.delete(old_endpoint)

    # When the reconcile runs
    assert reconcile() == {"projects": 1, "swept": 1, "unfinished": 0, "failed": 0, "skipped": 0}

    # Then a new endpoint serves the project, and its secret is stored beside the unchanged key
    integration = shop.integration()
    endpoint = shop.endpoint(integration.webhook_endpoint_id)
    assert endpoint.id != old_endpoint
    assert (endpoint.status, endpoint.url) == ("enabled", f"{hooks.url.rsplit('/', 1)[0]}/webhooks/stripe/{PROJECT}")
    assert sorted(endpoint.enabled_events) == sorted(PROCESSED_EVENT_TYPES)
    assert endpoint.metadata.to_dict() == {"ripples_project_id": PROJECT}
    assert shop.webhook_secret() not in (old_secret, "")
    state = integration.reconcile
    assert state is not None
    for when in ("endpoint_recreated_at", "last_sweep_at", "checked_at"):
        assert recent(state[when]), when
    assert (state["error"], state["warning"], state["lease_until"]) == (None, None, None)
    # And the lost payment is booked, and the lost refund, found by listing refunds (the charge is
    # older than the sweep's window), on the visitor the email names
    assert (state["charges_read"], state["refunds_read"]) == (1, 1)
    ledger = shop.ledger()
    assert (money(ledger[kept]), money(ledger[lost])) == ((4000, 1500), (2500, 0))
    assert {entry["visitor_id"] for entry in ledger.values()} == {"v-1"}

    # When the reconcile runs again
    reconcile()
    # Then nothing is booked twice: the refund is one timeline event
    assert {charge: money(entry) for charge, entry in shop.ledger().items()} == {kept: (4000, 1500), lost: (2500, 0)}
    refunds = [(e["stripe_object_id"], e["revenue"]) for e in shop.timeline("v-1") if e["type"] == "Charge Refunded"]
    assert refunds == [(kept, -1500)]

    # And Stripe's next delivery, signed with the new endpoint's secret, is accepted; one signed
    # with the deleted endpoint's secret is refused
    later = shop.pay(700)
    assert [shop.forward(d) for d in shop.deliveries_of("charge.succeeded", later)] == [200]
    assert money(shop.ledger()[later]) == (700, 0)
    assert shop.forward(lost_refund) == 400


def test_a_disabled_endpoint_is_enabled_again_and_keeps_its_secret(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    # Given a shop whose endpoint was disabled (by the merchant, or by Stripe after failed deliveries)
    shop = open_merchant(PROJECT, account, refunds_key, control, hooks, aws)
    endpoint, secret = shop.integration().webhook_endpoint_id, shop.webhook_secret()
    shop.client.v1.webhook_endpoints.update(endpoint, params={"disabled": True})
    # And a payment made meanwhile (no webhook is sent to a disabled endpoint)
    missed = shop.pay(1200)
    assert not shop.deliveries_of("charge.succeeded", missed)
    # When the reconcile runs
    reconcile()
    # Then the same endpoint is enabled again, with the same secret, and the payment is booked
    assert shop.endpoint(endpoint).status == "enabled"
    assert (shop.integration().webhook_endpoint_id, shop.webhook_secret()) == (endpoint, secret)
    state = shop.integration().reconcile
    assert state is not None
    assert recent(state["endpoint_repaired_at"])
    assert state["endpoint_recreated_at"] is None
    assert money(shop.ledger()[missed]) == (1200, 0)
    # And the next payment's webhook is delivered again and accepted
    later = shop.pay(300)
    assert [shop.forward(d) for d in shop.deliveries_of("charge.succeeded", later)] == [200]


def test_a_revoked_key_is_recorded_on_its_integration_and_the_others_are_still_swept(
    hooks: Receiver, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, refunds_key: str
) -> None:
    # Given two shops on two Stripe accounts, the first one's key revoked since it connected
    revoked = open_merchant("shop-revoked", account, refunds_key, control, hooks, aws)
    other_account = control.create_account()
    other = open_merchant("shop-ok", other_account, other_account.restricted_key, control, hooks, aws)
    control.revoke_key(refunds_key)
    # And a payment at each, whose webhooks are lost
    revoked.pay(900)
    missed = other.pay(1100)
    # When the reconcile runs
    summary = reconcile()
    # Then the revoked key is a clear problem on its integration, its mark not moved
    assert (summary["failed"], summary["swept"]) == (1, 1)
    state = revoked.integration().reconcile
    assert state is not None
    assert state["error"] == sweep.REJECTED_KEY
    assert (state["last_sweep_at"], state["lease_until"]) == (None, None)
    assert recent(state["checked_at"])
    assert revoked.integration().status == "connected"  # its webhooks still verify and book
    assert revoked.ledger() == {}
    # And the other shop was swept: its payment booked (its key cannot list refunds: said so)
    assert money(other.ledger()[missed]) == (1100, 0)
    other_state = other.integration().reconcile
    assert other_state is not None
    assert other_state["error"] is None
    assert other_state["warning"] == sweep.NO_REFUNDS
