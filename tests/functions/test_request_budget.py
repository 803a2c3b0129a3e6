"""The webhook's request budget (issue 7), asserted: `make bench-webhook` prints the same scenarios.

Each delivery's DynamoDB requests are counted with botocore's hooks on the functions' client and its
Stripe requests with the emulator's counters; bench.webhook_budget.BUDGET says what each may cost.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3

from bench.webhook_budget import BUDGET, Row, over_budget, scenarios, webhook_request
from functions.stripe_webhook.app import lambda_handler
from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from shared.integrations.connect import connect
from shared.visitors.models import VisitorChanges
from shared.visitors.service import VisitorService
from shared.visitors.store import DynamoVisitorStore
from tests.conftest import AwsEnv, FakeLambdaContext
from tests.revenue_checks import assert_invariant, dynamodb_hook

PROJECT = "budget"


def test_known_customers_events_stay_within_the_request_budget(
    stripe_env: None, aws: AwsEnv, control: EmulatorControl, account: EmulatorAccount, lambda_context: FakeLambdaContext
) -> None:
    control.delivery(account.id, retries=0)
    connect(PROJECT, account.restricted_key)
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=f"{aws.secrets_prefix}projects/{PROJECT}")[
            "SecretString"
        ]
    )["webhook_secret"]
    VisitorService(DynamoVisitorStore.default()).save(PROJECT, "v1", VisitorChanges(email="buyer@example.com"))
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    rows: list[Row] = []

    def deliver(label: str, event: dict[str, Any]) -> None:
        calls.clear()
        control.reset_stats(account.id)
        response = lambda_handler(webhook_request(PROJECT, json.dumps(event).encode(), secret), lambda_context)
        assert response["statusCode"] == 200, response
        rows.append((label, event["type"], Counter(calls), control.stats(account.id), 0.0))

    with dynamodb_hook("before-call.dynamodb", count):
        scenarios(control.client(account.secret_key), control, deliver)

    assert over_budget(rows) == []
    budgeted = {(label, event_type) for label, event_type, *_ in rows if label in BUDGET}
    assert {t for _, t in budgeted} >= {
        "charge.succeeded",
        "charge.refunded",
        "checkout.session.completed",
        "invoice.paid",
        "customer.subscription.updated",
    }, "every budgeted event type was measured"
    assert_invariant(aws.revenue_table)
