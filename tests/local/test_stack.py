"""The local stack on the real template.yaml: resources and environment from the template, the
gateway's own answers (healthz, 404, API Gateway's 401), tokens, and `python -m local.stack` itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import jwt
import pytest

from local.net import free_port
from local.stack.__main__ import options_from, parameter_overrides
from local.stack.auth import DEFAULT_SECRET, claim_string, issue_token, verify_token
from local.stack.functions import read_functions
from local.stack.runner import RunningStack, start_stack
from local.stack.template import DEFAULT_TEMPLATE, NO_VALUE, REPO_ROOT, Template, TemplateError, load_template

from .test_stack_support import dynamodb_client, http

pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # the short development secret

# ---- template loading and resolution ----------------------------------------------------------


def test_short_tags_load_as_long_forms() -> None:
    data = load_template(DEFAULT_TEMPLATE)

    globals_env = data["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["INTEGRATIONS_TABLE"] == {"Ref": "IntegrationsTable"}
    assert globals_env["SECRETS_PREFIX"] == {"Fn::Sub": "ripples-stripe/${Stage}/"}
    assert data["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date


def test_intrinsics_resolve_for_a_local_stack(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  Stage: {Type: String, AllowedValues: [dev, prod], Default: dev}
  Names: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
  Named:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-named-${Stage}"
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
  Values:
    Type: AWS::SNS::Topic
    Properties:
      Sub: !Sub "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Jobs.QueueName}/${!Literal}"
      SubVars: !Sub ["${A}-${B}", {A: !Ref Stage, B: x}]
      Join: !Join ["/", [a, !Ref Stage, !Select [1, !Ref Names]]]
      Split: !Split [",", "x,y"]
      If: !If [IsDev, dev-value, prod-value]
      Gone: !If [IsProd, kept, !Ref AWS::NoValue]
      Arn: !GetAtt Named.Arn
      Url: !Ref Jobs
      GetAttList: !GetAtt [Jobs, Arn]
""",
        encoding="utf-8",
    )
    template = Template.load(path, sqs_endpoint="http://127.0.0.1:5000")

    values = template.properties("Values")

    assert values == {
        "Sub": "arn:aws:x:us-east-1:123456789012:ripples-local-Jobs.fifo/${Literal}",
        "SubVars": "dev-x",
        "Join": "a/dev/b",
        "Split": ["x", "y"],
        "If": "dev-value",
        "Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/ripples-local-named-dev",
        "Url": "http://127.0.0.1:5000/123456789012/ripples-local-Jobs.fifo",
        "GetAttList": "arn:aws:sqs:us-east-1:123456789012:ripples-local-Jobs.fifo",
    }
    assert template.resources_of_type("AWS::SQS::Queue") == ["Jobs"]  # ProdOnly's condition is false
    assert template.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    with pytest.raises(TemplateError, match="not one of"):
        Template.load(path, parameters={"Stage": "staging"})
    with pytest.raises(TemplateError, match="unknown parameters"):
        Template.load(path, parameters={"Nope": "x"})
    with pytest.raises(TemplateError, match="not emulated"):
        template.resolve({"Fn::ImportValue": "x"})


def test_parameters_without_default_need_a_value() -> None:
    with pytest.raises(TemplateError, match="PublicBaseUrl"):
        Template.load(DEFAULT_TEMPLATE)


def test_functions_and_routes_come_from_the_template() -> None:
    template = Template.load(
        DEFAULT_TEMPLATE,
        parameters={"PublicBaseUrl": "http://x", "JwtIssuer": "i", "JwtAudience": "a"},
    )

    functions = {spec.logical_id: spec for spec in read_functions(template)}

    webhook = functions["StripeWebhookFunction"]
    assert webhook.handler == "functions.stripe_webhook.app.lambda_handler"
    assert [(r.route_key, r.authorizer) for r in webhook.http_routes] == [("POST /webhooks/stripe/{project_id}", None)]
    integration = functions["IntegrationApiFunction"]
    assert integration.timeout_seconds == 40  # its own Timeout over Globals' 29
    assert {r.route_key for r in integration.http_routes} == {
        "POST /projects/{project_id}/integrations/stripe",
        "GET /projects/{project_id}/integrations/stripe",
        "DELETE /projects/{project_id}/integrations/stripe",
        "POST /projects/{project_id}/integrations/stripe/resync",
    }
    authorizer = integration.http_routes[0].authorizer
    assert authorizer is not None
    assert (authorizer.name, authorizer.identity_header) == ("DashboardJwt", "authorization")
    assert functions["VisitorApiFunction"].memory_mb == 512  # Globals


# ---- the stack on template.yaml ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    running = start_stack()
    yield running
    running.stop()


def test_tables_of_the_template_exist_with_their_keys_and_ttl(stack: RunningStack) -> None:
    dynamodb = dynamodb_client(stack.moto_url)

    revenue = dynamodb.describe_table(TableName="ripples-local-RevenueTable")["Table"]
    integrations = dynamodb.describe_table(TableName="ripples-local-IntegrationsTable")["Table"]

    assert revenue["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert revenue["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName="ripples-local-RevenueTable")["TimeToLiveDescription"]
    assert ttl == {"AttributeName": "expires_at", "TimeToLiveStatus": "ENABLED"}
    assert integrations["KeySchema"] == [{"AttributeName": "project_id", "KeyType": "HASH"}]
    assert stack.resources.tables == {
        "IntegrationsTable": "ripples-local-IntegrationsTable",
        "RevenueTable": "ripples-local-RevenueTable",
    }


def test_environment_is_the_templates_resolved_locally(stack: RunningStack) -> None:
    expected = {
        "INTEGRATIONS_TABLE": "ripples-local-IntegrationsTable",
        "REVENUE_TABLE": "ripples-local-RevenueTable",
        "SECRETS_PREFIX": "ripples-stripe/dev/",
        "PUBLIC_BASE_URL": stack.base_url,
        "STRIPE_API_BASE": stack.stripe_url,
        "POWERTOOLS_SERVICE_NAME": "ripples-stripe",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_ENDPOINT_URL": stack.moto_url,
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    assert {name: os.environ.get(name) for name in expected} == expected
    assert stack.emulator is not None
    assert stack.stripe_url == stack.emulator.base_url


def test_boto3_in_the_process_reaches_moto(stack: RunningStack) -> None:
    # What a handler does: a plain client, configured by the environment only.
    tables = boto3.client("dynamodb").list_tables()["TableNames"]

    assert "ripples-local-RevenueTable" in tables


def test_healthz_once_tables_exist_and_the_emulator_answers(stack: RunningStack) -> None:
    result = http("GET", f"{stack.base_url}/healthz")

    assert (result.status, result.json()) == (200, {"status": "ok"})


def test_unknown_route_is_api_gateways_404(stack: RunningStack) -> None:
    for method, path in [("GET", "/nope"), ("PATCH", "/projects/p1/integrations/stripe"), ("GET", "/healthz/x")]:
        result = http(method, f"{stack.base_url}{path}")

        assert (result.status, result.json()) == (404, {"message": "Not Found"}), (method, path)


def test_a_schedule_fires_on_demand_only_for_a_scheduled_function(stack: RunningStack) -> None:
    # (the sweep itself: tests/reconcile; here the stack's route to it)
    assert stack.functions["ReconcileFunction"].spec.schedules == ("Sweep",)
    fired = http("POST", f"{stack.base_url}/_local/schedules/ReconcileFunction")
    assert fired.status == 200
    assert fired.json()["projects"] == 0
    for other in ("IntegrationApiFunction", "Nope"):
        assert http("POST", f"{stack.base_url}/_local/schedules/{other}").status == 404


def test_dashboard_route_without_a_valid_token_is_401_before_any_handler(stack: RunningStack) -> None:
    url = f"{stack.base_url}/projects/p1/integrations/stripe"
    expired = issue_token(["p1"], DEFAULT_SECRET, ttl_seconds=-60)
    other_secret = issue_token(["p1"], "another-secret")

    for headers in [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {other_secret}"},
    ]:
        result = http("GET", url, headers=headers)

        assert (result.status, result.json()) == (401, {"message": "Unauthorized"})
    assert not stack.functions["IntegrationApiFunction"].imported  # so never called


# ---- tokens -----------------------------------------------------------------------------------


def test_token_cli_prints_a_token_for_the_projects() -> None:
    env = os.environ | {"LOCAL_JWT_SECRET": "cli-secret"}

    output = subprocess.run(
        [sys.executable, "-m", "local.stack.token", "p1", "p2"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()

    claims = verify_token(f"Bearer {output}", "cli-secret")
    assert claims is not None
    assert claims["projects"] == ["p1", "p2"]
    assert 11.9 * 3600 < claims["exp"] - time.time() <= 12 * 3600
    assert verify_token(output, DEFAULT_SECRET) is None


def test_tokens_are_checked_like_the_jwt_authorizer() -> None:
    now = int(time.time())
    future = jwt.encode({"projects": ["p"], "nbf": now + 3600}, DEFAULT_SECRET, algorithm="HS256")
    none_alg = jwt.encode({"projects": ["p"]}, "", algorithm="none")

    assert verify_token(issue_token(["p"]), DEFAULT_SECRET) is not None
    assert verify_token(issue_token(["p"]), DEFAULT_SECRET.upper()) is None
    assert verify_token(future, DEFAULT_SECRET) is None
    assert verify_token(none_alg, DEFAULT_SECRET) is None
    assert verify_token(None, DEFAULT_SECRET) is None
    assert verify_token("Bearer ", DEFAULT_SECRET) is None
    assert verify_token(jwt.encode({"projects": []}, DEFAULT_SECRET), DEFAULT_SECRET) == {"projects": []}


def test_claims_are_stringified_like_api_gateway() -> None:
    assert claim_string(["p1", "p2"]) == "[p1 p2]"
    assert claim_string(1700000000) == "1700000000"
    assert claim_string(1.5) == "1.5"
    assert claim_string(True) == "true"
    assert claim_string("x") == "x"


# ---- the command ------------------------------------------------------------------------------


def test_command_options_come_from_the_environment() -> None:
    options = options_from(
        {"PORT": "9000", "STRIPE_API_BASE": "http://stripe.test", "PARAMETER_OVERRIDES": "LogLevel=DEBUG"}
    )

    assert options["port"] == 9000
    assert options["moto_port"] == 0
    assert options["stripe_emulator_port"] == 12111
    assert options["stripe_api_base"] == "http://stripe.test"
    assert options["parameters"] == {"LogLevel": "DEBUG"}
    assert parameter_overrides('A=1 B="two words"') == {"A": "1", "B": "two words"}


def test_python_m_local_stack_serves_until_sigterm() -> None:
    port, stripe_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MOTO_PORT", "STRIPE_API_BASE", "PUBLIC_BASE_URL")}
    env |= {"PORT": str(port), "STRIPE_EMULATOR_PORT": str(stripe_port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if http("GET", f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no /healthz within 60 s"
            time.sleep(0.2)
        assert http("GET", f"http://127.0.0.1:{stripe_port}/_emulator/health").status == 200

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert stopped_in < 5
    assert f"HTTP API  http://127.0.0.1:{port}" in stdout
    assert f"Stripe    http://127.0.0.1:{stripe_port}" in stdout
    assert "moto      http://127.0.0.1:" in stdout
    assert f"HTTP API listening on http://127.0.0.1:{port}" in stderr
