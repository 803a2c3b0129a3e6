"""Delivering a history to a project as Stripe would: signed webhooks, retried on 5xx, from many senders.

- `deliver_serial`: each step once, in the history's order, from one sender (the reference run).
- `deliver_parallel`: every event `copies` times, shuffled (seeded), from `threads` senders; the
  visitor PUTs once each at random places in the stream, but as one chain, each sent only after the
  one before it answered: a visitor's state (and which visitor identified first with an email) depends
  on the order of PUTs, which no webhook order may change, so both runs send the PUTs in one order.

Each webhook is signed at send time, exactly as Stripe signs (`Stripe-Signature: t=<now>,v1=<HMAC-SHA256
of "t.body" with the endpoint's secret>`). A 5xx answer or a connection error is retried with a short
exponential backoff, as Stripe retries (sooner: Stripe waits minutes to days), up to MAX_ATTEMPTS;
a 4xx, or a delivery that never succeeds, is a failure of the run.
"""

from __future__ import annotations

import hmac
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from .world import Step, StripeEvent, VisitorPut

MAX_ATTEMPTS = 10
BACKOFF_FIRST = 0.05  # seconds; doubled each retry
BACKOFF_MAX = 2.0
TIMEOUT = 60.0


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `body`, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class SendStats:
    """What the senders of one run saw."""

    sent: int = 0  # deliveries that ended in a 2xx (webhooks and visitor PUTs)
    webhooks: int = 0  # of which webhooks
    attempts: int = 0  # HTTP requests, retries included
    retried_5xx: int = 0
    retried_connection: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, each webhook attempt
    statuses: Counter[int] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)  # the webhook's `result`: booked, duplicate...
    failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def merge(self, other: SendStats) -> None:
        self.sent += other.sent
        self.webhooks += other.webhooks
        self.attempts += other.attempts
        self.retried_5xx += other.retried_5xx
        self.retried_connection += other.retried_connection
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.results.update(other.results)
        self.failures.extend(other.failures)

    @property
    def events_per_second(self) -> float:
        return self.webhooks / self.wall_seconds if self.wall_seconds else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile (0-100) of webhook attempt latency, in seconds (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


class Sender:
    """One sender (one thread): a keep-alive connection to the stack, its own statistics."""

    def __init__(self, base_url: str, project: str, secret: str, token: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.project = project
        self.secret = secret
        self.token = token
        self.stats = SendStats()
        self.connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except Exception:
            self.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, data

    def send(self, step: Step) -> None:
        """Deliver one step until a 2xx, retrying 5xx and connection errors with backoff."""
        webhook = isinstance(step, StripeEvent)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if isinstance(step, StripeEvent):
                path = f"/webhooks/stripe/{self.project}"
                body = step.body
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": sign(body, self.secret),
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                }
                method = "POST"
            else:
                path = f"/projects/{self.project}/visitors/{step.visitor_id}"
                body = json.dumps(step.body).encode()
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
                method = "PUT"
            self.stats.attempts += 1
            started = time.perf_counter()
            try:
                status, data = self._request(method, path, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                self.stats.retried_connection += 1
                error = f"{type(exc).__name__}: {exc}"
                status, data = 0, error.encode()
            if webhook:
                self.stats.latencies.append(time.perf_counter() - started)
            self.stats.statuses[status] += 1
            if 200 <= status < 300:
                self.stats.sent += 1
                if webhook:
                    self.stats.webhooks += 1
                    try:
                        self.stats.results[str(json.loads(data).get("result"))] += 1
                    except (ValueError, AttributeError):
                        self.stats.results["?"] += 1
                return
            if 400 <= status < 500:
                self.stats.failures.append(f"{step.label}: {status} {data[:300]!r}")
                return
            if status >= 500:
                self.stats.retried_5xx += 1
            if attempt < MAX_ATTEMPTS:
                time.sleep(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
        self.stats.failures.append(f"{step.label}: no 2xx after {MAX_ATTEMPTS} attempts (last {status} {data[:200]!r})")


def deliver_serial(base_url: str, project: str, secret: str, token: str, steps: Sequence[Step]) -> SendStats:
    """Each step once, in order, one at a time."""
    sender = Sender(base_url, project, secret, token)
    started = time.perf_counter()
    try:
        for step in steps:
            sender.send(step)
    finally:
        sender.close()
    sender.stats.wall_seconds = time.perf_counter() - started
    return sender.stats


@dataclass(frozen=True)
class _Item:
    step: Step
    chain: int | None = None  # position in the PUT chain (PUTs only)


def parallel_plan(steps: Sequence[Step], copies: int, rng: random.Random) -> list[_Item]:
    """Every event `copies` times, shuffled; the PUTs once each at random places, in their order."""
    events = [_Item(s) for s in steps if isinstance(s, StripeEvent) for _ in range(copies)]
    rng.shuffle(events)
    puts = [s for s in steps if isinstance(s, VisitorPut)]
    total = len(events) + len(puts)
    put_positions = set(rng.sample(range(total), len(puts)))
    plan: list[_Item] = []
    next_event, next_put = iter(events), iter(enumerate(puts))
    for position in range(total):
        if position in put_positions:
            chain, put = next(next_put)
            plan.append(_Item(put, chain))
        else:
            plan.append(next(next_event))
    return plan


def deliver_parallel(
    base_url: str,
    project: str,
    secret: str,
    token: str,
    steps: Sequence[Step],
    *,
    threads: int,
    copies: int,
    seed: int,
) -> SendStats:
    """The steps as `parallel_plan` orders them, taken in turn by `threads` senders."""
    plan = parallel_plan(steps, copies, random.Random(seed))
    chain_done = [threading.Event() for item in plan if item.chain is not None]
    lock = threading.Lock()
    position = 0
    senders = [Sender(base_url, project, secret, token) for _ in range(threads)]
    crashed: list[BaseException] = []

    def take() -> _Item | None:
        nonlocal position
        with lock:
            if position >= len(plan):
                return None
            item = plan[position]
            position += 1
            return item

    def work(sender: Sender) -> None:
        try:
            while (item := take()) is not None:
                if item.chain is None:
                    sender.send(item.step)
                    continue
                if item.chain > 0:  # the PUT before it was taken earlier: wait until it answered
                    chain_done[item.chain - 1].wait()
                try:
                    sender.send(item.step)
                finally:
                    chain_done[item.chain].set()
        except BaseException as exc:  # reported by the caller; a dead sender must not hang the chain
            crashed.append(exc)
            for done in chain_done:
                done.set()
        finally:
            sender.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(s,), name=f"sender-{i}") for i, s in enumerate(senders)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stats = SendStats(wall_seconds=time.perf_counter() - started)
    for sender in senders:
        stats.merge(sender.stats)
    stats.failures.extend(f"sender crashed: {exc!r}" for exc in crashed)
    return stats
