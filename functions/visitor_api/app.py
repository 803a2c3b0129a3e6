"""PUT and GET /projects/{project_id}/visitors/{visitor_id}, GET .../timeline: visitors and their revenue."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.errors import NotFound
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
from shared.observability import Metric, count, logger, metrics, tracer
from shared.revenue.reattribution import after_visitor_saved
from shared.visitors.models import TimelineView, VisitorBody, VisitorView, parse_timeline_query
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore

app = make_resolver()
VISITOR = "/projects/<project_id>/visitors/<visitor_id>"
TAGS = ["Visitors"]
ProjectId = Annotated[str, Path(**ID_PARAMETER)]
VisitorId = Annotated[str, Path(**ID_PARAMETER)]
# Query and body parameters are declared for the OpenAPI document only: validation is off, so
# Powertools passes path parameters alone and each handler reads its event (docs/decisions.md).
Changes = Annotated[VisitorBody | None, Body(description="Fields given replace stored ones; null removes one")]
Limit = Annotated[int | None, Query(ge=1, le=100, description="events per page (default 50)")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def _service() -> VisitorService:
    return VisitorService(DynamoVisitorStore.default())


def _check_ids(project_id: str, visitor_id: str) -> None:
    check_id(project_id, "project_id")
    check_id(visitor_id, "visitor_id")


@app.put(
    VISITOR,
    summary="Create or update a visitor (the tracker's identify); an email attributes the revenue it matches",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(200, "The Visitor", VisitorView),
)
def put_visitor(project_id: ProjectId, visitor_id: VisitorId, body: Changes = None) -> Response[str]:
    projects = token_projects(app.current_event)
    _check_ids(project_id, visitor_id)
    # Every field is optional, so no body at all is an empty update (it creates the visitor).
    body = parse_body(app.current_event, VisitorBody) if app.current_event.body else VisitorBody()
    require_project(projects, project_id)
    saved = _service().save(project_id, visitor_id, body.to_changes())
    logger.info(
        "visitor saved",
        project_id=project_id,
        visitor_id=visitor_id,
        visitor_created=saved.created,
        email_changed=saved.email_changed,
    )
    if saved.created:
        count(Metric.VISITORS_CREATED)
    if saved.email_changed:
        count(Metric.VISITOR_EMAILS_SET)
    visitor = saved.visitor
    if after_visitor_saved(project_id, saved):  # it may now own revenue that was pending
        visitor = _service().get(project_id, visitor_id)
    return json_response(200, VisitorView.of(visitor).model_dump())


@app.get(
    VISITOR,
    summary="A visitor with its lifetime revenue, plan and Stripe customers",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(200, "The Visitor", VisitorView, NotFound),
)
def get_visitor(project_id: ProjectId, visitor_id: VisitorId) -> Response[str]:
    projects = token_projects(app.current_event)
    _check_ids(project_id, visitor_id)
    require_project(projects, project_id)
    visitor = _service().get(project_id, visitor_id)
    return json_response(200, VisitorView.of(visitor).model_dump())


@app.get(
    VISITOR + "/timeline",
    summary="A visitor's revenue events, newest first, a page at a time",
    tags=TAGS,
    security=DASHBOARD_SECURITY,
    responses=responses(200, "A page of events and the cursor of the next", TimelineView, NotFound),
)
def get_timeline(
    project_id: ProjectId, visitor_id: VisitorId, limit: Limit = None, cursor: Cursor = None
) -> Response[str]:
    event = app.current_event
    projects = token_projects(event)
    _check_ids(project_id, visitor_id)
    query = parse_timeline_query(event.get_query_string_value("limit"), event.get_query_string_value("cursor"))
    require_project(projects, project_id)
    page = _service().timeline(project_id, visitor_id, query)
    return json_response(200, TimelineView.of(page).model_dump())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
