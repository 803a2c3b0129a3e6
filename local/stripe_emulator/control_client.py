"""A small client for the emulator's `/_emulator/` control API, for tests, benchmarks and the stack."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import stripe

from .core import API_VERSION


@dataclass
class EmulatorAccount:
    id: str
    secret_key: str
    restricted_key: str


class EmulatorControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def create_account(self, livemode: bool = False) -> EmulatorAccount:
        body = self.call("POST", "accounts", {"livemode": livemode})
        return EmulatorAccount(body["account"], body["secret_key"], body["restricted_key"])

    def create_key(self, account: str, permissions: list[str], livemode: bool = False) -> str:
        key: str = self.call("POST", "keys", {"account": account, "permissions": permissions, "livemode": livemode})[
            "key"
        ]
        return key

    def revoke_key(self, key: str, status: str = "revoked") -> None:
        self.call("POST", "keys/revoke", {"key": key, "status": status})

    def stats(self, account: str) -> dict[str, int]:
        requests: dict[str, int] = self.call("GET", f"stats?account={account}")["requests"]
        return requests

    def reset_stats(self, account: str) -> None:
        self.call("DELETE", f"stats?account={account}")

    def delivery(self, account: str, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "delivery", {"account": account, **settings})
        return result

    def deliveries(self, account: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"deliveries?account={account}")
        return result

    def wait_for_deliveries(self, account: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Every delivery attempt once nothing is queued any more (retries included)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.deliveries(account)
            if state["pending"] == 0:
                attempts: list[dict[str, Any]] = state["attempts"]
                return attempts
            if time.monotonic() > deadline:
                raise TimeoutError(f"{state['pending']} deliveries still pending")
            time.sleep(0.02)

    def rate_limit(self, account: str, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "rate_limit", {"account": account, **settings})
        return result

    def set_latency(self, account: str, ms: int) -> int:
        """Make every API request of `account` take at least `ms` milliseconds (0: off)."""
        result: int = self.call("POST", "latency", {"account": account, "ms": ms})["ms"]
        return result

    def latency(self, account: str) -> int:
        result: int = self.call("GET", f"latency?account={account}")["ms"]
        return result

    def fault(self, account: str, endpoint: str, status: int = 500, count: int = 1) -> None:
        self.call("POST", "faults", {"account": account, "endpoint": endpoint, "status": status, "count": count})

    def advance_clock(self, seconds: int) -> int:
        now: int = self.call("POST", "clock", {"advance": seconds})["now"]
        return now

    def seed(self, account: str, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "seed", {"account": account, **spec})
        return result

    def client(self, api_key: str, **options: Any) -> stripe.StripeClient:
        """The official SDK pointed at this emulator, pinned to the API version the code speaks."""
        options.setdefault("max_network_retries", 0)
        return stripe.StripeClient(
            api_key,
            base_addresses={"api": self.base_url},
            stripe_version=API_VERSION,
            **options,
        )
