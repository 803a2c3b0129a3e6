"""`make rebuild-rollups` (`python -m local.stack.rebuild`) against a running `make run` stack: the job
queued on the stack's BackfillQueue and run by its backfill consumer (real handler, role enforced),
its report printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.stack.auth import issue_token
from local.stack.rebuild import stack_environment
from local.stripe_emulator.control_client import EmulatorControl
from shared.revenue import keys
from tests import raw
from tests.revenue_checks import rollups_from_ledger, rollups_of
from tests.stack_process import stack_process

JWT_SECRET = "rebuild-secret-of-at-least-thirty-two-bytes"


def call(base_url: str, method: str, path: str, project: str, body: object = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {issue_token([project], JWT_SECRET)}"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`make run` in a process of its own, on known ports (moto's too); its environment."""
    with stack_process(tmp_path, JWT_SECRET) as running:
        yield running.env


def rebuild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "local.stack.rebuild", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603 - ours


def dynamodb(env: dict[str, str]) -> Any:
    """A client of the stack's moto, as an administrator (no function's role)."""
    endpoint = stack_environment(env)["AWS_ENDPOINT_URL"]
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", **credentials)


def scan(env: dict[str, str]) -> list[dict[str, Any]]:
    settings = stack_environment(env)
    client = dynamodb(env)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": settings["REVENUE_TABLE"], "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += [raw.from_item(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_make_rebuild_rollups_reports_then_repairs_in_the_running_stack(stack_env: dict[str, str]) -> None:
    base_url = f"http://127.0.0.1:{stack_env['PORT']}"
    control = EmulatorControl(f"http://127.0.0.1:{stack_env['STRIPE_EMULATOR_PORT']}")
    # Given a project connected through the stack, two payments booked (webhooks, backfill done)
    account = control.create_account()
    call(base_url, "POST", "/projects/p1/integrations/stripe", "p1", {"api_key": account.restricted_key})
    merchant = control.client(account.secret_key)
    for amount in (2500, 1200):
        merchant.v1.payment_intents.create(
            params={"amount": amount, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
        )
    deadline = time.monotonic() + 60
    while True:
        status = call(base_url, "GET", "/projects/p1/integrations/stripe", "p1")
        totals = call(base_url, "GET", "/projects/p1/revenue", "p1")["totals"]
        if status["backfill"]["status"] == "completed" and totals == {"usd": 3700}:
            break
        assert time.monotonic() < deadline, (status, totals)
        time.sleep(0.3)
    # And one of its rollup items holding 100 too much unattributed revenue
    settings = stack_environment(stack_env)
    ((pk, sk), counts), *_ = sorted(rollups_of(scan(stack_env)).items())
    dynamodb(stack_env).update_item(
        TableName=settings["REVENUE_TABLE"],
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        UpdateExpression="ADD #a :v",
        ExpressionAttributeNames={"#a": "u|usd"},
        ExpressionAttributeValues={":v": {"N": "100"}},
    )
    day, shard = sk.removeprefix(keys.ROLLUP_PREFIX).rsplit("#", 1)
    difference = {"day": day, "shard": int(shard), "attribute": "u|usd", "stored": counts["u|usd"] + 100}
    difference["expected"] = counts["u|usd"]
    # When `make rebuild-rollups PROJECT=p1` runs (a dry run)
    done = rebuild(stack_env, "p1")
    # Then it prints the difference, and writes nothing
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["status"], report["differences"], report["items_repaired"]) == ("completed", [difference], 0)
    line = f"{day} shard {shard}  u|usd: stored {difference['stored']}, expected {difference['expected']}"
    assert line in done.stdout.splitlines()
    assert rollups_of(scan(stack_env)) != rollups_from_ledger(scan(stack_env))
    # When it runs with REPAIR=1
    done = rebuild(stack_env, "p1", "--repair")
    # Then the item is repaired: the rollups are the ledger's
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["status"], report["differences"], report["items_repaired"]) == ("completed", [difference], 1)
    items = scan(stack_env)
    assert rollups_of(items) == rollups_from_ledger(items)
    assert "AccessDenied" not in done.stdout + done.stderr


def test_make_rebuild_rollups_needs_the_stacks_moto_port() -> None:
    env = {name: value for name, value in os.environ.items() if name != "MOTO_PORT"}
    done = rebuild(env, "p1")
    assert done.returncode != 0
    assert "MOTO_PORT" in done.stderr
