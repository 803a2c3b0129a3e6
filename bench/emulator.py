"""Emulator benchmark: seed 100,000 charges, then list them all in pages of 100 with customers expanded.

The emulator runs in its own process (as under `make run`), so the figures are the server's, not
the GIL shared with the client. Two clients read the same pages: the official SDK (what a backfill
pays for, object construction included) and plain HTTP with JSON parsing (what the emulator serves).
Run: `make bench-emulator` (BENCH_CUSTOMERS / BENCH_CHARGES_PER_CUSTOMER to resize).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from local.net import free_port
from local.stripe_emulator.control_client import EmulatorControl

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
CHARGES_PER_CUSTOMER = int(os.environ.get("BENCH_CHARGES_PER_CUSTOMER", "10"))


@contextmanager
def emulator_process() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "local.stripe_emulator", "--port", str(port)])  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/_emulator/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def list_with_sdk(control: EmulatorControl, key: str) -> tuple[int, int, float]:
    client = control.client(key)
    pages = charges = 0
    cursor = None
    started = time.perf_counter()
    while True:
        params: dict[str, object] = {"limit": 100, "expand": ["data.customer"]}
        if cursor:
            params["starting_after"] = cursor
        page = client.v1.charges.list(params=params)  # type: ignore[arg-type]
        pages += 1
        charges += len(page.data)
        assert all(not isinstance(c.customer, str) for c in page.data), "customers must be expanded"
        if not page.has_more:
            break
        cursor = page.data[-1].id
    return pages, charges, time.perf_counter() - started


def list_with_http(base: str, key: str) -> tuple[int, int, float]:
    pages = charges = 0
    cursor = ""
    started = time.perf_counter()
    while True:
        query = "limit=100&expand[]=data.customer" + (f"&starting_after={cursor}" if cursor else "")
        request = urllib.request.Request(f"{base}/v1/charges?{query}", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as response:
            page = json.loads(response.read())
        pages += 1
        charges += len(page["data"])
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    return pages, charges, time.perf_counter() - started


def main() -> None:
    total = CUSTOMERS * CHARGES_PER_CUSTOMER
    print(f"emulator benchmark: {CUSTOMERS} customers x {CHARGES_PER_CUSTOMER} charges = {total} charges")
    with emulator_process() as base:
        control = EmulatorControl(base)
        account = control.create_account()
        started = time.perf_counter()
        seeded = control.seed(
            account.id,
            customers=CUSTOMERS,
            charges_per_customer=CHARGES_PER_CUSTOMER,
            currencies=["usd", "eur", "jpy", "kwd"],
            refund_rate=0.1,
            failure_rate=0.05,
            checkout_rate=0.5,
            visitor_id_rate=0.5,
        )
        seed_wall = time.perf_counter() - started
        print(f"seed: {seeded} in {seed_wall:.2f} s wall ({seeded['charges'] / seed_wall:,.0f} charges/s)")

        for name, run in (
            ("sdk ", lambda: list_with_sdk(control, account.restricted_key)),
            ("http", lambda: list_with_http(base, account.restricted_key)),
        ):
            control.reset_stats(account.id)
            pages, charges, seconds = run()
            assert charges == total, f"listed {charges} of {total} charges"
            stats = control.stats(account.id)
            print(
                f"list ({name}): {charges} charges in {pages} pages, {seconds:.2f} s, "
                f"{pages / seconds:.1f} pages/s, {charges / seconds:,.0f} charges/s; requests {stats}"
            )


if __name__ == "__main__":
    main()
