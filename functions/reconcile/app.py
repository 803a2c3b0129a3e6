"""The scheduled reconcile (EventBridge; `make reconcile` locally): one sweep of every connected
integration (shared.reconcile.sweep)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.observability import logger, metrics, tracer
from shared.reconcile import sweep


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    summary = sweep.run(lambda: context.get_remaining_time_in_millis() / 1000)
    logger.info("reconcile swept", scheduled_at=event.get("time"), outcomes=summary)
    return summary
