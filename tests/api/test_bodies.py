"""Bodies that are not UTF-8 text: API Gateway passes them base64-encoded, and they are a 400 as
api.md wants (found by the dashboard fuzz: Powertools' `decoded_body` raised, a 500)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import ApiStack, Request, send

NOT_UTF8 = b'{"api_key": "rk_test_\xff\xfe"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/projects/bodies/integrations/stripe"), ("PUT", "/projects/bodies/visitors/v1")],
)
def test_a_dashboard_body_that_is_not_utf8_is_invalid_request(api_stack: ApiStack, method: str, path: str) -> None:
    request = Request(method, path, NOT_UTF8, {"Authorization": f"Bearer {api_stack.token('bodies')}"})
    before = api_stack.tables()

    status, answer = send(api_stack, request)

    assert (status, json.loads(answer)["error"]["code"]) == (400, "invalid_request")
    assert api_stack.tables() == before


def test_a_webhook_body_that_is_not_utf8_is_answered_not_failed(api_stack: ApiStack) -> None:
    status, answer = send(api_stack, Request("POST", "/webhooks/stripe/no-such-project", NOT_UTF8))

    assert (status, json.loads(answer)["error"]["code"]) == (404, "not_found")
