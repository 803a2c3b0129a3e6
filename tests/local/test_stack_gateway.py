"""The local stack on a small template of the tests' own (handlers in test_stack_support.py): the HTTP API
event and response mapping, route matching, the JWT authorizer, and SQS event sources."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt as pyjwt
import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, SQSEvent
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, SqsModel

from local.stack.auth import issue_token
from local.stack.runner import RunningStack, start_stack

from . import test_stack_support as support
from .test_stack_support import dynamodb_client, http, sqs_client

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # short test secrets

SECRET = "gateway-test-secret"
HANDLERS = "tests.local.test_stack_support"

TEMPLATE = f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {{Type: String, AllowedValues: [dev, prod], Default: prod}}
  PublicBaseUrl: {{Type: String}}
  JwtIssuer: {{Type: String}}
  JwtAudience: {{Type: String}}
Globals:
  Function:
    Runtime: python3.13
    CodeUri: .
    Timeout: 5
    MemorySize: 256
    Environment:
      Variables:
        ITEMS_TABLE: !Ref ItemsTable
        WORK_QUEUE_URL: !Ref WorkQueue
        PUBLIC_BASE_URL: !Ref PublicBaseUrl
Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: !Ref JwtIssuer
              audience: [!Ref JwtAudience]
  ItemsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "items-${{Stage}}"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {{AttributeName: id, AttributeType: S}}
        - {{AttributeName: owner, AttributeType: S}}
      KeySchema:
        - {{AttributeName: id, KeyType: HASH}}
      GlobalSecondaryIndexes:
        - IndexName: by-owner
          KeySchema:
            - {{AttributeName: owner, KeyType: HASH}}
          Projection: {{ProjectionType: KEYS_ONLY}}
          ContributorInsightsSpecification: {{Enabled: false}}
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDeadLetterQueue.Arn
        maxReceiveCount: 2
  WorkDeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  FlakyQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.echo
      Events:
        GetItem: {{Type: HttpApi, Properties: {{ApiId: !Ref HttpApi, Path: "/items/{{item_id}}", Method: GET}}}}
        PostItem: {{Type: HttpApi, Properties: {{ApiId: !Ref HttpApi, Path: "/items/{{item_id}}", Method: post}}}}
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /public/{{name}}
            Method: ANY
            Auth: {{Authorizer: NONE}}
        Files:
          Type: HttpApi
          Properties: {{ApiId: !Ref HttpApi, Path: "/files/{{path+}}", Method: GET, Auth: {{Authorizer: NONE}}}}
        Scoped:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /scoped
            Method: GET
            Auth: {{Authorizer: Jwt, AuthorizationScopes: [items:read]}}
  SpecialFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.special
      Timeout: 3
      Events:
        Special: {{Type: HttpApi, Properties: {{ApiId: !Ref HttpApi, Path: /items/special, Method: GET}}}}
        FilesReadme:
          Type: HttpApi
          Properties: {{ApiId: !Ref HttpApi, Path: "/files/{{name}}", Method: GET, Auth: {{Authorizer: NONE}}}}
  RespondFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.respond
      Events:
        Respond:
          Type: HttpApi
          Properties: {{ApiId: !Ref HttpApi, Path: "/respond/{{kind}}", Method: GET, Auth: {{Authorizer: NONE}}}}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.worker
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
  FlakyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.flaky
      Events:
        Flaky: {{Type: SQS, Properties: {{Queue: !GetAtt FlakyQueue.Arn, BatchSize: 1}}}}
        Nightly: {{Type: Schedule, Properties: {{Schedule: rate(1 day)}}}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    path: Path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    running = start_stack(template_path=path, jwt_secret=SECRET, parameters={"Stage": "dev"})
    yield running
    running.stop()


def _bearer(*projects: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(projects, SECRET, **kwargs)}"}


def _echo(result: support.HttpResult) -> tuple[dict[str, Any], dict[str, Any]]:
    assert result.status == 200, result.body
    body = result.json()
    return body["event"], body


# ---- resources and environment from the template --------------------------------------------------


def test_resources_of_the_small_template(stack: RunningStack) -> None:
    dynamodb = dynamodb_client(stack.moto_url)
    sqs = sqs_client(stack.moto_url)

    table = dynamodb.describe_table(TableName="items-dev")["Table"]
    work_url = stack.resources.queues["WorkQueue"]
    attributes = sqs.get_queue_attributes(QueueUrl=work_url, AttributeNames=["All"])["Attributes"]

    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["by-owner"]
    assert work_url == f"{stack.moto_url}/123456789012/ripples-local-WorkQueue"
    assert attributes["VisibilityTimeout"] == "1"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:ripples-local-WorkDeadLetterQueue",
        "maxReceiveCount": 2,
    }


# ---- the HTTP API event --------------------------------------------------------------------------


def test_event_is_payload_2_0_with_claims_for_the_handler(stack: RunningStack) -> None:
    headers = _bearer("p1", "p2") | {"X-Custom": "one", "Cookie": "a=1; b=2", "Content-Type": "application/json"}

    result = http("POST", f"{stack.base_url}/items/it%3Aem-1?x=1&x=2&y=&z=a%20b", b'{"n": 1}', headers)

    event, body = _echo(result)

    APIGatewayProxyEventV2Model.model_validate(event)  # Powertools' strict model of the format
    parsed = APIGatewayProxyEventV2(event)
    assert parsed.version == "2.0"
    assert parsed.route_key == "POST /items/{item_id}"
    assert parsed.raw_path == "/items/it%3Aem-1"
    assert parsed.path_parameters == {"item_id": "it:em-1"}
    assert parsed.raw_query_string == "x=1&x=2&y=&z=a%20b"
    assert parsed.query_string_parameters == {"x": "1,2", "y": "", "z": "a b"}
    assert parsed.body == '{"n": 1}'
    assert parsed.json_body == {"n": 1}
    assert parsed.is_base64_encoded is False
    assert parsed.cookies == ["a=1", "b=2"]
    assert "cookie" not in parsed.headers
    assert parsed.headers["x-custom"] == "one"
    assert parsed.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in parsed.headers)
    assert parsed.headers["authorization"] == headers["Authorization"]
    context = parsed.request_context
    assert context.stage == "$default"
    assert parsed.path == "/items/it%3Aem-1"
    assert context.http.method == "POST"
    assert context.http.source_ip == "127.0.0.1"
    assert context.http.user_agent.startswith("Python-urllib/")
    assert context.http.protocol == "HTTP/1.1"
    assert context.account_id == "123456789012"
    assert context.api_id == "httpapi"
    assert context.route_key == "POST /items/{item_id}"
    assert abs(context.time_epoch / 1000 - time.time()) < 10
    assert context.request_id == result.headers["Apigw-Requestid"]
    claims = context.authorizer.jwt_claim
    assert claims["projects"] == "[p1 p2]"
    assert claims["exp"].isdigit()
    assert claims["iat"].isdigit()
    assert claims["sub"] == "local-developer"
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] is None
    assert body["context"]["function_name"] == "ripples-local-EchoFunction"
    assert body["context"]["memory_limit_in_mb"] == 256
    assert body["context"]["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:ripples-local-EchoFunction"
    )
    assert 0 < body["context"]["remaining_ms"] <= 5000
    assert body["environ"] == {
        "ITEMS_TABLE": "items-dev",
        "WORK_QUEUE_URL": f"{stack.moto_url}/123456789012/ripples-local-WorkQueue",
        "PUBLIC_BASE_URL": stack.base_url,
    }


def test_get_without_body_or_query_leaves_them_out(stack: RunningStack) -> None:
    event, _ = _echo(http("GET", f"{stack.base_url}/public/alice", headers={"X-Dup": "a"}))

    parsed = APIGatewayProxyEventV2(event)
    assert "body" not in event
    assert "queryStringParameters" not in event
    assert "cookies" not in event
    assert "authorizer" not in event["requestContext"]  # Authorizer: NONE
    assert parsed.route_key == "ANY /public/{name}"
    assert parsed.raw_query_string == ""
    assert parsed.query_string_parameters == {}


def test_binary_body_is_base64(stack: RunningStack) -> None:
    payload = bytes(range(256))

    event, _ = _echo(http("PUT", f"{stack.base_url}/public/bob", payload, {"Content-Type": "application/octet-stream"}))

    parsed = APIGatewayProxyEventV2(event)
    assert parsed.is_base64_encoded is True
    assert base64.b64decode(parsed.body or "") == payload


def test_most_specific_route_wins(stack: RunningStack) -> None:
    special = http("GET", f"{stack.base_url}/items/special", headers=_bearer("p"))
    variable = http("GET", f"{stack.base_url}/items/other", headers=_bearer("p"))
    readme = http("GET", f"{stack.base_url}/files/readme")
    nested = http("GET", f"{stack.base_url}/files/docs/a/b.txt")

    assert special.json() == {"handler": "special"}
    assert _echo(variable)[0]["routeKey"] == "GET /items/{item_id}"
    assert readme.json() == {"handler": "special"}
    nested_event = _echo(nested)[0]
    assert nested_event["routeKey"] == "GET /files/{path+}"
    assert nested_event["pathParameters"] == {"path": "docs/a/b.txt"}
    assert http("GET", f"{stack.base_url}/files/").status == 404
    assert http("DELETE", f"{stack.base_url}/items/x", headers=_bearer("p")).json() == {"message": "Not Found"}


# ---- the JWT authorizer ------------------------------------------------------------------------


def test_no_bad_or_expired_token_is_401_without_the_handler(stack: RunningStack) -> None:
    url = f"{stack.base_url}/items/i1"
    before = len(support.calls("echo"))
    cases = {
        "none": {},
        "not a jwt": {"Authorization": "Bearer not-a-jwt"},
        "bad signature": {"Authorization": f"Bearer {issue_token(['p1'], 'wrong-secret')}"},
        "expired": _bearer("p1", ttl_seconds=-1),
        "no bearer value": {"Authorization": "Bearer"},
    }

    for name, headers in cases.items():
        result = http("GET", url, headers=headers)

        assert (result.status, result.json()) == (401, {"message": "Unauthorized"}), name
    assert len(support.calls("echo")) == before


def test_token_without_projects_reaches_the_handler(stack: RunningStack) -> None:
    token = issue_token([], SECRET)
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})
    del claims["projects"]
    headers = {"Authorization": pyjwt.encode(claims, SECRET, algorithm="HS256")}  # bare token, no "Bearer"

    event, _ = _echo(http("GET", f"{stack.base_url}/items/i1", headers=headers))

    assert "projects" not in event["requestContext"]["authorizer"]["jwt"]["claims"]


def test_route_scopes_are_checked(stack: RunningStack) -> None:
    def token(scope: str) -> dict[str, str]:
        claims = {"projects": ["p"], "scope": scope, "exp": int(time.time()) + 60}
        return {"Authorization": f"Bearer {pyjwt.encode(claims, SECRET, algorithm='HS256')}"}

    denied = http("GET", f"{stack.base_url}/scoped", headers=token("items:write"))
    allowed = http("GET", f"{stack.base_url}/scoped", headers=token("items:write items:read"))

    assert (denied.status, denied.json()) == (403, {"message": "Forbidden"})
    assert _echo(allowed)[0]["requestContext"]["authorizer"]["jwt"]["scopes"] == ["items:write", "items:read"]


# ---- responses -----------------------------------------------------------------------------------


def test_responses_are_mapped_like_api_gateway(stack: RunningStack) -> None:
    plain = http("GET", f"{stack.base_url}/respond/plain")
    text = http("GET", f"{stack.base_url}/respond/text")
    binary = http("GET", f"{stack.base_url}/respond/binary")
    cookies = http("GET", f"{stack.base_url}/respond/cookies")

    assert (plain.status, plain.headers["Content-Type"], plain.json()) == (200, "application/json", {"hello": "world"})
    assert (text.status, text.json()) == (200, "just text")
    assert (binary.status, binary.body) == (201, b"\x00\xff\x10")
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.headers["X-Extra"] == "7"
    assert binary.headers["Apigw-Requestid"]
    assert cookies.status == 204
    assert cookies.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]


def test_function_errors_are_api_gateways_500(stack: RunningStack) -> None:
    for kind in ("boom", "invalid"):
        result = http("GET", f"{stack.base_url}/respond/{kind}")

        assert (result.status, result.json()) == (500, {"message": "Internal Server Error"}), kind


# ---- SQS event sources -----------------------------------------------------------------------------


def _wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _count(sqs: SQSClient, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_partial_batch_failures_come_back_then_go_to_the_dead_letter_queue(stack: RunningStack) -> None:
    sqs = sqs_client(stack.moto_url)
    work, dead = stack.resources.queues["WorkQueue"], stack.resources.queues["WorkDeadLetterQueue"]
    sent = {
        body: sqs.send_message(
            QueueUrl=work,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": body.split("-")[0]}},
        )["MessageId"]
        for body in ("ok-1", "fail-1", "ok-2")
    }

    _wait_for(lambda: _count(sqs, dead) == 1)
    _wait_for(lambda: _count(sqs, work) == 0)

    events = support.calls("worker")
    deliveries: dict[str, list[str]] = {}
    for event in events:
        SqsModel.model_validate(event)
        for record in SQSEvent(event).records:
            deliveries.setdefault(record.body, []).append(record.attributes.approximate_receive_count)
            assert record.message_id == sent[record.body]
            assert record.event_source_arn == "arn:aws:sqs:us-east-1:123456789012:ripples-local-WorkQueue"
            kind = record.message_attributes["kind"]
            assert kind is not None
            assert kind.string_value == record.body.split("-")[0]
            assert record.aws_region == "us-east-1"
            assert record.md5_of_body
    assert deliveries == {"ok-1": ["1"], "ok-2": ["1"], "fail-1": ["1", "2"]}
    assert all(len(event["Records"]) <= 5 for event in events)
    dead_letter = sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=1)["Messages"]
    assert [message["Body"] for message in dead_letter] == ["fail-1"]


def test_a_failed_invocation_leaves_the_batch_for_a_later_delivery(stack: RunningStack) -> None:
    sqs = sqs_client(stack.moto_url)
    flaky = stack.resources.queues["FlakyQueue"]

    message_id = sqs.send_message(QueueUrl=flaky, MessageBody="again")["MessageId"]
    _wait_for(lambda: len(support.calls("flaky")) >= 2 and _count(sqs, flaky) == 0)

    received = [
        record["attributes"]["ApproximateReceiveCount"]
        for event in support.calls("flaky")
        for record in event["Records"]
        if record["messageId"] == message_id
    ]
    assert received == ["1", "2"]
