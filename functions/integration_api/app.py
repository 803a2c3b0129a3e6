"""/projects/{project_id}/integrations/stripe: connect a Stripe account, read its status, re-sync
it, disconnect it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from shared.errors import (
    AlreadyConnected,
    InvalidKeyFormat,
    InvalidRequest,
    MissingPermissions,
    NotConnected,
    StripeKeyRejected,
    StripeUnavailable,
)
from shared.http import (
    DASHBOARD_SECURITY,
    ID_PARAMETER,
    check_id,
    json_response,
    make_resolver,
    parse_body,
    require_project,
    responses,
    token_projects,
)
from shared.integrations import lifecycle, store
from shared.integrations.connect import connect
from shared.integrations.models import DISCONNECTED_VIEW, ConnectRequest
from shared.observability import Metric, count, logger, metrics, tracer

app = make_resolver()
PATH = "/projects/<project_id>/integrations/stripe"
TAGS = ["Integration"]
# The Integration (api.md): free-form extras welcome, so an object.
INTEGRATION = dict[str, Any]


class Disconnected(BaseModel):
    status: Literal["disconnected"]
    data_removed: bool


ProjectId = Annotated[str, Path(**ID_PARAMETER)]
# Query and body parameters are declared for the OpenAPI document only: validation is off, so
# Powertools passes path parameters alone and each handler reads its event (docs/decisions.md).
ConnectBody = Annotated[ConnectRequest | None, Body(description='{"api_key": "rk_test_..."}')]
KeepData = Annotated[
    str | None,
    Query(
        alias="keep_data",
        pattern="^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$",  # true or false, in any case
        description="false also removes the imported data (default true)",
    ),
]


@app.post(
    PATH,
    summary="Connect a Stripe account with a restricted key",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(
        201,
        "The Integration: permissions probed, webhook endpoint created, key and secret stored, backfill queued",
        INTEGRATION,
        InvalidKeyFormat,
        AlreadyConnected,
        StripeKeyRejected,
        MissingPermissions,
        StripeUnavailable,
    ),
)
def connect_stripe(project_id: ProjectId, body: ConnectBody = None) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    request = parse_body(app.current_event, ConnectRequest)
    require_project(projects, project_id)
    integration = connect(project_id, request.api_key)
    count(Metric.INTEGRATIONS_CONNECTED)
    return json_response(201, integration.view())


@app.get(
    PATH,
    summary="The project's Stripe integration (disconnected when never connected)",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(200, "The Integration", INTEGRATION),
)
def integration_status(project_id: ProjectId) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    require_project(projects, project_id)
    integration = store.get(project_id)
    return json_response(200, integration.view() if integration else DISCONNECTED_VIEW)


@app.post(
    PATH + "/resync",
    summary="Re-sync: remove the imported data, then import the history again",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(202, "The Integration, its backfill the next run, queued", INTEGRATION, NotConnected),
)
def resync_stripe(project_id: ProjectId) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    require_project(projects, project_id)
    integration = lifecycle.resync(project_id)
    return json_response(202, integration.view())


@app.delete(
    PATH,
    summary="Disconnect: the webhook endpoint and the secret deleted, the import stopped",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(200, '{"status": "disconnected", "data_removed": true|false}', Disconnected, NotConnected),
)
def disconnect_stripe(project_id: ProjectId, keep_data_query: KeepData = None) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    keep_data = _flag(app.current_event.get_query_string_value("keep_data", "true") or "true", "keep_data")
    require_project(projects, project_id)
    data_removed = lifecycle.disconnect(project_id, keep_data)
    return json_response(200, Disconnected(status="disconnected", data_removed=data_removed).model_dump())


def _flag(value: str, name: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false.")
    return value.lower() == "true"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
