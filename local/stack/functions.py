"""The template's SAM functions as the local stack runs them: handler, environment, HTTP routes, SQS sources.

`Globals.Function` is merged into each function the way SAM does (maps merged key by key, lists
appended, scalars overridden by the function's own value).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .template import Template, TemplateError

logger = logging.getLogger("local.stack")

DEFAULT_IDENTITY_SOURCE = "$request.header.Authorization"
SQS_DEFAULT_BATCH_SIZE = 10
DEFAULT_CONCURRENCY = 2  # Lambda scales an SQS source out without a bound; locally two pollers
_SCHEDULED_EVENTS = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"}
_USED_PROPERTIES = {"Handler", "CodeUri", "PackageType", "InlineCode", "Timeout", "MemorySize", "Environment", "Events"}


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    identity_header: str  # lower-cased header name the token is read from
    issuer: str | None
    audience: tuple[str, ...]


@dataclass(frozen=True)
class HttpRoute:
    function: str  # logical id of the function
    method: str  # upper-case, or "ANY"
    path: str | None  # None: the $default route
    authorizer: JwtAuthorizer | None
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    function: str  # logical id of the function
    event: str  # the event's name in the template
    queue_arn: str
    queue_url: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    maximum_concurrency: int  # pollers side by side (ScalingConfig.MaximumConcurrency)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str  # dotted path: package.module.function
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, str]
    http_routes: tuple[HttpRoute, ...]
    sqs_sources: tuple[SqsSource, ...]
    schedules: tuple[str, ...] = ()  # its scheduled events' names: run on demand (POST /_local/schedules/<id>)


def merge_globals(global_value: Any, own_value: Any) -> Any:
    """SAM's Globals rule: maps merged key by key, lists appended, scalars overridden."""
    if isinstance(global_value, dict) and isinstance(own_value, dict):
        merged = dict(global_value)
        for key, value in own_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(own_value, list):
        return global_value + own_value
    return own_value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        raise TemplateError(f"environment values must be scalars, not {value!r}")
    return str(value)


def read_functions(template: Template) -> list[FunctionSpec]:
    """Every active AWS::Serverless::Function of the template, resolved."""
    raw_globals = template.globals.get("Function") or {}
    specs = []
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        raw = merge_globals(raw_globals, template.resource(logical_id).get("Properties") or {})
        # Only what the stack uses is resolved (policies, VPC settings and the like need nothing locally).
        properties = template.resolve({key: value for key, value in raw.items() if key in _USED_PROPERTIES})
        assert isinstance(properties, dict)
        handler = properties.get("Handler")
        if not handler or properties.get("PackageType", "Zip") != "Zip" or "InlineCode" in properties:
            raise TemplateError(f"{logical_id}: the local stack runs zip functions with a Handler only")
        code_uri = properties.get("CodeUri", ".")
        if str(code_uri).rstrip("/") not in (".", ""):
            raise TemplateError(
                f"{logical_id}: CodeUri {code_uri!r}; the local stack imports handlers from the repository "
                "root (CodeUri: .)"
            )
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        events: dict[str, Any] = properties.get("Events") or {}
        raw_events: dict[str, Any] = (template.resource(logical_id).get("Properties") or {}).get("Events") or {}
        routes = []
        sources = []
        schedules: list[str] = []
        for event_name, event in events.items():
            kind = event.get("Type")
            event_properties = event.get("Properties") or {}
            if kind == "HttpApi":
                raw_api = (raw_events.get(event_name, {}).get("Properties") or {}).get("ApiId")
                routes.append(_http_route(template, logical_id, event_name, event_properties, raw_api))
            elif kind == "SQS":
                if event_properties.get("Enabled", True) in (False, "false"):
                    continue
                sources.append(_sqs_source(template, logical_id, event_name, event_properties))
            elif kind in _SCHEDULED_EVENTS:
                schedules.append(event_name)
            else:
                logger.warning("event not run locally: function=%s event=%s type=%s", logical_id, event_name, kind)
        name = template.physical_name(logical_id)
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=name,
                arn=template.arn(logical_id),
                handler=str(handler),
                timeout_seconds=int(properties.get("Timeout", 3)),
                memory_mb=int(properties.get("MemorySize", 128)),
                environment={key: _env_value(value) for key, value in variables.items()},
                http_routes=tuple(routes),
                sqs_sources=tuple(sources),
                schedules=tuple(schedules),
            )
        )
    return specs


def merged_environment(functions: Iterable[FunctionSpec]) -> dict[str, str]:
    """The union of the functions' environments: they share one process, so one value per name."""
    merged: dict[str, str] = {}
    owners: dict[str, str] = {}
    for function in functions:
        for name, value in function.environment.items():
            if name in merged and merged[name] != value:
                raise TemplateError(
                    f"{name} is {merged[name]!r} for {owners[name]} but {value!r} for {function.logical_id}: "
                    "functions share one process locally, so a variable needs one value"
                )
            merged[name] = value
            owners.setdefault(name, function.logical_id)
    return merged


def _api_auth(template: Template, raw_api_id: Any) -> dict[str, Any]:
    """The Auth section of the API an event belongs to (Globals.HttpApi merged in)."""
    api_globals = template.globals.get("HttpApi") or {}
    if raw_api_id is None:  # SAM's implicit API
        properties = template.resolve(api_globals)
    else:
        if not (isinstance(raw_api_id, dict) and "Ref" in raw_api_id):
            raise TemplateError(f"HttpApi events need ApiId: !Ref <HttpApi>, not {raw_api_id!r}")
        api = template.resource(str(raw_api_id["Ref"]))
        properties = template.resolve(merge_globals(api_globals, api.get("Properties") or {}))
    auth: dict[str, Any] = properties.get("Auth") or {}
    return auth


def _http_route(
    template: Template, function: str, event_name: str, properties: Mapping[str, Any], raw_api_id: Any
) -> HttpRoute:
    version = str(properties.get("PayloadFormatVersion", "2.0"))
    if version != "2.0":
        raise TemplateError(f"{function}.{event_name}: only payload format 2.0 is emulated, not {version}")
    auth = _api_auth(template, raw_api_id)
    event_auth = properties.get("Auth") or {}
    name = event_auth.get("Authorizer", auth.get("DefaultAuthorizer"))
    authorizer = None
    if name is not None and name != "NONE":
        config = (auth.get("Authorizers") or {}).get(name)
        if config is None:
            raise TemplateError(f"{function}.{event_name}: no authorizer {name!r} on its API")
        jwt = config.get("JwtConfiguration")
        if jwt is None:
            raise TemplateError(f"{function}.{event_name}: authorizer {name!r} is not a JWT authorizer")
        source = str(config.get("IdentitySource", DEFAULT_IDENTITY_SOURCE))
        prefix = "$request.header."
        if not source.startswith(prefix):
            raise TemplateError(f"{function}.{event_name}: identity source {source!r} is not a header")
        audience = jwt.get("audience") or []
        authorizer = JwtAuthorizer(
            name=str(name),
            identity_header=source[len(prefix) :].lower(),
            issuer=jwt.get("issuer"),
            audience=tuple(str(a) for a in (audience if isinstance(audience, list) else [audience])),
        )
    path = properties.get("Path")
    method = str(properties.get("Method", "ANY")).upper()
    return HttpRoute(
        function=function,
        method="ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
        path=None if path in (None, "$default") else str(path),
        authorizer=authorizer,
        scopes=tuple(str(s) for s in event_auth.get("AuthorizationScopes") or ()),
    )


def _sqs_source(template: Template, function: str, event_name: str, properties: Mapping[str, Any]) -> SqsSource:
    queue_arn = str(properties["Queue"])
    queue_name = queue_arn.rsplit(":", 1)[-1]
    window = int(properties.get("MaximumBatchingWindowInSeconds", 0))
    batch_size = int(properties.get("BatchSize", SQS_DEFAULT_BATCH_SIZE))
    if batch_size > 10 and window == 0:
        raise TemplateError(f"{function}.{event_name}: a BatchSize over 10 needs MaximumBatchingWindowInSeconds")
    return SqsSource(
        function=function,
        event=event_name,
        queue_arn=queue_arn,
        queue_url=template.queue_url(queue_name),
        batch_size=batch_size,
        batching_window_seconds=window,
        report_batch_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        maximum_concurrency=int((properties.get("ScalingConfig") or {}).get("MaximumConcurrency", DEFAULT_CONCURRENCY)),
    )
