"""`make bench-backfill`: a seeded account's history imported through the backfill, in-process.

The emulator seeds N charges over M customers (mixed currencies, refunds, checkout sessions); moto
holds the tables and the queue; the backfill function is fed the queue's messages by `--consumers`
threads (1: one at a time; the template's MaximumConcurrency is 10). Pacing off
(STRIPE_RATE_BUDGET=0) unless --rate is given; --latency-ms sets the emulator's latency per request.
Printed and written to bench/results/<output>.{json,md}: wall seconds, charges/s, Stripe requests
per 100 charges of the charges phase, DynamoDB requests per charge (by operation), CPU per charge
split into moto's, the emulator's and ours (what a Lambda would pay: the rest of the process),
peak memory, the wall time against the rate budget's bound (Stripe requests / rate), the busiest
windows of Stripe requests, and the projection for 1,000,000 charges at 10 requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stripe
from moto.core.botocore_stubber import BotocoreStubber

from bench.webhook_budget import moto_stack
from local.iam.identity import acting_as
from local.stripe_emulator.app import EmulatorApp
from local.stripe_emulator.control_client import EmulatorControl
from local.stripe_emulator.server import _QuietHandler, start
from shared import tables
from shared.backfill import queue
from shared.backfill.rate import WINDOW_SECONDS
from shared.integrations import store
from shared.integrations.connect import connect
from shared.observability import logger
from shared.settings import get_settings
from tests.backfill.harness import deliver, drain, pending

RESULTS = Path(__file__).resolve().parent / "results"
DAY = 86_400


def count_requests(counts: Counter[str]) -> None:
    """Count every DynamoDB request of the process's clients, by operation."""

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    for client in tables.clients():
        client.meta.events.register("before-call.dynamodb", hook)


class CpuOf:
    """CPU seconds spent inside a callable, on whichever thread runs it (thread_time deltas)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def patched(self, owner: type, name: str) -> Iterator[None]:
        original = getattr(owner, name)

        def timed(this: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(this, *args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - started

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)


@contextmanager
def stripe_request_times(times: list[float]) -> Iterator[None]:
    """When each Stripe API request reached the emulator (not its control endpoints)."""
    original: Callable[..., Any] = EmulatorApp._api

    def logged(this: EmulatorApp, request: Any) -> Any:
        times.append(time.time())
        return original(this, request)

    setattr(EmulatorApp, "_api", logged)  # noqa: B010 - a method replaced for the run
    try:
        yield
    finally:
        setattr(EmulatorApp, "_api", original)  # noqa: B010


def busiest(times: list[float], seconds: float) -> int:
    """The most requests in any window of `seconds` (sliding)."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def busiest_aligned(times: list[float], seconds: int) -> int:
    """The most requests in one of the rate budget's windows (aligned to multiples of `seconds`)."""
    return max(Counter(int(t // seconds) for t in times).values(), default=0)


def received() -> list[dict[str, Any]]:
    """One message, invisible for the queue's VisibilityTimeout (template.yaml: 6x the function's
    timeout), as the event source mapping takes it: a paced invocation outlasts the tests' 30 s."""
    answer = queue.client().receive_message(
        QueueUrl=get_settings().backfill_queue_url,
        MaxNumberOfMessages=1,
        AttributeNames=["All"],
        WaitTimeSeconds=0,
        VisibilityTimeout=1800,
    )
    return list(answer.get("Messages", []))


def drain_concurrently(consumers: int) -> int:
    """Deliver the queue's messages from `consumers` threads, each one message at a time (as the event
    source mapping's concurrent pollers would), until the queue is empty."""
    if consumers <= 1:
        return drain()
    delivered: list[int] = []
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            while True:
                messages = received()
                if messages:
                    deliver(messages[0])
                    delivered.append(1)
                elif pending() == 0:
                    return
                else:
                    time.sleep(0.2)  # others in flight, or a continuation queued with a delay
        except BaseException as exc:  # reported after the join
            failures.append(exc)

    threads = [threading.Thread(target=consume, name=f"consumer-{n}") for n in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return len(delivered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=0.0, help="STRIPE_RATE_BUDGET (0: unpaced)")
    parser.add_argument("--latency-ms", type=int, default=0, help="the emulator's latency per request")
    parser.add_argument("--consumers", type=int, default=1, help="threads delivering the queue's messages")
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
    with moto_stack(emulator.base_url):
        # after the template's environment (whose empty default would mean the mode's budget)
        os.environ["STRIPE_RATE_BUDGET"] = str(args.rate)
        # as the template's MaximumConcurrency would: no more slices of a phase than consumers to read them
        os.environ["BACKFILL_MAX_HEADS"] = str(min(8, args.consumers))
        get_settings.cache_clear()
        counts: Counter[str] = Counter()
        control.reset_stats(account.id)
        with acting_as("IntegrationApiFunction"):
            connect("bench", account.restricted_key)
        count_requests(counts)
        moto, emulated, times = CpuOf(), CpuOf(), list[float]()
        with (
            moto.patched(BotocoreStubber, "__call__"),
            emulated.patched(_QuietHandler, "handle_one_request"),  # its HTTP server's work included
            stripe_request_times(times),
        ):
            wall, cpu = time.perf_counter(), time.process_time()
            messages = drain_concurrently(args.consumers)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        backfill = (store.get("bench").backfill or {}) if store.get("bench") else {}
        stats = control.stats(account.id)
    emulator.stop()
    charges = int(backfill.get("charges_imported", 0))
    stripe_requests = sum(v for k, v in stats.items() if isinstance(v, int))
    charge_pages = int(stats.get("GET /v1/charges", 0))
    ours = cpu - moto.seconds - emulated.seconds
    # what the run asked of Stripe (the connect's own requests are before the timer)
    run_requests = len(times)
    bound = run_requests / args.rate if args.rate else None
    row = {
        "charges": charges,
        "status": backfill.get("status"),
        "messages": messages,
        "wall_seconds": round(wall, 2),
        "charges_per_second": round(charges / wall, 1) if wall else None,
        "consumers": args.consumers,
        "cpu_ms_per_charge": round(1000 * cpu / max(1, charges), 3),
        "cpu_ms_per_charge_ours": round(1000 * ours / max(1, charges), 3),
        "cpu_ms_per_charge_moto": round(1000 * moto.seconds / max(1, charges), 3),
        "cpu_ms_per_charge_emulator": round(1000 * emulated.seconds / max(1, charges), 3),
        "stripe_requests": stripe_requests,
        "stripe_requests_per_100_charges_charges_phase": round(100 * charge_pages / max(1, charges), 3),
        "dynamodb_requests": sum(counts.values()),
        "dynamodb_requests_per_charge": round(sum(counts.values()) / max(1, charges), 3),
        "dynamodb_by_operation": dict(counts),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rate_budget": args.rate,
        "latency_ms": args.latency_ms,
        "stripe_requests_of_the_run": run_requests,
        "budget_bound_seconds": round(bound, 1) if bound else None,
        "wall_over_bound": round(wall / bound, 3) if bound else None,
        f"busiest_{WINDOW_SECONDS}s_window_aligned": busiest_aligned(times, WINDOW_SECONDS),
        f"busiest_{WINDOW_SECONDS}s_window_sliding": busiest(times, WINDOW_SECONDS),
        "busiest_5s_window_sliding": busiest(times, 5),
        "stripe_requests_per_charge_all_phases": round(run_requests / max(1, charges), 4),
        # 1,000,000 charges of the same shape at 10 requests/s (live): the budget's bound
        "projected_hours_1m_charges_at_10_per_s": round(run_requests / max(1, charges) * 1_000_000 / 10 / 3600, 2),
        "stripe_by_endpoint": stats,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(row, indent=2) + "\n")
    lines = [
        f"# Backfill benchmark, {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "",
        f"`python -m bench.backfill --charges {args.charges} --customers {args.customers} --rate {args.rate} "
        f"--latency-ms {args.latency_ms} --consumers {args.consumers}`: in-process (moto and the emulator "
        "in this process; their CPU measured apart from ours).",
        "",
        "| measure | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in row.items() if not isinstance(v, dict)),
    ]
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
