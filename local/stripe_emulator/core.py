"""The emulator's state (accounts, keys, settings, counters) and the per-request context handlers see."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import fixtures
from .keys import PRODUCT_PERMISSIONS, ApiKey, make_key
from .store import Account, Clock, Collection, Space, new_id
from .wire import StripeError, not_found

API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1.0 pins
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
MAX_LATENCY_MS = 60_000  # beyond the SDK's timeouts any test would use: a mistake, not a setting


def latency_remainder(latency_ms: int, elapsed: float) -> float:
    """Seconds still to wait so that a request `elapsed` seconds old takes at least `latency_ms`."""
    return max(0.0, latency_ms / 1000 - elapsed)


@dataclass
class RateLimit:
    """Token buckets per account: one for all requests, one per endpoint."""

    global_rate: float
    endpoint_rate: float
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, endpoint: str) -> str | None:
        """Spend a token; return the Stripe-Rate-Limited-Reason when none is left."""
        now = time.monotonic()
        if not self._spend("*", self.global_rate, now):
            return "global-rate"
        if not self._spend(endpoint, self.endpoint_rate, now):
            return "endpoint-rate"
        return None

    def _spend(self, bucket: str, rate: float, now: float) -> bool:
        if rate <= 0:
            return True
        tokens, at = self._buckets.get(bucket, (rate, now))
        tokens = min(rate, tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[bucket] = (tokens, now)
            return False
        self._buckets[bucket] = (tokens - 1, now)
        return True


@dataclass
class Fault:
    """Answer the next `remaining` requests to `endpoint` with an error, for retry tests."""

    endpoint: str
    status: int
    remaining: int
    should_retry: bool | None = None


class Emulator:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, ApiKey] = {}
        self.rate_limits: dict[str, RateLimit] = {}
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.stats: dict[str, Counter[str]] = defaultdict(Counter)
        self.latency_ms: dict[str, int] = {}  # least time an API request of the account takes
        from .webhooks import Deliverer  # late: webhooks needs core's types

        self.deliverer = Deliverer(self)

    # ---- accounts and keys ---------------------------------------------------------------

    def create_account(self, livemode: bool = False) -> dict[str, str]:
        with self.lock:
            account = Account(new_id("acct_", 16), self.clock.now())
            self.accounts[account.id] = account
            secret = self.add_key(account.id, livemode, None)
            restricted = self.add_key(account.id, livemode, frozenset(PRODUCT_PERMISSIONS))
            return {"account": account.id, "secret_key": secret.secret, "restricted_key": restricted.secret}

    def add_key(self, account_id: str, livemode: bool, permissions: frozenset[str] | None) -> ApiKey:
        with self.lock:
            if account_id not in self.accounts:
                raise not_found("account", account_id, "account")
            key = make_key(account_id, livemode, permissions)
            self.keys[key.secret] = key
            return key

    def space_of(self, key: ApiKey) -> Space:
        return self.accounts[key.account_id].space(key.livemode)

    # ---- guards run before every API request ---------------------------------------------

    def check_limits(self, account_id: str, endpoint: str) -> None:
        limit = self.rate_limits.get(account_id)
        if limit is not None:
            reason = limit.take(endpoint)
            if reason is not None:
                raise StripeError(
                    429,
                    "Request rate limit exceeded. Learn more about rate limits here "
                    "https://stripe.com/docs/rate-limits.",
                    code="rate_limit",
                    headers={"Stripe-Rate-Limited-Reason": reason},
                )
        for fault in self.faults.get(account_id, []):
            if fault.remaining > 0 and fault.endpoint in ("*", endpoint):
                fault.remaining -= 1
                headers = {}
                if fault.should_retry is not None:
                    headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
                raise StripeError(
                    fault.status,
                    "An error occurred with our connection to Stripe (injected by the emulator).",
                    type="api_error",
                    headers=headers,
                )


@dataclass
class Context:
    """What a handler gets: the caller's space and key, its parameters, and ways to record changes."""

    emulator: Emulator
    key: ApiKey
    space: Space
    params: dict[str, Any]
    path_args: dict[str, str]
    request_id: str
    idempotency_key: str | None

    @property
    def now(self) -> int:
        return self.emulator.clock.now()

    @property
    def livemode(self) -> bool:
        return self.space.livemode

    def collection(self, name: str) -> Collection:
        return self.space[name]

    def build(self, resource: str, prefix: str, **fields: Any) -> dict[str, Any]:
        """A new object with a fresh id and, where Stripe's object has them, `created` now and this
        space's livemode (refunds and subscription items have no `livemode`, line items no `created`)."""
        keys = fixtures.fixture_keys(resource)
        if "created" in keys:
            fields.setdefault("created", self.now)
        if "livemode" in keys:
            fields.setdefault("livemode", self.livemode)
        fields.setdefault("id", new_id(prefix))
        return fixtures.build(resource, **fields)

    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an event for a state change and queue it for every subscribed endpoint."""
        data: dict[str, Any] = {"object": orjson.loads(orjson.dumps(obj))}  # a snapshot
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        endpoints = [
            we
            for we in self.space["webhook_endpoints"].iter_newest_first()
            if we["status"] == "enabled" and ("*" in we["enabled_events"] or event_type in we["enabled_events"])
        ]
        event = fixtures.build(
            "event",
            id=new_id("evt_"),
            created=self.now,
            livemode=self.livemode,
            api_version=API_VERSION,
            data=data,
            type=event_type,
            pending_webhooks=len(endpoints),
            request={"id": self.request_id, "idempotency_key": self.idempotency_key},
        )
        self.space["events"].save(event)
        self.emulator.deliverer.enqueue(self.space, event, endpoints)
        return event
