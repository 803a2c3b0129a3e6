"""The backfill queue drained in-process, as Lambda's event source mapping would feed the function."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.backfill.app import lambda_handler
from local.stack.sqs import sqs_record
from shared.backfill import queue
from shared.settings import get_settings
from tests.conftest import FakeLambdaContext

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:backfill"


class BackfillContext(FakeLambdaContext):
    """A Lambda context with the backfill function's whole timeout ahead."""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def pending() -> int:
    """Messages in the queue: visible, in flight or delayed."""
    attributes = queue.client().get_queue_attributes(
        QueueUrl=get_settings().backfill_queue_url, AttributeNames=["All"]
    )["Attributes"]
    names = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    return sum(int(attributes.get(name, 0)) for name in names)


def receive(limit: int = 10) -> list[dict[str, Any]]:
    client = queue.client()
    answer = client.receive_message(
        QueueUrl=get_settings().backfill_queue_url,
        MaxNumberOfMessages=limit,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
        VisibilityTimeout=30,
    )
    return list(answer.get("Messages", []))


def deliver(message: dict[str, Any], *, delete: bool = True) -> dict[str, Any]:
    """One message to the function, as Lambda would (batch of one); deleted unless it failed."""
    event = {"Records": [sqs_record(message, QUEUE_ARN, "us-east-1")]}  # type: ignore[arg-type]
    try:
        response: dict[str, Any] = lambda_handler(event, BackfillContext(function_name="backfill"))  # type: ignore[arg-type]
    except BatchProcessingError:  # the whole batch failed: the invocation fails, SQS delivers it again
        queue.client().change_message_visibility(
            QueueUrl=get_settings().backfill_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        return {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    if delete and not response.get("batchItemFailures"):
        queue.client().delete_message(
            QueueUrl=get_settings().backfill_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    return response


def drain(limit: int = 10_000, only: Callable[[dict[str, Any]], bool] | None = None) -> int:
    """Deliver messages (one a batch, as Lambda would with BatchSize 1) until the queue is empty (or
    holds only messages `only` refuses: those are left in it, visible again); how many were delivered."""
    delivered = 0
    held: list[dict[str, Any]] = []
    try:
        while delivered < limit:
            messages = receive()
            if not messages:
                if pending() <= len(held):
                    return delivered
                time.sleep(0.2)  # a continuation queued with a delay
                continue
            for message in messages:
                if only is not None and not only(json.loads(message["Body"])):
                    held.append(message)
                    continue
                deliver(message)
                delivered += 1
    finally:
        client = queue.client()
        for message in held:
            client.change_message_visibility(
                QueueUrl=get_settings().backfill_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    raise AssertionError(f"the backfill queue was still not empty after {limit} messages")


def deliver_some(count: int) -> int:
    """Deliver up to `count` messages (a run interrupted part way); how many were delivered."""
    delivered = 0
    while delivered < count:
        messages = receive(limit=min(10, count - delivered))
        if not messages:
            return delivered
        for message in messages:
            deliver(message)
            delivered += 1
    return delivered
