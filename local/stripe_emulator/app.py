"""The WSGI application: Stripe's `/v1` API plus the emulator's own `/_emulator` control API."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import orjson
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from . import control, routes
from .core import API_VERSION, Context, Emulator, latency_remainder
from .expand import expand
from .keys import ApiKey, authenticate, require

# Importing the resource modules registers their routes.
from .resources import billing, checkout, customers, payments, webhook_endpoints  # noqa: F401
from .store import IdempotentResponse, new_id
from .wire import StripeError, decode_params, get_str_list

log = logging.getLogger("stripe_emulator")

_JSON = "application/json"


class EmulatorApp:
    def __init__(self, emulator: Emulator | None = None) -> None:
        self.emulator = emulator or Emulator()
        self._urls = routes.bind()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/_emulator/"):
            response = control.dispatch(self.emulator, request)
        else:
            response = self._api(request)
        return response(environ, start_response)

    def _api(self, request: Request) -> Response:
        arrived = time.monotonic()
        request_id = new_id("req_", 14)
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": request.headers.get("Stripe-Version") or API_VERSION,
        }
        latency_ms = 0
        try:
            with self.emulator.lock:
                key = authenticate(self.emulator.keys, request.headers.get("Authorization"))
                latency_ms = self.emulator.latency_ms.get(key.account_id, 0)
            status, body, replayed = self._serve(request, key, request_id)
            if replayed:
                headers["Idempotent-Replayed"] = "true"
        except StripeError as exc:
            status, body = exc.status, orjson.dumps(exc.body())
            headers.update(exc.headers)
        except Exception:  # a bug in the emulator: answer as Stripe answers its own failures
            log.exception("emulator error")
            status = 500
            body = orjson.dumps({"error": {"type": "api_error", "message": "Emulator internal error."}})
        # The account's latency, counted from arrival (a slow request waits only the remainder), and
        # slept outside the lock: other requests, of any account, go on meanwhile.
        wait = latency_remainder(latency_ms, time.monotonic() - arrived)
        if wait > 0:
            time.sleep(wait)
        return Response(body, status=status, headers=headers, content_type=_JSON)

    def _serve(self, request: Request, key: ApiKey, request_id: str) -> tuple[int, bytes, bool]:
        emulator = self.emulator
        with emulator.lock:
            try:
                name, path_args = self._urls.match(request.path, method=request.method)
            except (NotFound, MethodNotAllowed):
                raise StripeError(
                    404,
                    f"Unrecognized request URL ({request.method}: {request.path}). "
                    "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                ) from None
            route = routes.ROUTES[name]
            emulator.stats[key.account_id][name] += 1
            emulator.check_limits(key.account_id, name)
            require(key, route.permission)
            pairs = list(request.args.items(multi=True))
            if request.method == "POST":
                pairs += list(request.form.items(multi=True))
            params = decode_params(pairs)
            space = emulator.space_of(key)

            idempotency_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            fingerprint = ""
            if idempotency_key:
                fingerprint = hashlib.sha256(f"{name}\n{sorted(pairs)}".encode()).hexdigest()
                stored = space.idempotency.get(idempotency_key)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they "
                            f"were first used with. Try using a key other than '{idempotency_key}' if you "
                            "meant to execute a different request.",
                            type="idempotency_error",
                        )
                    return stored.status, stored.body, True

            ctx = Context(emulator, key, space, params, path_args, request_id, idempotency_key)
            try:
                obj = route.handler(ctx)
                body = orjson.dumps(expand(ctx, obj, get_str_list(params, "expand")))
                status = 200
            except StripeError as exc:
                if idempotency_key and exc.status < 500:
                    space.idempotency[idempotency_key] = IdempotentResponse(
                        fingerprint, exc.status, orjson.dumps(exc.body())
                    )
                raise
            if idempotency_key:
                space.idempotency[idempotency_key] = IdempotentResponse(fingerprint, status, body)
            return status, body, False
