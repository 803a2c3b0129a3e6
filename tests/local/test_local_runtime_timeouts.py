"""The local runtime stops an invocation at its function's timeout, as Lambda does: the caller gets
FunctionTimedOut at the deadline, the handler's thread is stopped, the HTTP API answers 500 and an SQS
batch fails as a whole (handlers here, functions built without a stack)."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local.stack.functions import FunctionSpec, HttpRoute, SqsSource
from local.stack.gateway import Gateway
from local.stack.runtime import FunctionTimedOut, LambdaFunction
from local.stack.sqs import SqsPoller

TIMEOUT = 1
SLACK = 0.4  # for a loaded machine; the handlers here would run 0.5 s longer
caller_value: contextvars.ContextVar[str] = contextvars.ContextVar("caller_value", default="unset")


def slow(event: dict[str, Any], context: Any) -> str:
    """Works in short steps past the timeout, swallowing what `except Exception` catches."""
    event["thread"] = threading.current_thread()
    try:
        for _ in range(30):
            time.sleep(0.05)
        event["effects"].append("after the deadline")
    except Exception:
        event["effects"].append("swallowed")
    return "late"


def blocked(event: dict[str, Any], context: Any) -> str:
    """Blocked in one C call past the timeout."""
    event["thread"] = threading.current_thread()
    time.sleep(TIMEOUT + 0.5)
    event["effects"].append("after the deadline")
    return "late"


def stubborn(event: dict[str, Any], context: Any) -> str:
    """Catches even the stop and returns a result after its deadline."""
    event["thread"] = threading.current_thread()
    try:
        time.sleep(TIMEOUT + 0.5)
    except BaseException:
        event["effects"].append("caught the stop")
    return "late"


def sleeper(event: Any, context: Any) -> dict[str, Any]:
    time.sleep(TIMEOUT + 0.5)
    return {"statusCode": 200, "body": "late"}


def fast(event: Any, context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": caller_value.get(), "remaining_ms": context.get_remaining_time_in_millis()}


def failing(event: Any, context: Any) -> None:
    raise ValueError("the handler's own error")


def _function(handler: str, **overrides: Any) -> LambdaFunction:
    spec: dict[str, Any] = {
        "logical_id": f"{handler.title()}Function",
        "name": f"{handler}-fn",
        "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{handler}-fn",
        "handler": f"{__name__}.{handler}",
        "timeout_seconds": TIMEOUT,
        "memory_mb": 128,
        "environment": {},
        "http_routes": (),
        "sqs_sources": (),
    }
    return LambdaFunction(FunctionSpec(**(spec | overrides)))


def _event() -> dict[str, Any]:
    return {"effects": []}


def _timed_out(function: LambdaFunction, event: dict[str, Any]) -> float:
    """Seconds until the invocation raised FunctionTimedOut."""
    started = time.monotonic()
    with pytest.raises(FunctionTimedOut, match=rf"^Task timed out after {TIMEOUT}\.00 seconds$"):
        function.invoke(event)
    return time.monotonic() - started


@pytest.mark.parametrize("handler", ["slow", "blocked"])
def test_a_handler_past_its_timeout_is_stopped_at_the_deadline(handler: str) -> None:
    # Given a handler that would run past its 1 s timeout, then do something
    event = _event()

    # When it is invoked
    elapsed = _timed_out(_function(handler), event)

    # Then the caller gets FunctionTimedOut at the deadline, and the handler's thread ends without going on
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK
    event["thread"].join(timeout=2)
    assert not event["thread"].is_alive()
    assert event["effects"] == []


def test_nothing_after_the_deadline_is_the_result() -> None:
    event = _event()

    elapsed = _timed_out(_function("stubborn"), event)

    assert TIMEOUT <= elapsed < TIMEOUT + SLACK
    event["thread"].join(timeout=2)
    assert event["effects"] == ["caught the stop"]  # it returned "late", which nobody saw


def test_a_fast_handler_sees_the_callers_context_and_answers() -> None:
    function = _function("fast", timeout_seconds=3)
    token = caller_value.set("the caller's")
    try:
        result = function.invoke({})
    finally:
        caller_value.reset(token)

    assert result["body"] == "the caller's"
    assert 2500 < result["remaining_ms"] <= 3000


def test_a_handlers_own_error_propagates() -> None:
    with pytest.raises(ValueError, match="the handler's own error"):
        _function("failing").invoke({})


def test_the_http_api_answers_500_for_a_timed_out_function() -> None:
    # Given a route to a function that runs past its timeout
    function = _function("sleeper")
    route = HttpRoute(function=function.spec.logical_id, method="GET", path="/slow", authorizer=None)
    gateway = Gateway(
        [route],
        {route.function: function},
        jwt_secret="unused",
        api_id="api",
        account_id="123456789012",
        health=dict,
    )

    # When it is called
    started = time.monotonic()
    response = gateway.handle(Request(EnvironBuilder(method="GET", path="/slow").get_environ()))

    # Then API Gateway's answer to a function error, at the deadline
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK
    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal Server Error"}


class _FakeSqs:
    """Hands out one batch, records deletions."""

    def __init__(self, bodies: list[str]) -> None:
        self.messages = [
            {"MessageId": f"m{index}", "ReceiptHandle": f"r{index}", "Body": body} for index, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        messages, self.messages = self.messages, []
        return {"Messages": messages}

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.deleted.extend(entry["ReceiptHandle"] for entry in kwargs["Entries"])
        return {"Failed": []}


def test_an_sqs_batch_fails_as_a_whole_when_its_function_times_out() -> None:
    source = SqsSource(
        function="SleeperFunction",
        event="Work",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:work",
        queue_url="http://sqs.local/123456789012/work",
        batch_size=2,
        batching_window_seconds=0,
        report_batch_item_failures=True,
        maximum_concurrency=1,
    )
    client = _FakeSqs(["one", "two"])
    poller = SqsPoller(source, _function("sleeper"), client, region="us-east-1")  # type: ignore[arg-type]

    started = time.monotonic()
    received = poller.poll_once()

    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK
    assert received == 2
    assert client.deleted == []  # both come back after the visibility timeout
