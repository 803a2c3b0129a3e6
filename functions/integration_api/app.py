"""/projects/{project_id}/integrations/stripe: connect a Stripe account, read its status, re-sync
it, disconnect it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.errors import InvalidRequest
from shared.http import check_id, json_response, make_resolver, parse_body, require_project, token_projects
from shared.integrations import lifecycle, store
from shared.integrations.connect import connect
from shared.integrations.models import DISCONNECTED_VIEW, ConnectRequest
from shared.observability import Metric, count, logger, metrics, tracer

app = make_resolver()
PATH = "/projects/<project_id>/integrations/stripe"


@app.post(PATH)
def connect_stripe(project_id: str) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    request = parse_body(app.current_event, ConnectRequest)
    require_project(projects, project_id)
    integration = connect(project_id, request.api_key)
    count(Metric.INTEGRATIONS_CONNECTED)
    return json_response(201, integration.view())


@app.get(PATH)
def integration_status(project_id: str) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    require_project(projects, project_id)
    integration = store.get(project_id)
    return json_response(200, integration.view() if integration else DISCONNECTED_VIEW)


@app.post(PATH + "/resync")
def resync_stripe(project_id: str) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    require_project(projects, project_id)
    integration = lifecycle.resync(project_id)
    return json_response(202, integration.view())


@app.delete(PATH)
def disconnect_stripe(project_id: str) -> Response[str]:
    projects = token_projects(app.current_event)
    check_id(project_id, "project_id")
    keep_data = _flag(app.current_event.get_query_string_value("keep_data", "true") or "true", "keep_data")
    require_project(projects, project_id)
    data_removed = lifecycle.disconnect(project_id, keep_data)
    return json_response(200, {"status": "disconnected", "data_removed": data_removed})


def _flag(value: str, name: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false.")
    return value.lower() == "true"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
