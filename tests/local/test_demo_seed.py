"""`make run`'s demo seed (DEMO_SEED=1): the emulator gets the demo account, project `demo` its
visitors through the API, nothing is connected, and the key to paste is printed once it is done."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.demo.world import DemoSize, demo_visitors
from local.net import free_port
from local.stack.__main__ import demo_wanted
from local.stack.auth import issue_token
from local.stripe_emulator.server import RunningEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "demo-seed-test-secret-of-32-bytes-at-least"


@contextmanager
def stack_process(log: Path, **env: str) -> Iterator[int]:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("MOTO_PORT", "STRIPE_API_BASE", "PUBLIC_BASE_URL")}
    environ |= {"PORT": str(port), "STRIPE_EMULATOR_PORT": str(free_port()), "LOCAL_JWT_SECRET": JWT_SECRET}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=REPO_ROOT,
            env=environ | env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def wait_for(log: Path, pattern: str, seconds: float = 90) -> str:
    deadline = time.monotonic() + seconds
    while pattern not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return log.read_text()


def get(port: int, path: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {issue_token(['demo'], JWT_SECRET)}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_demo_seed_is_asked_for() -> None:
    assert not demo_wanted({})
    assert not demo_wanted({"DEMO_SEED": "0"})
    assert demo_wanted({"DEMO_SEED": "1"})
    assert DemoSize.from_env(None).charges == 10_000
    assert DemoSize.from_env("10,000") == DemoSize(10_000)
    size = DemoSize()
    assert (size.customers, size.subscriptions, size.visitors) == (2_000, 300, 600)


def test_make_runs_demo_seed_prints_the_key_once_visitors_exist(tmp_path: Path) -> None:
    log = tmp_path / "stack.log"
    # Given the stack started as `make run` starts it, with a small demo
    with stack_process(log, DEMO_SEED="1", DEMO_CHARGES="100") as port:
        # When the seed is done, it prints the page and the restricted key
        text = wait_for(log, "Demo ready")
        assert f"open   http://127.0.0.1:{port}/?project=demo" in text
        assert re.search(r"paste  rk_test_\w+", text)
        # Then project demo has the visitors the sessions name, and is not connected
        visitors = demo_visitors(DemoSize(100))
        assert len(visitors) == 6
        for visitor in visitors:
            shown = get(port, f"/projects/demo/visitors/{visitor.visitor_id}")
            assert shown["email"] == visitor.email
            assert shown["acquisition"]["source"] == visitor.source  # type: ignore[index]
        assert get(port, "/projects/demo/integrations/stripe")["status"] == "disconnected"


def test_no_demo_seed_with_another_stripe(tmp_path: Path, emulator: RunningEmulator) -> None:
    log = tmp_path / "stack.log"
    with stack_process(log, DEMO_SEED="1", STRIPE_API_BASE=emulator.base_url):
        text = wait_for(log, "Ctrl-C stops the stack")
        time.sleep(0.5)
    assert "Demo" not in log.read_text(), text
