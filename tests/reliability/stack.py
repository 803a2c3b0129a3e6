"""The real local stack (`python -m local.stack`) as a subprocess whose moto server we can read directly.

Like tests/e2e/conftest.py, plus `MOTO_PORT`, so that the harness can read the RevenueTable and the
projects' webhook secrets from moto (fake credentials, never a developer's), and the stack's output
goes to a log file rather than the test's output (thousands of request lines).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local.net import free_port
from local.stack.auth import issue_token
from local.stripe_emulator.control_client import EmulatorControl

JWT_SECRET = "reliability-secret-of-at-least-thirty-two-bytes"
REGION = "us-east-1"
FAKE_KEY = "testing"  # moto accepts any credentials; these are never a developer's
REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the stack runs from: this checkout, or another one (e.g. the engine before and after a fix).
STACK_ROOT_VARIABLE = "RELIABILITY_STACK_ROOT"


@dataclass
class LocalStack:
    base_url: str
    moto_url: str
    stripe_url: str
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.stripe_url)

    def token(self, project: str) -> str:
        if project not in self.tokens:
            self.tokens[project] = issue_token([project], JWT_SECRET)
        return self.tokens[project]

    def call(self, method: str, path: str, body: Any = None, project: str | None = None) -> tuple[int, Any]:
        """A dashboard/tracker call with a token for `project`; (status, JSON body)."""
        headers = {"Content-Type": "application/json"}
        if project:
            headers["Authorization"] = f"Bearer {self.token(project)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def aws(self, service: str) -> Any:
        """A boto3 client for the stack's moto server."""
        config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
        session = boto3.session.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=REGION)
        return session.client(service, endpoint_url=self.moto_url, config=config)  # type: ignore[call-overload]

    @cached_property
    def dynamodb(self) -> Any:
        return self.aws("dynamodb")

    @cached_property
    def revenue_table(self) -> str:
        names = [n for n in self.dynamodb.list_tables()["TableNames"] if n.endswith("RevenueTable")]
        assert len(names) == 1, f"expected one RevenueTable in moto, found {names}"
        return str(names[0])

    def webhook_secret(self, project: str) -> str:
        """The project's webhook signing secret, as connect stored it in Secrets Manager (shared/secrets.py)."""
        client = self.aws("secretsmanager")
        names = [
            s["Name"]
            for page in client.get_paginator("list_secrets").paginate()
            for s in page["SecretList"]
            if s["Name"].endswith(f"/projects/{project}")
        ]
        assert len(names) == 1, f"expected one secret of project {project}, found {names}"
        value = json.loads(client.get_secret_value(SecretId=names[0])["SecretString"])
        return str(value["webhook_secret"])

    def connect(self, project: str, api_key: str) -> dict[str, Any]:
        status, integration = self.call(
            "POST", f"/projects/{project}/integrations/stripe", {"api_key": api_key}, project
        )
        assert status == 201, (status, integration)
        assert isinstance(integration, dict)
        return integration

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def local_stack(log_dir: Path, *, log_level: str = "INFO") -> Iterator[LocalStack]:
    """`python -m local.stack` on free ports, until the block ends (SIGTERM, then wait)."""
    port, moto_port, stripe_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "MOTO_PORT": str(moto_port),
        "STRIPE_EMULATOR_PORT": str(stripe_port),
        "LOCAL_JWT_SECRET": JWT_SECRET,
        "PARAMETER_OVERRIDES": f"LogLevel={log_level}",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",  # the harness counts log lines of a run right after it
    }
    for name in ("STRIPE_API_BASE", "AWS_ENDPOINT_URL", "PUBLIC_BASE_URL", "TEMPLATE"):
        env.pop(name, None)
    root = Path(os.environ.get(STACK_ROOT_VARIABLE) or REPO_ROOT)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"stack-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT
        )
    stack = LocalStack(
        base_url=f"http://127.0.0.1:{port}",
        moto_url=f"http://127.0.0.1:{moto_port}",
        stripe_url=f"http://127.0.0.1:{stripe_port}",
        log_path=log_path,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{stack.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not become healthy:\n{stack.log_tail()}")
            time.sleep(0.2)
        yield stack
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
