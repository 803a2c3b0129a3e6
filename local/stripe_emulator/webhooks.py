"""Webhook delivery: signed as Stripe signs, asynchronous, retried with backoff, in test-chosen orders.

Each account has its own delivery lane (a thread with a schedule), so one slow receiver does not hold
up another account's events. Modes, set per account through `POST /_emulator/delivery`:
- `order`: "in_order" (default) or "shuffled" (events held until `window` of them or `window_seconds`
  have gathered, then sent in random order);
- `duplicate_probability`: each delivery is sent a second time with this probability;
- `copies`: every delivery is sent this many times; `tamper`: one extra copy whose body is altered
  after signing (a receiver must refuse it);
- `retries` and `retry_delays`: how often and when a non-2xx answer or connection error is retried.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Emulator
    from .store import Space

MAX_RECORDS = 20_000


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value for `payload`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass
class DeliverySettings:
    order: str = "in_order"
    window: int = 5
    window_seconds: float = 0.2
    duplicate_probability: float = 0.0
    copies: int = 1
    tamper: bool = False
    retries: int = 3
    retry_delays: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0])
    timeout: float = 5.0
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if name == "account":
                continue
            if not hasattr(self, name):
                raise ValueError(f"unknown delivery setting: {name}")
            setattr(self, name, value)
        if self.order not in ("in_order", "shuffled"):
            raise ValueError("order must be in_order or shuffled")
        if not self.retry_delays or any(d < 0 for d in self.retry_delays):
            raise ValueError("retry_delays must be a non-empty list of seconds")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Delivery:
    event_id: str
    event_type: str
    endpoint_id: str
    payload: bytes
    attempt: int = 0
    copy: str = "original"  # original | duplicate | tampered


class Lane:
    """The deliveries of one account, sent one at a time by a daemon thread."""

    def __init__(self, emulator: Emulator, account_id: str) -> None:
        self.emulator = emulator
        self.account_id = account_id
        self.settings = DeliverySettings()
        self.rng = random.Random()
        self.cond = threading.Condition()
        self.schedule: list[tuple[float, int, Delivery]] = []
        self.window: list[Delivery] = []
        self.window_deadline = 0.0
        self.in_flight = 0
        self.records: list[dict[str, Any]] = []
        self.seq = itertools.count()
        self.thread = threading.Thread(target=self._run, name=f"webhooks-{account_id}", daemon=True)
        self.thread.start()

    def configure(self, changes: dict[str, Any]) -> None:
        with self.cond:
            self.settings.update(changes)
            if self.settings.seed is not None:
                self.rng.seed(self.settings.seed)

    def add(self, deliveries: list[Delivery]) -> None:
        with self.cond:
            expanded: list[Delivery] = []
            for d in deliveries:
                expanded.append(d)
                extra = self.settings.copies - 1
                if self.rng.random() < self.settings.duplicate_probability:
                    extra += 1
                expanded.extend(
                    Delivery(d.event_id, d.event_type, d.endpoint_id, d.payload, copy="duplicate") for _ in range(extra)
                )
                if self.settings.tamper:
                    expanded.append(Delivery(d.event_id, d.event_type, d.endpoint_id, d.payload, copy="tampered"))
            now = time.monotonic()
            if self.settings.order == "shuffled":
                if not self.window:
                    self.window_deadline = now + self.settings.window_seconds
                self.window.extend(expanded)
                if len(self.window) >= self.settings.window:
                    self._flush_window(now)
            else:
                for d in expanded:
                    self._push(now, d)
            self.cond.notify()

    def pending(self) -> int:
        with self.cond:
            return len(self.schedule) + len(self.window) + self.in_flight

    def _flush_window(self, now: float) -> None:
        self.rng.shuffle(self.window)
        for d in self.window:
            self._push(now, d)
        self.window = []

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self.schedule, (due, next(self.seq), delivery))

    def _run(self) -> None:
        while True:
            with self.cond:
                delivery = self._next_due()
                self.in_flight += 1
            try:
                self._attempt(delivery)
            finally:
                with self.cond:
                    self.in_flight -= 1

    def _next_due(self) -> Delivery:
        """Wait (holding the condition) until a delivery is due, and take it."""
        while True:
            now = time.monotonic()
            if self.window and now >= self.window_deadline:
                self._flush_window(now)
            wake = [
                t
                for t in (self.schedule[0][0] if self.schedule else None, self.window_deadline if self.window else None)
                if t is not None
            ]
            if self.schedule and self.schedule[0][0] <= now:
                return heapq.heappop(self.schedule)[2]
            self.cond.wait(timeout=(min(wake) - now) if wake else None)

    def _attempt(self, delivery: Delivery) -> None:
        target = self.emulator.deliverer.target(self.account_id, delivery)
        if target is None:  # endpoint deleted or disabled since the event
            return
        url, secret = target
        delivery.attempt += 1
        timestamp = self.emulator.clock.now()
        header = sign(delivery.payload, secret, timestamp)
        body = _tampered(delivery.payload) if delivery.copy == "tampered" else delivery.payload
        status, error = _post(url, body, header, self.settings.timeout)
        ok = status is not None and 200 <= status < 300
        with self.cond:
            record = {
                "event_id": delivery.event_id,
                "type": delivery.event_type,
                "endpoint": delivery.endpoint_id,
                "attempt": delivery.attempt,
                "copy": delivery.copy,
                "status": status,
                "error": error,
                "at": time.time(),
            }
            self.records.append(record)
            del self.records[:-MAX_RECORDS]
            first_success = ok and delivery.copy == "original"
            retryable = delivery.copy != "tampered" and delivery.attempt <= self.settings.retries
            if not ok and retryable:
                delays = self.settings.retry_delays
                delay = delays[min(delivery.attempt - 1, len(delays) - 1)]
                self._push(time.monotonic() + delay, delivery)
        # Outside the lane's condition: request threads take the emulator lock, then the lane's.
        if first_success:
            self.emulator.deliverer.mark_delivered(self.account_id, delivery.event_id)


def _tampered(payload: bytes) -> bytes:
    """The same event with its money changed, as an attacker replaying a signed body would try."""
    event = json.loads(payload)
    obj = event.get("data", {}).get("object", {})
    if isinstance(obj.get("amount"), int):
        obj["amount"] = obj["amount"] * 100 + 1
    obj.setdefault("metadata", {})
    if isinstance(obj["metadata"], dict):
        obj["metadata"]["tampered"] = "true"
    return json.dumps(event, indent=2).encode()


def _post(url: str, body: bytes, signature: str, timeout: float) -> tuple[int | None, str | None]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Cache-Control": "no-cache",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, type(exc).__name__


class Deliverer:
    """Routes each event to the lanes of its account and keeps the per-account settings."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.lanes: dict[str, Lane] = {}
        self._lock = threading.Lock()

    def lane(self, account_id: str) -> Lane:
        with self._lock:
            if account_id not in self.lanes:
                self.lanes[account_id] = Lane(self.emulator, account_id)
            return self.lanes[account_id]

    def enqueue(self, space: Space, event: dict[str, Any], endpoints: list[dict[str, Any]]) -> None:
        deliveries = []
        for endpoint in endpoints:
            rendered = dict(event, api_version=endpoint.get("api_version") or event["api_version"])
            payload = json.dumps(rendered, indent=2).encode()
            deliveries.append(Delivery(event["id"], event["type"], endpoint["id"], payload))
        if deliveries:
            self.lane(space.account_id).add(deliveries)

    def target(self, account_id: str, delivery: Delivery) -> tuple[str, str] | None:
        with self.emulator.lock:
            account = self.emulator.accounts.get(account_id)
            if account is None:
                return None
            for space in account.spaces.values():
                endpoint = space["webhook_endpoints"].get(delivery.endpoint_id)
                if endpoint is not None and endpoint["status"] == "enabled":
                    return endpoint["url"], space.webhook_secrets[endpoint["id"]]
            return None

    def mark_delivered(self, account_id: str, event_id: str) -> None:
        with self.emulator.lock:
            for space in self.emulator.accounts[account_id].spaces.values():
                event = space["events"].get(event_id)
                if event is not None and event["pending_webhooks"] > 0:
                    event["pending_webhooks"] -= 1
