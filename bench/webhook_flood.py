"""Flooding the unauthenticated webhook route: what each kind of bad request costs, counted.

N requests of each kind go through the real handler in-process (moto with the template's tables, the
Stripe emulator for the connected project and its one valid event). AWS requests are counted with
botocore's before-call hook on the functions' own clients; CPU is this process's (time.process_time,
so moto's work for a request counts too), wall is perf_counter.
Run: `python -m bench.webhook_flood [--requests N]`; writes bench/results/webhook_flood.json and .md.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import stripe

from bench.webhook_budget import PROJECT, BenchContext, moto_stack, webhook_request
from local.stripe_emulator.control_client import EmulatorControl
from local.stripe_emulator.server import start
from local.stripe_emulator.webhooks import sign

RESULTS = Path(__file__).resolve().parent / "results"
WRONG_SECRET = "whsec_" + "1" * 32  # what a caller without the project's secret signs with


def with_header(request: dict[str, Any], header: str | None) -> dict[str, Any]:
    headers = {k: v for k, v in request["headers"].items() if k != "stripe-signature"}
    return {**request, "headers": headers if header is None else {**headers, "stripe-signature": header}}


def kinds(n: int, body: bytes, secret: str) -> dict[str, Sequence[dict[str, Any]]]:
    """Each kind's requests; one dict repeated where they are all alike (the 1 MiB one especially)."""
    now = int(time.time())
    huge = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    return {
        "unknown project, same id": [webhook_request("nobody", body, WRONG_SECRET)] * n,
        "unknown project, random ids": [webhook_request(uuid.uuid4().hex, body, WRONG_SECRET) for _ in range(n)],
        "known project, bad signature": [webhook_request(PROJECT, body, WRONG_SECRET)] * n,
        "missing header": [with_header(webhook_request(PROJECT, body, secret), None)] * n,
        "malformed header": [with_header(webhook_request(PROJECT, body, secret), "t=now,v1=deadbeef")] * n,
        "stale timestamp": [with_header(webhook_request(PROJECT, body, secret), sign(body, secret, now - 301))] * n,
        "oversized body": [webhook_request(PROJECT, huge, secret)] * n,
        "valid event (secret cached)": [webhook_request(PROJECT, body, secret)],
    }


def measure(requests: Sequence[dict[str, Any]], calls: Counter[str]) -> dict[str, Any]:
    from functions.stripe_webhook.app import lambda_handler

    calls.clear()
    statuses: Counter[int] = Counter()
    cpu, wall = time.process_time(), time.perf_counter()
    for request in requests:
        statuses[lambda_handler(request, BenchContext())["statusCode"]] += 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(requests)
    return {
        "requests": n,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "secretsmanager_per_request": calls["secretsmanager"] / n,
        "dynamodb_per_request": calls["dynamodb"] / n,
        "cpu_ms_per_request": round(cpu * 1000 / n, 3),
        "wall_ms_per_request": round(wall * 1000 / n, 3),
    }


def run(n: int) -> dict[str, dict[str, Any]]:
    emulator = start()
    control = EmulatorControl(emulator.base_url)
    try:
        with moto_stack(emulator.base_url):
            # Imported here: the functions read their configuration lazily, from the environment above.
            from shared import secrets, tables
            from shared.integrations.connect import connect

            account = control.create_account()
            control.delivery(account.id, retries=0)
            connect(PROJECT, account.restricted_key)
            name = secrets.secret_name(PROJECT)
            secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
            merchant = control.client(account.secret_key)
            merchant.v1.payment_intents.create(
                params={"amount": 2500, "currency": "usd", "confirm": True, "payment_method": "pm_card_visa"}
            )
            (event,) = merchant.v1.events.list(params={"type": "charge.succeeded", "limit": 1}).data
            body = merchant.raw_request("get", f"/v1/events/{event.id}").body.encode()

            calls: Counter[str] = Counter()

            def count(model: Any, **_: Any) -> None:
                calls[model.service_model.service_name] += 1

            for client in [*tables.clients(), secrets.client()]:
                client.meta.events.register("before-call", count)
            requests = kinds(n, body, secret["webhook_secret"])
            measure(requests["missing header"][:1], calls)  # warm-up: first-call costs land on no kind
            return {kind: measure(batch, calls) for kind, batch in requests.items()}
    finally:
        emulator.stop()


def report(n: int, rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"# Webhook flood, {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "",
        f"`python -m bench.webhook_flood --requests {n}`: each kind through the real handler in-process (moto).",
        "AWS requests per request; CPU of this process (moto's work included) and wall time per request.",
        "",
        "| Kind | Requests | Statuses | Secrets Manager | DynamoDB | CPU ms | Wall ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, r in rows.items():
        statuses = ", ".join(f"{code} x{count}" for code, count in r["statuses"].items())
        lines.append(
            f"| {kind} | {r['requests']} | {statuses} | {r['secretsmanager_per_request']:.4f} "
            f"| {r['dynamodb_per_request']:.4f} | {r['cpu_ms_per_request']:.3f} | {r['wall_ms_per_request']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000, help="requests of each kind (default 2,000)")
    n = parser.parse_args().requests
    rows = run(n)
    table = report(n, rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhook_flood.json").write_text(json.dumps({"requests_per_kind": n, "kinds": rows}, indent=2) + "\n")
    (RESULTS / "webhook_flood.md").write_text(table)


if __name__ == "__main__":
    stripe.enable_telemetry = False
    warnings.filterwarnings("ignore", "No application metrics to publish")  # expected: metrics are off
    main()
