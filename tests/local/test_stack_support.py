"""Support for the local stack's tests (no tests here): handlers the tests' small templates name, helpers."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

CALLS: list[tuple[str, dict[str, Any]]] = []  # (handler, event) of every invocation, in order
_lock = threading.Lock()


def _record(name: str, event: dict[str, Any]) -> None:
    with _lock:
        CALLS.append((name, event))


def calls(name: str) -> list[dict[str, Any]]:
    with _lock:
        return [event for handler, event in CALLS if handler == name]


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The event and the context's attributes, as JSON."""
    _record("echo", event)
    body = {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "environ": {name: os.environ.get(name) for name in ("ITEMS_TABLE", "WORK_QUEUE_URL", "PUBLIC_BASE_URL")},
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def special(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record("special", event)
    return {"statusCode": 200, "body": json.dumps({"handler": "special"})}


def respond(event: dict[str, Any], context: Any) -> Any:
    """Answers in the shape the path asks for."""
    _record("respond", event)
    kind = event["pathParameters"]["kind"]
    if kind == "plain":
        return {"hello": "world"}
    if kind == "text":
        return "just text"
    if kind == "binary":
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/octet-stream", "x-extra": 7},
            "body": base64.b64encode(b"\x00\xff\x10").decode(),
            "isBase64Encoded": True,
        }
    if kind == "cookies":
        return {"statusCode": 204, "cookies": ["a=1; Path=/", "b=2; HttpOnly"]}
    if kind == "invalid":
        return {"statusCode": 200, "body": {"not": "a string"}}
    raise RuntimeError(f"asked to fail: {kind}")


def worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails the records whose body starts with `fail`, through ReportBatchItemFailures."""
    _record("worker", event)
    failures = [
        {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"].startswith("fail")
    ]
    return {"batchItemFailures": failures}


def flaky(event: dict[str, Any], context: Any) -> None:
    """Raises on a message's first delivery (the whole batch fails), succeeds on later ones."""
    _record("flaky", event)
    if any(record["attributes"]["ApproximateReceiveCount"] == "1" for record in event["Records"]):
        raise RuntimeError("first delivery fails")


# ---- helpers for the tests ----------------------------------------------------------------------


@dataclass
class HttpResult:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> HttpResult:
    """One request; HTTP errors are results too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResult(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, error.headers, error.read())


def dynamodb_client(moto_url: str) -> DynamoDBClient:
    return boto3.client(
        "dynamodb",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def sqs_client(moto_url: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
