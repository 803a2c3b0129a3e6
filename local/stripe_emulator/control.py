"""The emulator's control API under `/_emulator/` (not Stripe's): accounts, keys, counters, settings.

JSON in and out; errors are `{"error": {"message": ...}}` with status 400 or 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from .core import MAX_LATENCY_MS, Emulator, Fault, RateLimit
from .keys import validate_permissions
from .seeder import SeedSpec, seed
from .wire import StripeError

Handler = Callable[[Emulator, dict[str, Any]], Any]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def _control(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[(method, path)] = handler
        return handler

    return register


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def dispatch(emulator: Emulator, request: Request) -> Response:
    handler = _HANDLERS.get((request.method, request.path.rstrip("/")))
    try:
        if handler is None:
            raise ControlError(404, f"no control route {request.method} {request.path}")
        body: dict[str, Any] = dict(request.args.items())
        if request.data:
            loaded = json.loads(request.data)
            if not isinstance(loaded, dict):
                raise ControlError(400, "body must be a JSON object")
            body.update(loaded)
        result = handler(emulator, body)
        return Response(json.dumps(result), status=200, content_type="application/json")
    except (ControlError, StripeError) as exc:
        status = exc.status
        message = exc.message if isinstance(exc, StripeError) else str(exc)
    except (ValueError, TypeError, KeyError) as exc:
        status, message = 400, f"invalid request: {exc}"
    return Response(json.dumps({"error": {"message": message}}), status=status, content_type="application/json")


def _account(emulator: Emulator, body: dict[str, Any]) -> str:
    account_id = body.get("account")
    if not isinstance(account_id, str):
        raise ControlError(400, "account is required")
    if account_id not in emulator.accounts:
        raise ControlError(404, f"no such account: {account_id}")
    return account_id


@_control("GET", "/_emulator/health")
def health(emulator: Emulator, body: dict[str, Any]) -> Any:
    return {"ok": True, "accounts": len(emulator.accounts)}


@_control("POST", "/_emulator/accounts")
def create_account(emulator: Emulator, body: dict[str, Any]) -> Any:
    """A new account with a secret key and a restricted key holding exactly Ripples' permissions."""
    return emulator.create_account(livemode=bool(body.get("livemode", False)))


@_control("POST", "/_emulator/keys")
def create_key(emulator: Emulator, body: dict[str, Any]) -> Any:
    account_id = _account(emulator, body)
    permissions = body.get("permissions")
    if not isinstance(permissions, list):
        raise ControlError(400, "permissions must be a list of rak_* names")
    key = emulator.add_key(account_id, bool(body.get("livemode", False)), validate_permissions(permissions))
    return {"key": key.secret}


@_control("POST", "/_emulator/keys/revoke")
def revoke_key(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Revoke (401 "Invalid API Key") or expire (401 "Expired API Key") a key."""
    status = body.get("status", "revoked")
    if status not in ("revoked", "expired"):
        raise ControlError(400, "status must be revoked or expired")
    with emulator.lock:
        key = emulator.keys.get(str(body.get("key")))
        if key is None:
            raise ControlError(404, "no such key")
        key.status = status
    return {"status": status}


@_control("GET", "/_emulator/stats")
def stats(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Requests per account, by method and path template (e.g. `GET /v1/charges/{id}`)."""
    account_id = _account(emulator, body)
    with emulator.lock:
        counts = dict(emulator.stats[account_id])
    return {"account": account_id, "requests": counts, "total": sum(counts.values())}


@_control("DELETE", "/_emulator/stats")
def reset_stats(emulator: Emulator, body: dict[str, Any]) -> Any:
    account_id = _account(emulator, body)
    with emulator.lock:
        emulator.stats.pop(account_id, None)
    return {"account": account_id, "requests": {}, "total": 0}


@_control("POST", "/_emulator/delivery")
def delivery_settings(emulator: Emulator, body: dict[str, Any]) -> Any:
    lane = emulator.deliverer.lane(_account(emulator, body))
    lane.configure(body)
    return lane.settings.as_dict()


@_control("GET", "/_emulator/deliveries")
def deliveries(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Every delivery attempt so far and how many are still queued (0 when idle)."""
    lane = emulator.deliverer.lane(_account(emulator, body))
    with lane.cond:
        attempts = list(lane.records)
    return {"pending": lane.pending(), "attempts": attempts}


@_control("POST", "/_emulator/rate_limit")
def rate_limit(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Requests per second allowed for the account (`global_rate`) and per endpoint; 0 or
    `enabled: false` turns limiting off."""
    account_id = _account(emulator, body)
    with emulator.lock:
        if body.get("enabled") is False:
            emulator.rate_limits.pop(account_id, None)
            return {"enabled": False}
        limit = RateLimit(float(body.get("global_rate", 25)), float(body.get("endpoint_rate", 25)))
        emulator.rate_limits[account_id] = limit
        return {"enabled": True, "global_rate": limit.global_rate, "endpoint_rate": limit.endpoint_rate}


@_control("POST", "/_emulator/latency")
def set_latency(emulator: Emulator, body: dict[str, Any]) -> Any:
    """The least time, in `ms`, every API request of the account takes (0: as fast as it can), as
    Stripe takes 0.3-1 s for a page of 100 expanded charges."""
    account_id = _account(emulator, body)
    ms = body.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_LATENCY_MS:
        raise ControlError(400, f"ms must be an integer from 0 to {MAX_LATENCY_MS}")
    with emulator.lock:
        if ms:
            emulator.latency_ms[account_id] = ms
        else:
            emulator.latency_ms.pop(account_id, None)
    return {"account": account_id, "ms": ms}


@_control("GET", "/_emulator/latency")
def latency(emulator: Emulator, body: dict[str, Any]) -> Any:
    account_id = _account(emulator, body)
    with emulator.lock:
        return {"account": account_id, "ms": emulator.latency_ms.get(account_id, 0)}


@_control("POST", "/_emulator/faults")
def add_fault(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Answer the next `count` requests to `endpoint` ("GET /v1/charges", or "*") with `status`."""
    account_id = _account(emulator, body)
    should_retry = body.get("should_retry")
    fault = Fault(str(body.get("endpoint", "*")), int(body.get("status", 500)), int(body.get("count", 1)), should_retry)
    with emulator.lock:
        emulator.faults[account_id].append(fault)
    return {"endpoint": fault.endpoint, "status": fault.status, "count": fault.remaining}


@_control("POST", "/_emulator/clock")
def clock(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Move the emulator's clock (`advance` seconds, or an absolute `offset` from real time)."""
    with emulator.lock:
        if "offset" in body:
            emulator.clock.offset = int(body["offset"])
        emulator.clock.offset += int(body.get("advance", 0))
        return {"now": emulator.clock.now(), "offset": emulator.clock.offset}


@_control("POST", "/_emulator/seed")
def seed_account(emulator: Emulator, body: dict[str, Any]) -> Any:
    """Bulk-create customers, charges, refunds, checkout sessions and subscriptions in memory (no events)."""
    account_id = _account(emulator, body)
    spec = SeedSpec.from_body(body, now=emulator.clock.now())
    with emulator.lock:
        space = emulator.accounts[account_id].space(spec.livemode)
        return seed(space, spec, emulator)
