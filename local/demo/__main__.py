"""`python -m local.demo` (`make demo`): the whole story in the terminal, no browser needed.

Starts its own local stack (`python -m local.stack` on free ports, its log in a temporary file; a
running `make run` is never touched), seeds the demo account and visitors, connects the demo key
through the HTTP API, follows the backfill, makes live payments, a renewal and a refund through the
emulator's Stripe API, then prints revenue by source and the tier split from the API, with timings.
DEMO_CHARGES sets the account's size (default 10,000 charges; e.g. DEMO_CHARGES=500 for a quick run).
The stack's functions log warnings and errors only (PARAMETER_OVERRIDES=LogLevel=WARNING, unless set).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.net import free_port
from local.stack.auth import DEFAULT_SECRET
from local.stripe_emulator.control_client import EmulatorControl

from .story import run_demo
from .world import PROJECT, Api, DemoSize

READY_SECONDS = 90


@contextmanager
def own_stack(log_path: Path) -> Iterator[tuple[str, str]]:
    """`python -m local.stack` on free ports without the demo seed; yields (API URL, emulator URL)."""
    port, stripe_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "STRIPE_EMULATOR_PORT": str(stripe_port), "DEMO_SEED": "0"}
    env["LOCAL_JWT_SECRET"] = DEFAULT_SECRET
    # A log line per charge booked would be much of the backfill's work (bench/backfill.py): warnings only
    env.setdefault("PARAMETER_OVERRIDES", "LogLevel=WARNING")
    for name in ("STRIPE_API_BASE", "AWS_ENDPOINT_URL", "PUBLIC_BASE_URL", "MOTO_PORT"):
        env.pop(name, None)
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + READY_SECONDS
            while not _healthy(base_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise SystemExit(f"the local stack did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
            yield base_url, f"http://127.0.0.1:{stripe_port}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> None:
    size = DemoSize.from_env(os.environ.get("DEMO_CHARGES"))
    started = time.perf_counter()
    print(
        f"Ripples for Stripe, the demo: {size.customers:,} customers, ~{size.charges:,} charges, "
        f"{size.subscriptions:,} subscriptions, {size.visitors:,} visitors (DEMO_CHARGES={size.charges})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="ripples-demo-") as folder:
        log_path = Path(folder) / "stack.log"
        with own_stack(log_path) as (base_url, emulator_url):
            print(
                f"[{time.perf_counter() - started:6.1f} s] {'stack up':<16} {base_url} "
                f"(Stripe emulator {emulator_url}; its log: {log_path}, removed at the end)",
                flush=True,
            )
            api = Api(base_url, PROJECT, DEFAULT_SECRET)
            try:
                run_demo(api, EmulatorControl(emulator_url), size, started=started)
            except KeyboardInterrupt:
                print("\ninterrupted: stopping the stack", flush=True)
                raise SystemExit(130) from None
            except (RuntimeError, TimeoutError, OSError) as error:
                errors = [line for line in log_path.read_text(errors="replace").splitlines() if " ERROR " in line]
                print(f"\nthe demo failed: {error}", file=sys.stderr)
                print("\n".join(["the stack's errors (last 10):", *errors[-10:]]), file=sys.stderr)
                raise SystemExit(1) from None


if __name__ == "__main__":
    main()
