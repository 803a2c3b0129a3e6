"""`make reconcile` (`python -m local.stack.reconcile`) against a running `make run` stack: the real
handler, with the stack's environment and the function's role, over the stack's moto and emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.net import free_port
from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl
from tests.stack_process import stack_process

JWT_SECRET = "reconcile-secret-of-at-least-thirty-two-bytes"


def call(base_url: str, method: str, path: str, project: str, body: object = None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {issue_token([project], JWT_SECRET)}"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`make run` in a process of its own, on known ports; its environment."""
    with stack_process(tmp_path, JWT_SECRET) as running:
        yield running.env


def make_reconcile(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.stack.reconcile"], env=env, capture_output=True, text=True, timeout=120
    )


def test_make_reconcile_sweeps_the_running_stack(stack_env: dict[str, str]) -> None:
    base_url = f"http://127.0.0.1:{stack_env['PORT']}"
    control = EmulatorControl(f"http://127.0.0.1:{stack_env['STRIPE_EMULATOR_PORT']}")
    # Given a project connected through the stack, whose endpoint the merchant disabled, and a payment
    # made meanwhile (no webhook)
    account = control.create_account()
    integration = call(base_url, "POST", "/projects/p1/integrations/stripe", "p1", {"api_key": account.restricted_key})
    merchant = control.client(account.secret_key)
    endpoint = str(integration["webhook_endpoint_id"])
    merchant.v1.webhook_endpoints.update(endpoint, params={"disabled": True})
    merchant.v1.payment_intents.create(
        params={"amount": 2500, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
    )
    # When `make reconcile` runs
    done = make_reconcile(stack_env)
    # Then it swept the project: the endpoint enabled again, the payment booked
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"projects": 1, "swept": 1, "unfinished": 0, "failed": 0, "skipped": 0}
    assert "AccessDenied" not in done.stdout + done.stderr
    assert merchant.v1.webhook_endpoints.retrieve(endpoint).status == "enabled"
    shown = call(base_url, "GET", "/projects/p1/integrations/stripe", "p1")["reconcile"]
    assert isinstance(shown, dict)
    assert shown["endpoint_repaired_at"]
    assert shown["charges_read"] == 1
    assert call(base_url, "GET", "/projects/p1/revenue", "p1")["totals"] == {"usd": 2500}


def test_make_reconcile_says_when_no_stack_answers() -> None:
    not_running = make_reconcile({**os.environ, "PORT": str(free_port())})
    assert not_running.returncode != 0
    assert "no local stack answers" in not_running.stderr
