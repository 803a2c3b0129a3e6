"""Starts and stops the whole local stack in-process: moto, the Stripe emulator, the HTTP API, SQS pollers.

Used by `python -m local.stack` (`make run`) and by tests, which run a stack in threads of their own
process. Only one stack can run per process: the functions read their configuration from
os.environ, as in Lambda, and moto keeps its state in module globals (so does `mock_aws`).
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from local.iam import enforcement as iam
from local.moto_patches import patch_moto_transactions
from local.stripe_emulator.server import RunningEmulator
from local.stripe_emulator.server import start as start_emulator

from .auth import DEFAULT_SECRET, LOCAL_AUDIENCE, LOCAL_ISSUER
from .functions import FunctionSpec, merged_environment, read_functions
from .gateway import Gateway, HealthCheck
from .resources import CreatedResources, create_resources
from .runtime import LambdaFunction
from .sqs import SqsPoller
from .template import ACCOUNT_ID, DEFAULT_TEMPLATE, REGION, STACK_NAME, Template, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger("local.stack")
http_logger = logging.getLogger("local.stack.http")

# Credentials moto accepts; set so that no developer's real credentials can ever be used.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class _RequestHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive, as API Gateway speaks it; one log line per request on `local.stack.http`."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        http_logger.info("%s %s %s", self.command, self.path, code)


def _serve(host: str, port: int, name: str) -> tuple[BaseWSGIServer, threading.Thread]:
    """A threaded WSGI server bound now; its application is set before its thread is started."""
    server = make_server(host, port, Response("starting", status=503), threaded=True, request_handler=_RequestHandler)
    # Keep-alive connections hold their handler threads: don't wait for them when stopping.
    server.daemon_threads = True  # type: ignore[attr-defined]
    server.block_on_close = False  # type: ignore[attr-defined]
    return server, threading.Thread(target=server.serve_forever, name=name, daemon=True)


def local_parameters(
    template_data: Mapping[str, Any], *, public_base_url: str, stripe_api_base: str, overrides: Mapping[str, str]
) -> dict[str, str]:
    """The local values of the template's parameters (those it declares), then explicit overrides."""
    local = {
        "Stage": "dev",
        "PublicBaseUrl": public_base_url,
        "StripeApiBase": stripe_api_base,
        "JwtIssuer": LOCAL_ISSUER,
        "JwtAudience": LOCAL_AUDIENCE,
    }
    declared = template_data.get("Parameters") or {}
    return {name: value for name, value in local.items() if name in declared} | dict(overrides)


@dataclass
class RunningStack:
    base_url: str  # the HTTP API
    moto_url: str
    stripe_url: str  # the emulator, or STRIPE_API_BASE
    template: Template
    functions: dict[str, LambdaFunction]
    resources: CreatedResources
    environment: dict[str, str]  # what was set in os.environ for the functions
    emulator: RunningEmulator | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop everything that was started, newest first, and restore os.environ."""
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:
                logger.exception("stopping failed")

    def __enter__(self) -> RunningStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _set_environment(values: Mapping[str, str]) -> Callable[[], None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)

    def restore() -> None:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore


def _stop_server(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _stop_moto(moto: ThreadedMotoServer) -> None:
    moto.stop()
    server = getattr(moto, "_server", None)  # ThreadedMotoServer.stop() leaves the socket open
    if server is not None:
        server.block_on_close = False
        server.server_close()


def _stop_pollers(pollers: list[SqsPoller]) -> None:
    for poller in pollers:
        poller.request_stop()
    for poller in pollers:
        poller.join(timeout=5)


def _start_moto(host: str, port: int) -> tuple[ThreadedMotoServer, str]:
    """moto in server mode, with our patches, emptied (its state lives in the process, not the server)."""
    moto = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    moto.start()
    bound_host, bound_port = moto.get_host_and_port()
    url = f"http://{bound_host}:{bound_port}"
    patch_moto_transactions()
    reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=10):
        pass
    return moto, url


def _health_check(dynamodb: DynamoDBClient, tables: list[str], emulator: RunningEmulator | None) -> HealthCheck:
    """Ready once every table exists and the emulator (when the stack runs one) answers."""

    def check() -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            missing = sorted(set(tables) - set(dynamodb.list_tables()["TableNames"]))
            checks["dynamodb"] = "ok" if not missing else f"missing tables: {', '.join(missing)}"
        except Exception as error:
            checks["dynamodb"] = f"unreachable: {type(error).__name__}"
        if emulator is not None:
            healthy = _url_answers(f"{emulator.base_url}/_emulator/health")
            checks["stripe_emulator"] = "ok" if healthy else "unreachable"
        return checks

    return check


def _url_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return 200 <= status < 300
    except OSError:
        return False


def start_stack(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    moto_port: int = 0,
    stripe_emulator_port: int = 0,
    stripe_api_base: str | None = None,
    public_base_url: str | None = None,
    jwt_secret: str = DEFAULT_SECRET,
    template_path: Path | str = DEFAULT_TEMPLATE,
    parameters: Mapping[str, str] | None = None,
    sqs_wait_seconds: int = 1,
) -> RunningStack:
    """Start the local stack from `template_path`; port 0 means any free port.

    `stripe_api_base` points the functions at that Stripe instead of starting the emulator.
    `parameters` override the template's parameters (after the local values).
    """
    template_data = load_template(template_path)  # fail on a bad template before starting anything
    stoppers: list[Callable[[], None]] = []
    try:
        moto, moto_url = _start_moto(host, moto_port)
        stoppers.append(lambda: _stop_moto(moto))

        emulator: RunningEmulator | None = None
        if stripe_api_base:
            stripe_url = stripe_api_base.rstrip("/")
        else:
            emulator = start_emulator(host=host, port=stripe_emulator_port)
            stoppers.append(emulator.stop)
            stripe_url = emulator.base_url

        server, server_thread = _serve(host, port, "http-api")
        stoppers.append(lambda: _stop_server(server, server_thread))
        base_url = f"http://{host}:{server.port}"

        template = Template(
            template_data,
            local_parameters(
                template_data,
                public_base_url=public_base_url or base_url,
                stripe_api_base=stripe_url,
                overrides=parameters or {},
            ),
            stack_name=STACK_NAME,
            region=REGION,
            account_id=ACCOUNT_ID,
            sqs_endpoint=moto_url,
            api_endpoint=base_url,
        )
        session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        dynamodb = session.client("dynamodb", endpoint_url=moto_url)
        sqs = session.client("sqs", endpoint_url=moto_url)
        resources = create_resources(template, dynamodb, sqs)
        iam.install(template)  # each function's calls checked against its role, as on AWS
        stoppers.append(iam.uninstall)

        specs: list[FunctionSpec] = read_functions(template)
        environment = merged_environment(specs) | FAKE_CREDENTIALS
        environment |= {"AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        stoppers.insert(0, _set_environment(environment))  # restored last, once nothing runs any more
        functions = {spec.logical_id: LambdaFunction(spec) for spec in specs}

        routes = [route for spec in specs for route in spec.http_routes]
        server.app = Gateway(
            routes,
            functions,
            jwt_secret=jwt_secret,
            api_id=_api_id(template),
            account_id=ACCOUNT_ID,
            health=_health_check(dynamodb, list(resources.tables.values()), emulator),
        )
        server_thread.start()

        pollers = [
            SqsPoller(source, functions[spec.logical_id], sqs, region=REGION, wait_seconds=sqs_wait_seconds)
            for spec in specs
            for source in spec.sqs_sources
            for _ in range(source.maximum_concurrency)
        ]
        for poller in pollers:
            poller.start()
        stoppers.append(lambda: _stop_pollers(pollers))
    except BaseException:
        for stopper in reversed(stoppers):
            stopper()
        raise

    for route in routes:
        logger.info("route: %s -> %s", route.route_key, route.function)
    for poller in pollers:
        logger.info("sqs source: %s -> %s", poller.source.queue_url, poller.source.function)
    logger.info("moto (DynamoDB, SQS, Secrets Manager) listening on %s", moto_url)
    if emulator is not None:
        logger.info("Stripe emulator listening on %s", stripe_url)
    else:
        logger.info("Stripe API (STRIPE_API_BASE) at %s", stripe_url)
    logger.info("HTTP API listening on %s", base_url)
    return RunningStack(
        base_url=base_url,
        moto_url=moto_url,
        stripe_url=stripe_url,
        template=template,
        functions=functions,
        resources=resources,
        environment=environment,
        emulator=emulator,
        _stoppers=stoppers,
    )


def _api_id(template: Template) -> str:
    apis = template.resources_of_type("AWS::Serverless::HttpApi")
    return template.api_id(apis[0]) if apis else "serverlesshttpapi"
