"""`make bench-backfill`: a seeded account's history imported through the backfill, in-process.

The emulator seeds N charges over M customers (mixed currencies, refunds, checkout sessions); moto
holds the tables and the queue; the backfill function is fed the queue's messages one at a time, as
Lambda would with one consumer. Pacing off (STRIPE_RATE_BUDGET=0) unless --rate is given. Printed and
written to bench/results/backfill.{json,md}: wall seconds, charges/s, Stripe requests per 100
charges of the charges phase, DynamoDB requests per charge, this process's CPU per charge (moto's
work included: it runs in-process here), peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stripe

from bench.webhook_budget import moto_stack
from local.iam.identity import acting_as
from local.stripe_emulator.control_client import EmulatorControl
from local.stripe_emulator.server import start
from shared import tables
from shared.integrations import store
from shared.integrations.connect import connect
from shared.observability import logger
from tests.backfill.harness import drain

RESULTS = Path(__file__).resolve().parent / "results"
DAY = 86_400


def count_requests(counts: Counter[str]) -> None:
    """Count every DynamoDB request of the process's clients, by operation."""

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    for client in tables.clients():
        client.meta.events.register("before-call.dynamodb", hook)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=0.0, help="STRIPE_RATE_BUDGET (0: unpaced)")
    parser.add_argument("--latency-ms", type=int, default=0, help="the emulator's latency per request")
    parser.add_argument("--output", default="backfill")
    args = parser.parse_args()
    stripe.enable_telemetry = False
    logger.setLevel("WARNING")  # a line per charge booked would be most of the work
    emulator = start()
    control = EmulatorControl(emulator.base_url)
    account = control.create_account()
    now = int(time.time())
    control.seed(
        account.id,
        customers=args.customers,
        charges_per_customer=max(1, args.charges // args.customers),
        start=now - 540 * DAY,
        end=now - DAY,
        currencies=["usd", "eur", "jpy"],
    )
    if args.latency_ms:
        control.set_latency(account.id, args.latency_ms)
    os.environ["STRIPE_RATE_BUDGET"] = str(args.rate)
    with moto_stack(emulator.base_url):
        counts: Counter[str] = Counter()
        control.reset_stats(account.id)
        with acting_as("IntegrationApiFunction"):
            connect("bench", account.restricted_key)
        count_requests(counts)
        wall, cpu = time.perf_counter(), time.process_time()
        messages = drain()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        backfill = (store.get("bench").backfill or {}) if store.get("bench") else {}
        stats = control.stats(account.id)
    emulator.stop()
    charges = int(backfill.get("charges_imported", 0))
    stripe_requests = sum(v for k, v in stats.items() if isinstance(v, int))
    charge_pages = int(stats.get("GET /v1/charges", 0))
    row = {
        "charges": charges,
        "status": backfill.get("status"),
        "messages": messages,
        "wall_seconds": round(wall, 2),
        "charges_per_second": round(charges / wall, 1) if wall else None,
        "cpu_ms_per_charge": round(1000 * cpu / max(1, charges), 3),
        "stripe_requests": stripe_requests,
        "stripe_requests_per_100_charges_charges_phase": round(100 * charge_pages / max(1, charges), 3),
        "dynamodb_requests": sum(counts.values()),
        "dynamodb_requests_per_charge": round(sum(counts.values()) / max(1, charges), 3),
        "dynamodb_by_operation": dict(counts),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rate_budget": args.rate,
        "latency_ms": args.latency_ms,
        "stripe_by_endpoint": stats,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(row, indent=2) + "\n")
    lines = [
        f"# Backfill benchmark, {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "",
        f"`python -m bench.backfill --charges {args.charges} --customers {args.customers} --rate {args.rate} "
        f"--latency-ms {args.latency_ms}`: in-process (moto and the emulator in this process; one consumer).",
        "",
        "| measure | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in row.items() if not isinstance(v, dict)),
    ]
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
