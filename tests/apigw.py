"""API Gateway HTTP API (payload format 2.0) events for handler tests, as API Gateway builds them."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any


def http_event(
    method: str,
    route: str,
    path_parameters: dict[str, str],
    *,
    body: str | bytes | dict[str, Any] | None = None,
    projects: list[str] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An event for `route` (e.g. "/projects/{project_id}/visitors/{visitor_id}").

    `projects` become the JWT claim the authorizer passes, stringified as API Gateway does ("[a b]");
    None means no authorizer context (as for the webhook route).
    """
    path = route
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    if isinstance(body, dict):
        body = json.dumps(body)
    is_base64 = isinstance(body, bytes)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
        "queryStringParameters": query or None,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "27/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": is_base64,
    }
    if projects is not None:
        claims = {"sub": "user-1", "projects": "[" + " ".join(projects) + "]"}
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])
