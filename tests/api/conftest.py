"""The real local stack (`python -m local.stack`, as `make run` starts it) for the API document's
tests: moto on a known port, so that a test can read every table and see what a request wrote."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from local.net import free_port
from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl

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
    port, moto_port, stripe_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "MOTO_PORT": str(moto_port),
        "STRIPE_EMULATOR_PORT": str(stripe_port),
        "LOCAL_JWT_SECRET": JWT_SECRET,
        "DEMO_SEED": "0",
    }
    env.pop("STRIPE_API_BASE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    log_path = tmp_path_factory.mktemp("api-stack") / "stack.log"
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(f"the local stack did not become healthy:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield ApiStack(base_url, f"http://127.0.0.1:{moto_port}", EmulatorControl(f"http://127.0.0.1:{stripe_port}"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()
    # Every AWS call the stack's functions made was allowed by their roles (local.iam logs denials)
    denials = [line for line in log_path.read_text(errors="replace").splitlines() if "AccessDenied" in line]
    assert not denials, "\n".join(denials)
