"""The DynamoDB client (created lazily, shared by the data-access modules) and value conversion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore import exceptions as botocore_errors
from botocore.config import Config
from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from .errors import DuplicateEvent, ServiceUnavailable, StaleUpdate

if TYPE_CHECKING:  # stubs are a development dependency
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Throttling and 5xx are retried by botocore itself ("standard" mode, adaptive backoff).
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=5)


@cache
def client() -> DynamoDBClient:
    """One client per process; the endpoint comes from the environment (AWS_ENDPOINT_URL locally)."""
    return boto3.client("dynamodb", config=_CONFIG)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Python values -> DynamoDB attribute values (None values are left out)."""
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values -> Python values, numbers as int where they are whole."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


# Left after botocore's own retries: the caller answers 503 (and Stripe or the client retries).
_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
_THROTTLED_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
_RACE_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


@contextmanager
def translate_errors(labels: list[str] | None = None) -> Iterator[None]:
    """DynamoDB failures as the domain names them; anything else (a bug) propagates unchanged.

    A failed condition or a conflicting transaction is `StaleUpdate` (read again, decide again);
    with `labels` (one per TransactItems entry), a failed condition on the item labelled "event" is
    `DuplicateEvent` instead. Throttling and unreachable DynamoDB are `ServiceUnavailable`.
    pynamodb's errors are judged by the botocore error they wrap.
    """
    try:
        yield
    except PynamoDBException as exc:
        cause = exc.cause
        if isinstance(cause, botocore_errors.BotoCoreError):
            raise ServiceUnavailable("The database could not be reached; retry.") from exc
        if not isinstance(cause, ClientError):
            raise
        reasons = [r.code if r else "None" for r in getattr(exc, "cancellation_reasons", [])]
        _raise_translated(exc, cause.response.get("Error", {}).get("Code", ""), reasons, labels)
        raise
    except ClientError as exc:
        reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
        _raise_translated(exc, exc.response.get("Error", {}).get("Code", ""), reasons, labels)
        raise
    except (botocore_errors.ConnectionError, botocore_errors.ReadTimeoutError) as exc:  # after retries
        raise ServiceUnavailable("The database could not be reached; retry.") from exc


def _raise_translated(exc: Exception, code: str, reasons: list[str], labels: list[str] | None) -> None:
    if code == "ConditionalCheckFailedException":
        raise StaleUpdate("the item changed since it was read") from None
    if code == "TransactionCanceledException":
        if set(reasons) & _THROTTLED_REASONS:
            raise ServiceUnavailable("The database is busy; retry.") from exc
        failed = {label for label, r in zip(labels or [], reasons, strict=False) if r == "ConditionalCheckFailed"}
        if "event" in failed:
            raise DuplicateEvent() from None
        if set(reasons) & _RACE_REASONS:
            raise StaleUpdate(",".join(sorted(failed)) or ",".join(sorted(set(reasons)))) from None
        return
    if code == "TransactionConflictException":
        raise StaleUpdate("a concurrent transaction touched the same items") from None
    if code in _THROTTLED:
        raise ServiceUnavailable("The database is busy; retry.") from exc
