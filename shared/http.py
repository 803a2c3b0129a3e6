"""What every HTTP handler shares: the resolver with error mapping, ids, tokens, JSON bodies."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from .errors import ApiError, Forbidden, InvalidRequest, ServiceUnavailable, Unauthorized
from .observability import logger

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
Model = TypeVar("Model", bound=BaseModel)


def json_response(status: int, body: Any) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def make_resolver() -> APIGatewayHttpResolver:
    """A resolver mapping domain errors to the contract's error bodies, in one place."""
    app = APIGatewayHttpResolver(strip_prefixes=None)

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _api_error(error: ApiError) -> Response[str]:
        if error.status >= 500:
            logger.warning("request failed", code=error.code, status=error.status)
        return json_response(error.status, error.body())

    @app.exception_handler(ClientError)  # type: ignore[untyped-decorator]
    def _aws_error(error: ClientError) -> Response[str]:
        # An AWS call failed after botocore's own retries: transient for the caller, who retries.
        logger.exception("aws call failed", aws_error=error.response.get("Error", {}).get("Code"))
        return json_response(503, ServiceUnavailable("A storage service is busy; retry shortly.").body())

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return json_response(404, {"error": {"code": "not_found", "message": "No such route."}})

    return app


def check_id(value: str, name: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidRequest(f"{name} must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    return value


def token_projects(event: APIGatewayProxyEventV2) -> frozenset[str]:
    """The projects the caller's token grants (401 when there is no usable token).

    Deployed, API Gateway's JWT authorizer has verified the token and passes its claims, with
    array claims stringified ("[p1 p2]"); locally the stack does the same.
    """
    authorizer = event.request_context.authorizer
    claims: dict[str, Any] = (authorizer.jwt_claim if authorizer else None) or {}
    raw = claims.get("projects")
    if raw is None:
        raise Unauthorized("A bearer token with a projects claim is required.")
    return frozenset(_claim_list(raw))


def _claim_list(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(p) for p in raw]
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return [str(p) for p in parsed]
        except json.JSONDecodeError:
            pass
        text = text[1:-1]
    return [p for p in re.split(r"[\s,]+", text) if p]


def require_project(projects: frozenset[str], project_id: str) -> None:
    if project_id not in projects:
        raise Forbidden("This token does not grant access to this project.")


def parse_body(event: APIGatewayProxyEventV2, model: type[Model]) -> Model:
    """The JSON body as `model`, or 400 invalid_request naming what is wrong."""
    raw = event.decoded_body if event.body else None
    if not raw:
        raise InvalidRequest("A JSON body is required.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"Invalid request body: {where}: {first['msg']}") from None
