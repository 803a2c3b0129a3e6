"""POST /webhooks/stripe/{project_id}: Stripe's signed events (no JWT: the signature is the proof)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.errors import InvalidPayload, InvalidSignature, NotFound, PayloadTooLarge
from shared.http import body_bytes, json_response, make_resolver, responses
from shared.observability import Metric, count, logger, metrics, tracer
from shared.webhook_receiver import receive

app = make_resolver()


@app.post(
    "/webhooks/stripe/<project_id>",
    summary="A Stripe event, signed with the project's webhook secret (no bearer token)",
    tags=["Stripe webhooks"],
    responses=responses(
        200,
        "Processed, a duplicate, or an ignored event type",
        dict[str, Any],
        InvalidSignature,
        InvalidPayload,
        NotFound,
        PayloadTooLarge,
        dashboard=False,
    ),
)
def stripe_webhook(project_id: str) -> Response[str]:
    event = app.current_event
    result = receive(project_id, body_bytes(event), event.headers.get("stripe-signature"))
    return json_response(200, {"received": True, "result": result})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    if response["statusCode"] >= 500:  # Stripe will retry; persistent ones are alarmed
        count(Metric.WEBHOOK_SERVER_ERRORS)
    return response
