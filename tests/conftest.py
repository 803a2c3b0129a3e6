"""Fixtures shared by every test: the Stripe emulator served on a free port, accounts, receivers."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

# Powertools reads these when shared.observability is imported: set them before any test imports it.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ripples-stripe-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "RipplesStripeTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from local.stripe_emulator.control_client import EmulatorAccount, EmulatorControl
from local.stripe_emulator.server import RunningEmulator, start


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    running = start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def control(emulator: RunningEmulator) -> EmulatorControl:
    return EmulatorControl(emulator.base_url)


@pytest.fixture
def account(control: EmulatorControl) -> EmulatorAccount:
    """A fresh, isolated emulator account (test mode)."""
    return control.create_account()


@pytest.fixture
def stripe_client(control: EmulatorControl, account: EmulatorAccount) -> stripe.StripeClient:
    """The official SDK with the account's secret key."""
    return control.client(account.secret_key)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTP endpoint that records what it is sent and answers with scripted status codes."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec = state["receiver"]
            with rec.lock:
                rec.received.append(Received(body, dict(self.headers.items())))
            status = rec.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    state["receiver"] = Receiver(f"http://{host!s}:{port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


# ---- AWS (moto) ------------------------------------------------------------------------------


FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class AwsEnv:
    integrations_table: str
    revenue_table: str
    secrets_prefix: str


def reset_caches() -> None:
    """Forget lazily created clients, settings and the webhook's per-container memory (each test has
    its own moto and environment)."""
    from shared import secrets, settings, tables, webhook_receiver
    from shared.backfill import queue
    from tests import raw

    webhook_receiver._last_event_written.clear()
    settings.get_settings.cache_clear()
    tables.bind.cache_clear()
    raw.client.cache_clear()
    secrets.provider.cache_clear()
    secrets.client.cache_clear()
    queue.client.cache_clear()


@cache
def _template_data() -> dict[str, Any]:
    from local.stack.template import load_template

    data: dict[str, Any] = load_template()
    return data


def provision_template() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Inside moto: template.yaml's tables and queues, created as the local stack creates them, and
    each function's role enforced on its calls (local.iam). Returns the functions' environment and
    each table's template properties (by table name)."""
    import boto3

    from local.iam import enforcement
    from local.moto_patches import patch_moto_transactions
    from local.stack.functions import merged_environment, read_functions
    from local.stack.resources import create_resources
    from local.stack.runner import local_parameters
    from local.stack.template import Template

    patch_moto_transactions()
    data = _template_data()
    parameters = local_parameters(data, public_base_url="https://hooks.ripples.test", stripe_api_base="", overrides={})
    template = Template(data, parameters, stack_name="test")
    created = create_resources(template, boto3.client("dynamodb"), boto3.client("sqs"))
    tables = {name: template.properties(logical_id) for logical_id, name in created.tables.items()}
    enforcement.install(template)
    return merged_environment(read_functions(template)), tables


def aws_env(environment: dict[str, str]) -> AwsEnv:
    return AwsEnv(environment["INTEGRATIONS_TABLE"], environment["REVENUE_TABLE"], environment["SECRETS_PREFIX"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    """moto with the template's tables, and the environment the functions read."""
    from moto import mock_aws

    for name, value in FAKE_AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        environment, _ = provision_template()
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        yield aws_env(environment)
    reset_caches()


@pytest.fixture(autouse=True)
def no_access_denied() -> Iterator[None]:
    """Every AWS call a function makes in a test is allowed by its role in template.yaml."""
    from local.iam import enforcement

    yield
    active = enforcement.enforcer()
    denials = active.take_denials() if active else []
    assert not denials, "calls the template's roles do not allow:\n" + "\n".join(
        f"{d.function}: {d.action} on {d.resource} ({d.operation})" for d in denials
    )


@pytest.fixture
def stripe_env(aws: AwsEnv, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The functions' Stripe calls go to the emulator (configuration, as in the local stack)."""
    monkeypatch.setenv("STRIPE_API_BASE", emulator.base_url)
    reset_caches()


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
