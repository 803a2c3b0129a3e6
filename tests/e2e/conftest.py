"""The real local stack (`python -m local.stack`, as `make run` starts it), once for all e2e tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.net import free_port
from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl

JWT_SECRET = "e2e-secret-of-at-least-thirty-two-bytes"


@dataclass
class Stack:
    base_url: str
    control: EmulatorControl

    def call(self, method: str, path: str, body: Any = None, project: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if project:
            headers["Authorization"] = f"Bearer {issue_token([project], JWT_SECRET)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port, stripe_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "STRIPE_EMULATOR_PORT": str(stripe_port),
        "LOCAL_JWT_SECRET": JWT_SECRET,
    }
    env.pop("STRIPE_API_BASE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    log_path = tmp_path_factory.mktemp("stack") / "stack.log"
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(f"the local stack did not become healthy:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield Stack(base_url, EmulatorControl(f"http://127.0.0.1:{stripe_port}"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()
    # Every AWS call the stack's functions made was allowed by their roles (local.iam logs denials)
    denials = [line for line in log_path.read_text(errors="replace").splitlines() if "AccessDenied" in line]
    assert not denials, "\n".join(denials)
