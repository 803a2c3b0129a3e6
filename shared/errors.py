"""Errors with the HTTP status and machine-readable code they map to (api.md), raised by the domain."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class InvalidKeyFormat(ApiError):
    status, code = 400, "invalid_key_format"


class InvalidSignature(ApiError):
    status, code = 400, "invalid_signature"


class InvalidPayload(ApiError):
    status, code = 400, "invalid_payload"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class NotConnected(ApiError):
    status, code = 404, "not_connected"


class AlreadyConnected(ApiError):
    status, code = 409, "already_connected"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class StripeKeyRejected(ApiError):
    status, code = 422, "stripe_key_rejected"


class MissingPermissions(ApiError):
    status, code = 422, "missing_permissions"


class StripeUnavailable(ApiError):
    status, code = 502, "stripe_unavailable"


class StaleUpdate(Exception):
    """Something a write was decided from changed before it was written: read again, decide again.

    Not an ApiError: the data layers raise it and their callers retry (a few times, then 503)."""


class DuplicateEvent(Exception):
    """The event was processed already (or is being processed by a concurrent delivery)."""


class ServiceUnavailable(ApiError):
    """A transient failure of ours (throttling, a dependency down): 503 so callers retry."""

    status, code = 503, "service_unavailable"
