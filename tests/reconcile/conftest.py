"""Fixtures of the reconcile tests: webhook endpoints that point at a recording receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.keys import PRODUCT_PERMISSIONS
from tests.conftest import AwsEnv, Receiver, reset_caches
from tests.revenue_checks import assert_invariant


@pytest.fixture
def hooks(stripe_env: None, aws: AwsEnv, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """Endpoints created from now on (connect, reconcile) deliver to the receiver; the ledger/total
    invariant is asserted after the test."""
    monkeypatch.setenv("PUBLIC_BASE_URL", receiver.url.rsplit("/", 1)[0])
    reset_caches()
    yield receiver
    assert_invariant(aws.revenue_table)


@pytest.fixture
def refunds_key(control: EmulatorControl, account: EmulatorAccount) -> str:
    """A restricted key with Ripples' permissions and Refunds: Read."""
    return control.create_key(account.id, [*PRODUCT_PERMISSIONS, "rak_refund_read"])


@pytest.fixture
def stripe_clock(control: EmulatorControl) -> Iterator[EmulatorControl]:
    """The emulator's clock, for a test to move (put back afterwards: the emulator outlives it)."""
    offset = control.call("POST", "clock", {"advance": 0})["offset"]
    yield control
    control.call("POST", "clock", {"offset": offset})
