"""The local HTTP API: each request becomes an API Gateway HTTP API (payload 2.0) event for its function.

Routes come from the functions' HttpApi events and match the way API Gateway picks the most
specific route. Routes behind the JWT authorizer get API Gateway's own 401 before any handler runs
when the token is missing, badly signed or expired; otherwise the handler receives the claims in
`requestContext.authorizer.jwt`, stringified as API Gateway does. The handler's payload 2.0 response
(or a bare value, which API Gateway turns into a 200 JSON body) becomes the HTTP response; a function
error, an invalid response or a timeout becomes API Gateway's 500.

Local only, outside the API's routes: the dashboard page's static files (`/` and `/static/...`, from
local/web/) and `GET /_local/token?project=<id>`, a dashboard token the page uses (as `make token`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from werkzeug.wrappers import Request, Response

from .auth import issue_token, stringify_claims, token_scopes, verify_token
from .functions import HttpRoute
from .runtime import FunctionTimedOut, LambdaFunction
from .schedules import SCHEDULES_PATH, scheduled_event

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger("local.stack")

HealthCheck = Callable[[], Mapping[str, str]]  # check name -> "ok" or what is wrong

_LITERAL, _VARIABLE, _GREEDY = 0, 1, 2

WEB_DIR = Path(__file__).resolve().parent.parent / "web"  # the dashboard page (local/web/)
STATIC_PATH = "/static/"
TOKEN_PATH = "/_local/token"  # noqa: S105 - a route, not a secret
_PROJECT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # api.md's ids
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# The page loads only its own files and calls only this origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class InvalidLambdaResponse(ValueError):
    """The handler answered something API Gateway would turn into a 500."""


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _split_path(path: str) -> list[str]:
    """Segments of a path: "/" has none, "/a//b/" has "a", "", "b" (an empty one matches no variable)."""
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    segments: tuple[tuple[int, str], ...]  # (kind, literal text or variable name)

    @classmethod
    def compile(cls, route: HttpRoute) -> _CompiledRoute:
        segments: list[tuple[int, str]] = []
        for part in _split_path(route.path or ""):
            if part.startswith("{") and part.endswith("+}"):
                segments.append((_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append((_VARIABLE, part[1:-1]))
            else:
                segments.append((_LITERAL, part))
        return cls(route, tuple(segments))

    def specificity(self) -> tuple[Any, ...]:
        """Smaller is more specific: literal segments beat variables beat greedy ones, a method beats ANY."""
        return (self.route.path is None, [kind for kind, _ in self.segments], self.route.method == "ANY")

    def match(self, method: str, raw_path: str) -> dict[str, str] | None:
        route = self.route
        if route.method not in ("ANY", method):
            return None
        if route.path is None:
            return {}
        parts = _split_path(raw_path)
        parameters: dict[str, str] = {}
        for index, (kind, text) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[index:]
                if not rest or not all(rest):
                    return None
                parameters[text] = unquote("/".join(rest))
                return parameters
            if index >= len(parts) or not parts[index]:
                return None
            value = unquote(parts[index])
            if kind == _LITERAL and value != text:
                return None
            if kind == _VARIABLE:
                parameters[text] = value
        return parameters if len(parts) == len(self.segments) else None


class Router:
    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self.routes = sorted((_CompiledRoute.compile(route) for route in routes), key=_CompiledRoute.specificity)

    def match(self, method: str, raw_path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for compiled in self.routes:
            parameters = compiled.match(method, raw_path)
            if parameters is not None:
                return compiled.route, parameters
        return None


def _request_id() -> str:
    return base64.b64encode(os.urandom(11)).decode()


def build_event(
    request: Request,
    route: HttpRoute,
    path_parameters: Mapping[str, str],
    *,
    api_id: str,
    account_id: str,
    authorizer: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send the route's function for this request."""
    environ = request.environ
    raw_path = str(environ.get("RAW_URI") or request.path).split("?", 1)[0] or "/"
    raw_query = str(environ.get("QUERY_STRING", ""))
    host = request.host
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.items():
        key = name.lower()
        if key == "cookie":  # payload 2.0 moves cookies out of the headers
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    source_ip = request.remote_addr or "127.0.0.1"
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-port", str(environ.get("SERVER_PORT", "")))
    headers.setdefault("x-forwarded-proto", request.scheme)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    timestamp = time.time() if now is None else now
    request_id = request_id or _request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")),
                "sourceIp": source_ip,
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(timestamp)),
            "timeEpoch": int(timestamp * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    body = request.get_data()
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def lambda_response(result: Any) -> Response:
    """The HTTP response API Gateway makes of a payload 2.0 function result."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: API Gateway assumes 200 and a JSON body holding the whole result.
        return _json_response(200, result)
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        raise InvalidLambdaResponse(f"statusCode {result['statusCode']!r}") from None
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise InvalidLambdaResponse(f"body must be a string, not {type(body).__name__}")
    data = b"" if body is None else base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(data, status=status)
    headers = result.get("headers") or {}
    if not isinstance(headers, dict):
        raise InvalidLambdaResponse("headers must be an object")
    if not any(name.lower() == "content-type" for name in headers):
        response.headers["Content-Type"] = "application/json"
    for name, value in headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", str(cookie))
    return response


def _static(web_dir: Path, name: str) -> Response:
    """A file of the dashboard page: only text files of the page's kinds, inside web_dir."""
    root = web_dir.resolve()
    path = (root / name).resolve()
    content_type = _STATIC_TYPES.get(path.suffix)
    if content_type is None or not path.is_relative_to(root) or not path.is_file():
        return _json_response(404, {"message": "Not Found"})
    response = Response(path.read_bytes(), status=200, content_type=f"{content_type}; charset=utf-8")
    for header, value in _PAGE_HEADERS.items():
        response.headers[header] = value
    return response


class Gateway:
    """The WSGI application of the local HTTP API."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        functions: Mapping[str, LambdaFunction],
        *,
        jwt_secret: str,
        api_id: str,
        account_id: str,
        health: HealthCheck,
        web_dir: Path | None = WEB_DIR,
    ) -> None:
        self.router = Router(routes)
        self.web_dir = web_dir
        self.functions = functions
        self.jwt_secret = jwt_secret
        self.api_id = api_id
        self.account_id = account_id
        self.health = health

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        request_id = _request_id()
        response = self._dispatch(request, request_id)
        response.headers.setdefault("Apigw-Requestid", request_id)
        return response

    def _dispatch(self, request: Request, request_id: str) -> Response:
        raw_path = str(request.environ.get("RAW_URI") or request.path).split("?", 1)[0] or "/"
        matched = self.router.match(request.method, raw_path)
        if matched is None:
            if request.method == "GET" and raw_path == "/healthz":
                return self._healthz()
            if request.method == "POST" and raw_path.startswith(SCHEDULES_PATH):
                return self._scheduled(raw_path.removeprefix(SCHEDULES_PATH))
            if request.method == "GET" and raw_path == TOKEN_PATH:
                return self._token(request.args.get("project", ""))
            if request.method in ("GET", "HEAD") and self.web_dir is not None:
                if raw_path in ("/", "/index.html"):
                    return _static(self.web_dir, "index.html")
                if raw_path.startswith(STATIC_PATH):
                    return _static(self.web_dir, unquote(raw_path.removeprefix(STATIC_PATH)))
            return _json_response(404, {"message": "Not Found"})
        route, path_parameters = matched
        authorizer: dict[str, Any] | None = None
        if route.authorizer is not None:
            claims = verify_token(request.headers.get(route.authorizer.identity_header), self.jwt_secret)
            if claims is None:
                return _json_response(401, {"message": "Unauthorized"}, {"WWW-Authenticate": "Bearer"})
            scopes = token_scopes(claims)
            if route.scopes and not set(route.scopes) & set(scopes):
                return _json_response(403, {"message": "Forbidden"})
            authorizer = {"jwt": {"claims": stringify_claims(claims), "scopes": scopes if route.scopes else None}}
        event = build_event(
            request,
            route,
            path_parameters,
            api_id=self.api_id,
            account_id=self.account_id,
            authorizer=authorizer,
            request_id=request_id,
        )
        function = self.functions[route.function]
        try:
            return lambda_response(function.invoke(event))
        except FunctionTimedOut as timed_out:
            # A function error to API Gateway: the same 500; no traceback, the handler's thread was stopped.
            logger.error("function timed out: function=%s route=%s: %s", route.function, route.route_key, timed_out)
            return _json_response(500, {"message": "Internal Server Error"})
        except Exception:
            # API Gateway's answer to a function error or an invalid response; the traceback is the log's.
            logger.exception("function failed: function=%s route=%s", route.function, route.route_key)
            return _json_response(500, {"message": "Internal Server Error"})

    def _scheduled(self, logical_id: str) -> Response:
        """A function's schedule fired now (`make reconcile`): its answer, or 404 if it has none.
        Local only: a deployed schedule is EventBridge's, and no route of the API reaches it."""
        function = self.functions.get(logical_id)
        if function is None or not function.spec.schedules:
            return _json_response(404, {"message": f"no scheduled function {logical_id!r}"})
        try:
            return _json_response(200, function.invoke(scheduled_event(function.spec, self.account_id)))
        except FunctionTimedOut as timed_out:
            logger.error("scheduled function timed out: function=%s: %s", logical_id, timed_out)
            return _json_response(500, {"message": "Task timed out"})
        except Exception:
            logger.exception("scheduled function failed: function=%s", logical_id)
            return _json_response(500, {"message": "Internal Server Error"})

    def _token(self, project_id: str) -> Response:
        """A dashboard token for one project, signed with the stack's LOCAL_JWT_SECRET (as `make token`).
        Local only: deployed, the dashboard's identity provider issues tokens and no route reaches this."""
        if not _PROJECT_ID.fullmatch(project_id):
            message = "project must be 1-128 characters of A-Z a-z 0-9 . _ : -"
            return _json_response(400, {"error": {"code": "invalid_request", "message": message}})
        token = issue_token([project_id], self.jwt_secret)
        return _json_response(200, {"token": token, "project": project_id}, {"Cache-Control": "no-store"})

    def _healthz(self) -> Response:
        checks = dict(self.health())
        healthy = all(state == "ok" for state in checks.values())
        body: dict[str, Any] = {"status": "ok"} if healthy else {"status": "unavailable", "checks": checks}
        return _json_response(200 if healthy else 503, body)
