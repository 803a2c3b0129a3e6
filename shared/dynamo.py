"""DynamoDB failures as the domain names them, for every data-access module (pynamodb or botocore)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from .errors import DuplicateEvent, ServiceUnavailable, StaleUpdate

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
