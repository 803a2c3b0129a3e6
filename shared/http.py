"""What every HTTP handler shares: the resolver with error mapping, ids, tokens, JSON bodies, and the
route metadata the OpenAPI document is generated from (functions/openapi)."""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ApiError, Forbidden, InvalidRequest, ServiceUnavailable, Unauthorized
from .observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

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


def body_bytes(event: APIGatewayProxyEventV2) -> bytes:
    """The body as sent: API Gateway passes a body that is not UTF-8 text base64-encoded (Powertools'
    `decoded_body` would fail on it, a 500, where api.md wants a 400)."""
    if not event.body:
        return b""
    return base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode("utf-8")


def parse_body(event: APIGatewayProxyEventV2, model: type[Model]) -> Model:
    """The JSON body as `model`, or 400 invalid_request naming what is wrong (bytes that are not UTF-8
    included: pydantic refuses them as invalid JSON)."""
    raw = body_bytes(event)
    if not raw:
        raise InvalidRequest("A JSON body is required.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"Invalid request body: {where}: {first['msg']}") from None


# ---- OpenAPI route metadata (read only by functions/openapi's generator, never per request) -------

BEARER_SCHEME = "bearerAuth"  # the dashboard's JWT (the HTTP API's authorizer), as the document names it
DASHBOARD_SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
# A path parameter's documentation (`Annotated[str, Path(**ID_PARAMETER)]`): ID_PATTERN, anything else 400
ID_PARAMETER: dict[str, Any] = {
    "description": "1-128 characters of A-Z a-z 0-9 . _ : - (anything else: 400 invalid_request)",
    "pattern": f"^{ID_PATTERN.pattern}$",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # extras where api.md notes them (`missing`)
    code: str
    message: str


class ErrorBody(BaseModel):
    """api.md's error body: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class GatewayMessage(BaseModel):
    """API Gateway's own fixed body (`{"message": "Unauthorized"}`), which HTTP APIs cannot change."""

    message: str


def responses(
    status: int, description: str, model: Any, *errors: type[ApiError], dashboard: bool = True
) -> dict[int, OpenAPIResponse]:
    """A route's documented answers: its success with `model`, then each status of `errors` with the
    error body and an example per error code. Dashboard routes add the token's 401 (the authorizer's
    or the handler's) and 403, and every route the 503 of a busy dependency (retry)."""
    documented: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    answers: list[type[ApiError]] = [InvalidRequest, *errors, ServiceUnavailable]
    if dashboard:
        answers += [Unauthorized, Forbidden]
    by_status: dict[int, list[type[ApiError]]] = {}
    for error in answers:
        if error not in by_status.setdefault(error.status, []):
            by_status[error.status].append(error)
    for code, errors_of_status in sorted(by_status.items()):
        examples: dict[str, Any] = {
            error.code: {"value": {"error": {"code": error.code, "message": _example_message(error)}}}
            for error in errors_of_status
        }
        body: Any = ErrorBody
        if code == Unauthorized.status:
            body = ErrorBody | GatewayMessage  # a token the authorizer refuses: {"message": "Unauthorized"}
            examples["gateway"] = {"value": {"message": "Unauthorized"}}
        documented[code] = {
            "description": ", ".join(error.code for error in errors_of_status),
            "content": {"application/json": {"model": body, "examples": examples}},
        }
    return documented


def _example_message(error: type[ApiError]) -> str:
    doc = error.__doc__ if error.__doc__ and error.__doc__ != ApiError.__doc__ else None
    return doc.strip().splitlines()[0] if doc else error.code.replace("_", " ").capitalize() + "."
