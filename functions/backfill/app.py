"""The backfill queue's consumer: one slice message at a time, pages in a row (shared.backfill)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.backfill import progress, rebuild_job, removal, runner
from shared.backfill.slices import MESSAGE, RebuildMessage, RemoveMessage, SliceMessage
from shared.observability import logger, metrics, tracer

# The queue's RedrivePolicy maxReceiveCount (template.yaml): the last receive that fails marks the
# run failed before the message goes to the dead-letter queue.
MAX_RECEIVES = 5


def record_handler(record: SQSRecord, remaining_seconds: Callable[[], float]) -> None:
    try:
        message = MESSAGE.validate_json(record.body)
    except ValidationError:
        logger.error("backfill message dropped: not a backfill message", message_id=record.message_id)
        return  # never retried: it cannot become valid
    receives = int(record.attributes.approximate_receive_count or 1)
    logger.append_keys(project_id=message.project_id, run=message.run)
    if isinstance(message, SliceMessage):
        logger.append_keys(phase=message.phase, slice=message.index)
    try:
        runner.handle(message, remaining_seconds, receives)
    except Exception:
        if receives >= MAX_RECEIVES and isinstance(message, RebuildMessage):
            rebuild_job.fail(message.project_id, message.run, "The rebuild failed repeatedly; run it again.")
            logger.exception("rollup rebuild failed after its retries")
        elif receives >= MAX_RECEIVES and _fail(message.project_id, message.run, isinstance(message, RemoveMessage)):
            logger.exception("backfill failed after its retries")
        raise


def _fail(project_id: str, run: int, removing: bool) -> bool:
    if removing:
        removal.fail(project_id, run, "Removing the imported data failed repeatedly; re-sync or disconnect again.")
    return progress.fail(project_id, run, "The import failed repeatedly; re-sync to start it again.")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A processor per invocation: it holds the batch's failures, and the local stack runs several
    # invocations side by side in one process (on Lambda a container runs one at a time).
    processor = BatchProcessor(event_type=EventType.SQS)

    def remaining_seconds() -> float:
        return context.get_remaining_time_in_millis() / 1000 if context else 60.0

    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, remaining_seconds),
        processor=processor,
        context=context,
    )
