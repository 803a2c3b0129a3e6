"""GET /openapi.json: the OpenAPI 3.1 document of every route, generated from the handlers' resolvers
(functions/openapi/generate.py), checked against the contract (../shared/design/api.md) and the
template, and served by the stack without a token."""

from __future__ import annotations

import json
import re
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from functions.openapi import generate
from functions.openapi.app import lambda_handler
from functions.openapi.document import DOCUMENT
from local.stack.template import REPO_ROOT, load_template
from tests.api.conftest import ApiStack
from tests.apigw import http_event, response_json
from tests.conftest import FakeLambdaContext

API_MD = REPO_ROOT.parent / "shared" / "design" / "api.md"  # CI copies ../shared beside the clone
# api.md, Conventions: "token (401), then ids and body (400), then the token's projects (403), then
# existence (404)" on every dashboard route; a bad id is 400 on any route; 5xx only for a transient
# failure (503: a busy dependency, retry).
DASHBOARD_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
TRANSIENT = 503
# Answered by the local stack's gateway itself: not a function's route (api.md, Service).
GATEWAY_ONLY = {("GET", "/healthz")}

_ROUTE = re.compile(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)[^`]*`")
# A status: three digits, then a code, a body, a name or "with"/"once" (not "254 characters", "300 s").
_STATUS = re.compile(r"(?<![\w.$-])([1-5]\d\d)(?=\s*(?:`|[A-Z][a-z]|with\b|once\b|$))", re.MULTILINE)
_STATUS_CODE = re.compile(r"(?<![\w.$-])([1-5]\d\d) `([a-z_]+)`")


def document() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(DOCUMENT)
    return parsed


@cache
def contract() -> dict[tuple[str, str], tuple[set[int], set[tuple[int, str]]]]:
    """api.md's routes: (method, path) -> (statuses, (status, error code) pairs), each route's text
    running to the next route or heading."""
    if not API_MD.is_file():
        pytest.fail(f"api.md not found at {API_MD}: the contract tests need ../shared beside the clone")
    text = API_MD.read_text(encoding="utf-8")
    routes: dict[tuple[str, str], tuple[set[int], set[tuple[int, str]]]] = {}
    matches = list(_ROUTE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        heading = text.find("\n#", match.end())
        chunk = text[match.end() : heading if 0 <= heading < end else end]
        statuses = {int(code) for code in _STATUS.findall(chunk)} or {200}  # "-> the OpenAPI document"
        pairs = {(int(status), code) for status, code in _STATUS_CODE.findall(chunk)}
        key = (match.group(1), match.group(2))
        previous = routes.get(key, (set(), set()))
        routes[key] = (previous[0] | statuses, previous[1] | pairs)
    return routes


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document()["paths"].items()
        for method, operation in item.items()
    }


def error_codes(operation: dict[str, Any], status: int) -> set[str]:
    """The error codes a documented answer names (its examples, from shared.http.responses)."""
    response = operation["responses"].get(str(status), {})
    return set(response.get("content", {}).get("application/json", {}).get("examples", {}))


def test_the_document_is_valid_openapi_3_1() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.1")
    errors = [error.message for error in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_the_document_is_what_the_handlers_generate_now() -> None:
    # The served document is generated from the resolvers; a handler's change regenerates it
    assert generate.build_document() == document(), "stale: run .venv/bin/python -m functions.openapi.generate"
    assert generate.main(["--check"]) == 0


def test_the_parser_reads_api_md() -> None:
    # (a guard on the parsing below: the contract's best-known lines are read as written)
    routes = contract()
    assert routes[("POST", "/projects/{project_id}/integrations/stripe")][0] >= {201, 400, 409, 422, 502}
    assert routes[("POST", "/webhooks/stripe/{project_id}")][0] == {200, 400, 404, 413}
    assert (422, "missing_permissions") in routes[("POST", "/projects/{project_id}/integrations/stripe")][1]
    assert 254 not in routes[("PUT", "/projects/{project_id}/visitors/{visitor_id}")][0]


def test_the_document_lists_exactly_api_mds_routes() -> None:
    assert set(operations()) == set(contract()) - GATEWAY_ONLY


@pytest.mark.parametrize("route", sorted(set(contract()) - GATEWAY_ONLY), ids=" ".join)
def test_each_route_documents_api_mds_codes_and_no_others(route: tuple[str, str]) -> None:
    operation = operations()[route]
    documented = {int(status) for status in operation["responses"]}
    statuses, pairs = contract()[route]
    dashboard = route[1].startswith("/projects/")
    has_ids = "{" in route[1]
    conventions = {*DASHBOARD_CODES} if dashboard else {400} if has_ids else set()
    # Every status api.md gives the route is documented, with every error code it names
    assert statuses <= documented
    for status, code in pairs | ({*DASHBOARD_CODES.items()} - {(404, "not_found")} if dashboard else set()):
        assert code in error_codes(operation, status), f"{route}: {status} {code}"
    # and nothing else but the conventions' checks and the transient 503 (where there is something to check)
    assert documented <= statuses | conventions | ({TRANSIENT} if has_ids else set()), documented - statuses
    # dashboard routes need the bearer token; the webhook and the document do not
    assert bool(operation.get("security")) == dashboard


def test_the_documented_routes_are_the_templates() -> None:
    template_routes = {
        (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
        for resource in load_template()["Resources"].values()
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values()
        if event.get("Type") == "HttpApi"
    }
    assert set(operations()) == template_routes


def test_error_answers_are_the_contracts_error_body() -> None:
    schemas = document()["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message"}
    for route, operation in operations().items():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = json.dumps(response["content"]["application/json"]["schema"])
                assert "#/components/schemas/ErrorBody" in schema, (route, status)


def test_the_function_serves_the_document_without_a_token() -> None:
    response = lambda_handler(http_event("GET", "/openapi.json", {}), FakeLambdaContext())
    assert response["statusCode"] == 200
    assert response_json(response) == document()


def test_the_stack_serves_the_document_without_a_token(api_stack: ApiStack) -> None:
    with urllib.request.urlopen(f"{api_stack.base_url}/openapi.json", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read()) == document()


def test_the_document_is_generated_from_each_functions_resolver() -> None:
    # Given the handler modules of template.yaml's HTTP functions
    modules = generate.http_handler_modules()
    # Then each is a package under functions/ with a resolver, and every route they declare is documented
    assert "functions.stripe_webhook.app" in modules
    assert "functions.openapi.app" in modules
    declared = set()
    for resolver in generate.resolvers():
        for route in resolver._static_routes + resolver._dynamic_routes:
            declared.add((route.method, route.openapi_path))
    assert declared == set(operations())
    assert all(Path(REPO_ROOT, *m.split(".")[:-1], "app.py").is_file() for m in modules)
