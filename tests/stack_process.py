"""The real local stack (`python -m local.stack`, as `make run` starts it) in a subprocess, for the
tests that drive it over HTTP: free ports, healthy before use, stopped after, and every AWS call its
functions made allowed by their roles (local.iam logs each denial)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.net import free_port


@dataclass(frozen=True)
class StackProcess:
    base_url: str
    stripe_url: str  # the Stripe emulator it started
    moto_url: str
    log_path: Path
    env: dict[str, str]  # what it was started with (PORT, MOTO_PORT, ...): for `make` commands beside it


# Variables of a developer's shell that would point the stack elsewhere (another Stripe, AWS, template).
_ELSEWHERE = ("STRIPE_API_BASE", "AWS_ENDPOINT_URL", "PUBLIC_BASE_URL", "STRIPE_RATE_BUDGET", "TEMPLATE")


@contextmanager
def stack_process(log_dir: Path, jwt_secret: str, **settings: str) -> Iterator[StackProcess]:
    """The stack with `settings` added to its environment (the demo seed off unless given)."""
    port, moto_port, stripe_port = free_port(), free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if name not in _ELSEWHERE}
    env |= {
        "PORT": str(port),
        "MOTO_PORT": str(moto_port),
        "STRIPE_EMULATOR_PORT": str(stripe_port),
        "LOCAL_JWT_SECRET": jwt_secret,
        "DEMO_SEED": "0",
        **settings,
    }
    log_path = log_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], env=env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base_url, process, log_path)
            moto_url, stripe_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{stripe_port}"
            yield StackProcess(base_url, stripe_url, moto_url, log_path, env)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
    denials = [line for line in log_path.read_text(errors="replace").splitlines() if "AccessDenied" in line]
    assert not denials, "\n".join(denials)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the local stack did not become healthy:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)
