"""Schemathesis over every dashboard route of the document, against the real local stack, with a
valid token: generated valid and invalid inputs (paths, queries, bodies) never get a 5xx, and every
answer is one the document describes (status, content type, body schema)."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.case import Case

from functions.openapi.document import DOCUMENT
from local.stack.auth import issue_token
from shared.http import BEARER_SCHEME
from tests.api.conftest import JWT_SECRET, ApiStack

PROJECT = "fuzz-project"  # the token's project: requests get past 403 to the handlers
MAX_EXAMPLES = 15  # per route and generation mode; the folder runs in well under 90 s on 2 cores

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all"},  # schema-valid and schema-violating inputs
        "parameters": {"path.project_id": PROJECT},
        # the valid token, given as the document's security scheme (so it is not what is mutated)
        "auth": {"openapi": {BEARER_SCHEME: {"bearer": issue_token([PROJECT], JWT_SECRET)}}},
        "checks": {
            # API Gateway answers a method no route has with 404 (its own), as the local stack does
            "unsupported_method": {"enabled": False},
            # A schema-valid request may still be refused as api.md says: a key Stripe does not know
            # (400/422), a visitor that does not exist (404), an unparsable time (400). Those answers
            # are documented, and status_code_conformance checks them.
            "positive_data_acceptance": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT), config=CONFIG).include(path_regex="^/projects/")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_dashboard_routes_answer_as_documented(case: Case, api_stack: ApiStack) -> None:
    case.call_and_validate(base_url=api_stack.base_url)
