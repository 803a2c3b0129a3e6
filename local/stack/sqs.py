"""SQS event sources run in-process, the way Lambda's event source mapping runs them.

One poller thread per SQS event of the template: it long-polls the queue, hands the function an
event `{"Records": [...]}` shaped like Lambda's, deletes the messages that succeeded and leaves
the others to come back after the queue's visibility timeout. With ReportBatchItemFailures only the
`batchItemFailures` stay; an exception, a timeout or an invalid failure report keeps the whole batch. SQS
itself (moto) moves a message to the dead-letter queue once it has been received more often than
the RedrivePolicy's maxReceiveCount, as the real service does.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .functions import SqsSource
from .runtime import FunctionTimedOut, LambdaFunction

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

logger = logging.getLogger("local.stack")


class InvalidBatchResponse(ValueError):
    """A partial batch response Lambda would reject (the whole batch then counts as failed)."""


def _attribute_value(value: Any) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes | bytearray) else binary,
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType"),
    }


def sqs_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event for a received message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute_value(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, message_ids: Sequence[str], report_failures: bool) -> set[str]:
    """The messages of a batch that must come back, given the function's response."""
    if not report_failures or response is None:
        return set()
    if not isinstance(response, dict):
        raise InvalidBatchResponse(f"response is {type(response).__name__}")
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        raise InvalidBatchResponse("batchItemFailures is not a list")
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            raise InvalidBatchResponse(f"itemIdentifier {identifier!r} is not a message of the batch")
        failed.add(identifier)
    return failed


class SqsPoller:
    """Consumes one queue for one function in a daemon thread."""

    def __init__(
        self,
        source: SqsSource,
        function: LambdaFunction,
        client: SQSClient,
        *,
        region: str,
        wait_seconds: int = 1,
    ) -> None:
        self.source = source
        self.function = function
        self.client = client
        self.region = region
        self.wait_seconds = wait_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{source.function}-{source.event}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stopping.is_set():
                    return
                logger.exception("sqs poll failed: queue=%s", self.source.queue_url)
                self._stopping.wait(1.0)

    def _receive(self) -> list[MessageTypeDef]:
        source = self.source
        messages: list[MessageTypeDef] = []
        deadline = time.monotonic() + source.batching_window_seconds
        while len(messages) < source.batch_size and not self._stopping.is_set():
            received = self.client.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(received)
            if time.monotonic() >= deadline or (not received and messages):
                break
        return messages

    def poll_once(self) -> int:
        """Receive one batch and run the function on it; the number of messages received."""
        messages = self._receive()
        if not messages:
            return 0
        source = self.source
        records = [sqs_record(message, source.queue_arn, self.region) for message in messages]
        ids = [message["MessageId"] for message in messages]
        try:
            response = self.function.invoke({"Records": records})
            failed = failed_message_ids(response, ids, source.report_batch_item_failures)
        except FunctionTimedOut as timed_out:
            # A failed invocation like any other (no traceback: the handler's thread was stopped).
            logger.error("sqs batch failed: function=%s messages=%d: %s", source.function, len(messages), timed_out)
            return len(messages)
        except Exception:
            # Lambda's answer to a failed invocation: every message comes back after the visibility timeout.
            logger.exception("sqs batch failed: function=%s messages=%d", source.function, len(messages))
            return len(messages)
        if failed:
            logger.info("sqs batch partly failed: function=%s failed=%d", source.function, len(failed))
        self._delete(message for message in messages if message["MessageId"] not in failed)
        return len(messages)

    def _delete(self, messages: Iterable[MessageTypeDef]) -> None:
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)
        ]
        for start in range(0, len(entries), 10):
            result = self.client.delete_message_batch(
                QueueUrl=self.source.queue_url, Entries=entries[start : start + 10]
            )
            for failure in result.get("Failed", []):
                logger.warning("sqs delete failed: queue=%s code=%s", self.source.queue_url, failure.get("Code"))
