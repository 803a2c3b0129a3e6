"""Fixtures shared by every test: the Stripe emulator served on a free port, accounts, receivers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.server import RunningEmulator, start


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    running = start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def control(emulator: RunningEmulator) -> EmulatorControl:
    return EmulatorControl(emulator.base_url)


@pytest.fixture
def account(control: EmulatorControl) -> EmulatorAccount:
    """A fresh, isolated emulator account (test mode)."""
    return control.create_account()


@pytest.fixture
def stripe_client(control: EmulatorControl, account: EmulatorAccount) -> stripe.StripeClient:
    """The official SDK with the account's secret key."""
    return control.client(account.secret_key)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTP endpoint that records what it is sent and answers with scripted status codes."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec = state["receiver"]
            with rec.lock:
                rec.received.append(Received(body, dict(self.headers.items())))
            status = rec.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    state["receiver"] = Receiver(f"http://{host!s}:{port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
