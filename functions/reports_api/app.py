"""GET /projects/{project_id}/revenue?from=&to=: revenue by source, unattributed and by tier over a time window."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.http import check_id, json_response, make_resolver, require_project, token_projects
from shared.observability import logger, metrics, tracer
from shared.reports.revenue import parse_window
from shared.reports.service import revenue_report

app = make_resolver()


@app.get("/projects/<project_id>/revenue")
def get_revenue(project_id: str) -> Response[str]:
    event = app.current_event
    projects = token_projects(event)
    check_id(project_id, "project_id")
    window = parse_window(event.get_query_string_value("from"), event.get_query_string_value("to"))
    require_project(projects, project_id)
    body = revenue_report(project_id, window)
    logger.info(
        "revenue report built",
        project_id=project_id,
        window_start=window.start,
        window_end=window.end,
        sources=len(body["by_source"]),
    )
    return json_response(200, body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
