"""The real local stack (`python -m local.stack`, as `make run` starts it) for the API document's
tests: moto on a known port, so that a test can read every table and see what a request wrote."""

from __future__ import annotations

import http.client
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl
from tests.stack_process import stack_process

JWT_SECRET = "api-tests-secret-of-at-least-thirty-two-bytes"
REGION = "us-east-1"


@dataclass
class ApiStack:
    base_url: str
    moto_url: str
    control: EmulatorControl

    def token(self, *projects: str) -> str:
        return issue_token(list(projects), JWT_SECRET)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's
        )

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table, sorted: what the stack has stored."""
        dynamodb = self.client("dynamodb")
        contents = {}
        for table in dynamodb.list_tables()["TableNames"]:
            items = [
                item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]
            ]
            contents[table] = sorted(items, key=repr)
        return contents


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def send(stack: ApiStack, request: Request) -> tuple[int, bytes]:
    host = urllib.parse.urlsplit(stack.base_url).netloc
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(request.method, request.path, body=request.body, headers=request.headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="session")
def api_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with stack_process(tmp_path_factory.mktemp("api-stack"), JWT_SECRET) as running:
        yield ApiStack(running.base_url, running.moto_url, EmulatorControl(running.stripe_url))
