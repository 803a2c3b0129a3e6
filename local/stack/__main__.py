"""`python -m local.stack` (`make run`): the local stack until Ctrl-C or SIGTERM.

Environment: PORT (HTTP API, default 8000), MOTO_PORT (default: a free port), STRIPE_EMULATOR_PORT
(default 12111), STRIPE_API_BASE (use that Stripe, start no emulator), PUBLIC_BASE_URL (default the
HTTP API's URL), LOCAL_JWT_SECRET (default `local-dev-secret`), PARAMETER_OVERRIDES (`Name=value ...`
for the template's parameters, as `sam deploy --parameter-overrides`), TEMPLATE (default template.yaml),
DEMO_SEED (`1`: once ready, seed the emulator with the demo account and project `demo`'s visitors in
the background, then print the key to paste; `make run` sets it, `DEMO_SEED=0 make run` does not; never
with STRIPE_API_BASE), DEMO_CHARGES (the demo account's size, default 10,000 charges).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from local.demo.world import PROJECT, Api, DemoSize, seed_demo
from local.stripe_emulator.control_client import EmulatorControl

from .auth import secret_from
from .runner import RunningStack, start_stack
from .template import DEFAULT_TEMPLATE


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise SystemExit(f"{name} must be a port number, not {value!r}")
    return int(value)


def parameter_overrides(text: str) -> dict[str, str]:
    """`Name=value Other="a b"` -> {"Name": "value", "Other": "a b"}."""
    overrides = {}
    for item in shlex.split(text):
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise SystemExit(f"PARAMETER_OVERRIDES: {item!r} is not Name=value")
        overrides[name] = value
    return overrides


def options_from(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "port": _port(environ, "PORT", 8000),
        "moto_port": _port(environ, "MOTO_PORT", 0),
        "stripe_emulator_port": _port(environ, "STRIPE_EMULATOR_PORT", 12111),
        "stripe_api_base": environ.get("STRIPE_API_BASE") or None,
        "public_base_url": environ.get("PUBLIC_BASE_URL") or None,
        "jwt_secret": secret_from(environ),
        "template_path": environ.get("TEMPLATE") or DEFAULT_TEMPLATE,
        "parameters": parameter_overrides(environ.get("PARAMETER_OVERRIDES", "")),
    }


def demo_wanted(environ: Mapping[str, str]) -> bool:
    return environ.get("DEMO_SEED", "0").strip().lower() not in ("", "0", "false", "no", "off")


def seed_demo_in_background(stack: RunningStack, environ: Mapping[str, str]) -> threading.Thread:
    """Seed the demo account and visitors once the stack serves, then print what to paste."""
    size = DemoSize.from_env(environ.get("DEMO_CHARGES"))
    api = Api(stack.base_url, PROJECT, secret_from(environ))
    print(
        f"Demo: seeding a Stripe account ({size.customers:,} customers, ~{size.charges:,} charges, "
        f"{size.subscriptions:,} subscriptions) and {size.visitors:,} visitors of project `{PROJECT}`...",
        flush=True,
    )

    def run() -> None:
        started = time.perf_counter()
        try:
            world = seed_demo(api, EmulatorControl(stack.stripe_url), size)
        except Exception:
            logging.getLogger("local.demo").exception("demo seeding failed")
            return
        seeded = world.seeded
        print(
            f"Demo ready in {time.perf_counter() - started:.1f} s (emulator {world.seconds['emulator']:.1f} s, "
            f"visitors {world.seconds['visitors']:.1f} s): {seeded['customers']:,} customers, "
            f"{world.charges:,} charges, {seeded['refunds']:,} refunds, {seeded['subscriptions']:,} subscriptions, "
            f"{len(world.visitors):,} visitors\n"
            f"  open   {stack.base_url}/?project={PROJECT}\n"
            f"  paste  {world.account.restricted_key}   (the demo account's restricted key)\n"
            f"  token  make token PROJECT={PROJECT}",
            flush=True,
        )

    thread = threading.Thread(target=run, name="demo-seed", daemon=True)
    thread.start()
    return thread


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request lines
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = start_stack(**options_from(os.environ))
    print(f"HTTP API  {stack.base_url}", flush=True)
    print(f"moto      {stack.moto_url}", flush=True)
    print(f"Stripe    {stack.stripe_url}{'' if stack.emulator else ' (STRIPE_API_BASE)'}", flush=True)
    print("Ctrl-C stops the stack; `make token PROJECT=<id>` prints a dashboard token.", flush=True)
    if stack.emulator is not None and demo_wanted(os.environ):
        seed_demo_in_background(stack, os.environ)
    while not stopping.wait(0.5):
        pass
    logging.getLogger("local.stack").info("stopping")
    stack.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
