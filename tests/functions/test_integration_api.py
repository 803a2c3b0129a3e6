"""Connecting a Stripe account: the handler, the domain and Secrets Manager/DynamoDB (moto) against
the emulator, with every failure leaving nothing behind."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions.integration_api.app import lambda_handler
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared.integrations import store as integration_store
from shared.stripe_api.events import PROCESSED_EVENT_TYPES
from tests.apigw import http_event, response_json
from tests.conftest import AwsEnv

ROUTE = "/projects/{project_id}/integrations/stripe"
PROJECT = "proj-1"


def call(
    context: Any, method: str = "POST", body: Any = None, project: str = PROJECT, projects: list[str] | None = None
) -> tuple[int, Any]:
    event = http_event(
        method, ROUTE, {"project_id": project}, body=body, projects=[PROJECT] if projects is None else projects
    )
    response = lambda_handler(event, context)
    return response["statusCode"], response_json(response)


def connect(context: Any, key: str) -> tuple[int, Any]:
    return call(context, body={"api_key": key})


def secret_names() -> list[str]:
    return [s["Name"] for s in boto3.client("secretsmanager").list_secrets()["SecretList"]]


def assert_nothing_left(control: EmulatorControl, account: EmulatorAccount) -> None:
    """No secret, no integration record, no webhook endpoint in the Stripe account."""
    assert secret_names() == []
    assert integration_store.get(PROJECT) is None
    endpoints = control.client(account.secret_key).v1.webhook_endpoints.list()
    assert endpoints.data == []


def test_connect_creates_endpoint_secret_and_record(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, lambda_context: Any
) -> None:
    # When the project connects with the product's restricted key
    status, body = connect(lambda_context, account.restricted_key)
    # Then it is connected, with a key hint and its history's import queued (run 1)
    assert status == 201, body
    assert body["provider"] == "stripe"
    assert body["status"] == "connected"
    assert body["mode"] == "test"
    assert body["key_hint"] == f"rk_test_...{account.restricted_key[-4:]}"
    backfill = body["backfill"]
    assert (backfill["run"], backfill["status"], backfill["charges_imported"]) == (1, "queued", 0)
    assert backfill["progress"]["slices_done"] == 0
    assert backfill["progress"]["slices"] > 0
    assert (backfill["phase"], backfill["oldest_imported_at"], backfill["finished_at"], backfill["error"]) == (
        None,
        None,
        None,
        None,
    )
    assert body["warnings"] == []
    assert account.restricted_key not in json.dumps(body)
    # And the endpoint exists in Stripe with our url, event types, pinned version and project
    (endpoint,) = control.client(account.secret_key).v1.webhook_endpoints.list().data
    assert endpoint.id == body["webhook_endpoint_id"]
    assert endpoint.url == f"https://hooks.ripples.test/webhooks/stripe/{PROJECT}"
    assert sorted(endpoint.enabled_events) == sorted(PROCESSED_EVENT_TYPES)
    assert "invoice.created" not in endpoint.enabled_events
    assert endpoint.api_version == "2026-10-28.endive"
    assert endpoint.metadata["ripples_project_id"] == PROJECT
    # And the key and webhook secret are in Secrets Manager only
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=f"{aws.secrets_prefix}projects/{PROJECT}")[
            "SecretString"
        ]
    )
    assert secret["api_key"] == account.restricted_key
    assert secret["webhook_secret"].startswith("whsec_")
    item = boto3.client("dynamodb").get_item(TableName=aws.integrations_table, Key={"project_id": {"S": PROJECT}})
    assert "rk_test_" + account.restricted_key[8:] not in json.dumps(item["Item"])
    assert "whsec_" not in json.dumps(item["Item"])
    # And GET shows the same integration
    status, got = call(lambda_context, "GET")
    assert (status, got) == (200, body)


def test_status_of_a_never_connected_project(aws: AwsEnv, lambda_context: Any) -> None:
    assert call(lambda_context, "GET") == (200, {"provider": "stripe", "status": "disconnected"})


def test_secret_keys_are_accepted_with_a_warning(
    stripe_env: None, aws: AwsEnv, account: EmulatorAccount, lambda_context: Any
) -> None:
    status, body = connect(lambda_context, account.secret_key)
    assert status == 201
    assert body["key_hint"].startswith("sk_test_...")
    assert len(body["warnings"]) == 1
    assert "restricted key" in body["warnings"][0]


def test_a_second_connect_is_a_conflict(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, lambda_context: Any
) -> None:
    assert connect(lambda_context, account.restricted_key)[0] == 201
    status, body = connect(lambda_context, account.restricted_key)
    assert status == 409
    assert body["error"]["code"] == "already_connected"
    assert len(control.client(account.secret_key).v1.webhook_endpoints.list().data) == 1


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("not json", "invalid_request", "body"),
        ({}, "invalid_request", "api_key"),
        ({"api_key": 42}, "invalid_request", "api_key"),
        ({"api_key": "hello"}, "invalid_key_format", "restricted key"),
        ({"api_key": "rk_prod_abcdefghijkl"}, "invalid_key_format", "restricted key"),
        ({"api_key": "pk_test_abcdefghijkl"}, "invalid_key_format", "publishable"),
    ],
)
def test_malformed_requests_are_400_and_change_nothing(
    stripe_env: None,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    lambda_context: Any,
    body: Any,
    code: str,
    fragment: str,
) -> None:
    status, answer = call(lambda_context, body=body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert fragment in answer["error"]["message"]
    assert_nothing_left(control, account)


def test_token_checks_come_first_then_ids_then_projects(aws: AwsEnv, lambda_context: Any) -> None:
    # No token at all: 401, even with a bad body
    event = http_event("POST", ROUTE, {"project_id": PROJECT}, body="nope", projects=None)
    assert lambda_handler(event, lambda_context)["statusCode"] == 401
    # A bad project id: 400 before the project check
    assert call(lambda_context, body={"api_key": "x"}, project="bad id!", projects=["other"])[0] == 400
    # Another project's token: 403
    status, body = call(lambda_context, body={"api_key": "rk_test_abcdefghijkl"}, projects=["other"])
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_a_revoked_key_is_rejected(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, lambda_context: Any
) -> None:
    control.revoke_key(account.restricted_key)
    status, body = connect(lambda_context, account.restricted_key)
    assert (status, body["error"]["code"]) == (422, "stripe_key_rejected")
    assert account.restricted_key not in json.dumps(body)
    assert_nothing_left(control, account)


@pytest.mark.parametrize(
    ("permissions", "missing"),
    [
        (
            [
                "rak_charge_read",
                "rak_customer_read",
                "rak_checkout_session_read",
                "rak_invoice_read",
                "rak_webhook_write",
            ],
            ["Subscriptions: Read"],
        ),
        (
            ["rak_charge_read", "rak_webhook_write"],
            ["Customers: Read", "Checkout Sessions: Read", "Subscriptions: Read", "Invoices: Read"],
        ),
        (
            [
                "rak_charge_read",
                "rak_customer_read",
                "rak_checkout_session_read",
                "rak_subscription_read",
                "rak_invoice_read",
            ],
            ["Webhook Endpoints: Write"],
        ),
        (
            [
                "rak_charge_read",
                "rak_customer_read",
                "rak_checkout_session_read",
                "rak_subscription_read",
                "rak_invoice_read",
                "rak_webhook_read",
            ],
            ["Webhook Endpoints: Write"],
        ),
    ],
)
def test_missing_permissions_are_named(
    stripe_env: None,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    lambda_context: Any,
    permissions: list[str],
    missing: list[str],
) -> None:
    key = control.create_key(account.id, permissions)
    status, body = connect(lambda_context, key)
    assert (status, body["error"]["code"]) == (422, "missing_permissions")
    assert body["error"]["missing"] == missing
    assert_nothing_left(control, account)


def test_stripe_down_is_502(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("STRIPE_MAX_RETRIES", "0")
    reset_caches()
    status, body = connect(lambda_context, "rk_test_" + "a" * 24)
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
    assert secret_names() == []
    assert integration_store.get(PROJECT) is None


def test_endpoint_creation_failing_leaves_nothing(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, lambda_context: Any
) -> None:
    control.fault(account.id, "POST /v1/webhook_endpoints", status=500, count=10)
    status, body = connect(lambda_context, account.restricted_key)
    assert (status, body["error"]["code"]) == (502, "stripe_unavailable")
    assert_nothing_left(control, account)


def test_secret_storage_failing_removes_the_endpoint(
    stripe_env: None,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    from shared import secrets

    def failing_store(*_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "down"}}, "CreateSecret")

    monkeypatch.setattr(secrets, "store", failing_store)
    status, body = connect(lambda_context, account.restricted_key)
    assert (status, body["error"]["code"]) == (503, "service_unavailable")
    assert_nothing_left(control, account)


def test_record_failing_removes_endpoint_and_secret(
    stripe_env: None,
    aws: AwsEnv,
    control: EmulatorControl,
    account: EmulatorAccount,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.errors import AlreadyConnected

    def racing_create(*_: Any) -> None:
        raise AlreadyConnected("another connect won the race")

    monkeypatch.setattr(integration_store, "create", racing_create)
    status, body = connect(lambda_context, account.restricted_key)
    assert (status, body["error"]["code"]) == (409, "already_connected")
    assert_nothing_left(control, account)
