"""GET /openapi.json: the OpenAPI 3.1 document of every route (no token), as generated from the
handlers' route metadata and models into document.py (functions/openapi/generate.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.http import make_resolver
from shared.observability import logger, metrics, tracer

from .document import DOCUMENT

app = make_resolver()


@app.get(
    "/openapi.json",
    summary="This document: the OpenAPI 3.1 description of every route",
    tags=["Service"],
    responses={
        200: {"description": "The OpenAPI document", "content": {"application/json": {"model": dict[str, Any]}}}
    },
)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=DOCUMENT)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
