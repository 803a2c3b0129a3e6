"""The backfill queue: messages sent ten to a request (the queue's URL from configuration)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import boto3

from ..settings import get_settings
from .slices import AnyMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BATCH = 10  # SendMessageBatch's limit


@cache
def client() -> SQSClient:
    return boto3.client("sqs")


def send(messages: Sequence[AnyMessage], delay_seconds: int = 0) -> None:
    url = get_settings().backfill_queue_url
    for start in range(0, len(messages), BATCH):
        entries = [
            {"Id": str(n), "MessageBody": message.model_dump_json(), "DelaySeconds": delay_seconds}
            for n, message in enumerate(messages[start : start + BATCH])
        ]
        failed = client().send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []  # type: ignore[arg-type]
        if failed:
            raise RuntimeError(f"the backfill queue refused {len(failed)} messages: {failed[0].get('Code')}")
