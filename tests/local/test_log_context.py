"""Each invocation the local runtime runs has its own Powertools logger keys, invisible to the invocations
that run at the same time (handlers here, with the functions' own logger)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.stack.functions import FunctionSpec
from local.stack.runtime import LambdaFunction
from shared.observability import logger

INVOCATION_KEYS = {"function_name", "function_request_id", "function_arn", "cold_start", "correlation_id", "tag"}


@logger.inject_lambda_context(clear_state=True)
def tagged(event: dict[str, Any], context: Any) -> str:
    """Sets its keys, lets the others set and remove theirs, then logs."""
    tag = event["tag"]
    logger.set_correlation_id(f"correlation-{tag}")
    logger.append_keys(tag=tag, **{f"only_{tag}": True})
    event["barrier"].wait()
    if event["remove_tag"]:
        logger.remove_keys(["tag"])
    event["barrier"].wait()
    logger.info("tagged")
    return str(context.aws_request_id)


class _Lines(logging.Handler):
    """The logger's lines, formatted by its Powertools formatter in the thread that logs them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler = _Lines()
    stdlib_logger = logging.getLogger(logger.name)
    stdlib_logger.addHandler(handler)
    yield handler
    stdlib_logger.removeHandler(handler)


def _function(name: str) -> LambdaFunction:
    return LambdaFunction(
        FunctionSpec(
            logical_id=name.title(),
            name=name,
            arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            handler=f"{__name__}.tagged",
            timeout_seconds=10,
            memory_mb=128,
            environment={},
            http_routes=(),
            sqs_sources=(),
        )
    )


def _invoke_together(calls: list[tuple[LambdaFunction, str, bool]]) -> dict[str, str]:
    """Invoke every (function, tag, remove_tag) at once; tag -> the invocation's request id."""
    barrier = threading.Barrier(len(calls), timeout=5)
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {
            tag: pool.submit(function.invoke, {"tag": tag, "remove_tag": remove_tag, "barrier": barrier})
            for function, tag, remove_tag in calls
        }
        return {tag: future.result() for tag, future in futures.items()}


def test_concurrent_invocations_log_only_their_own_keys(lines: _Lines) -> None:
    # Given a logger with no keys left by earlier tests' direct handler calls (outside any invocation)
    logger.clear_state()
    # And three functions, two invocations of each at once, and then one more of each
    functions = [_function(name) for name in ("alpha", "beta", "gamma")]
    first = [(function, f"{function.spec.name}-{n}", n == 1) for function in functions for n in (1, 2)]
    second = [(function, f"{function.spec.name}-3", False) for function in functions]

    # When each sets its correlation id and keys, some remove a key, and all log once every change is made
    request_ids = _invoke_together(first) | _invoke_together(second)
    logger.info("outside any invocation")

    # Then each line carries its own invocation's keys and no other's
    *invocation_lines, outside = lines.lines
    assert len(invocation_lines) == len(first) + len(second)
    by_tag = {line["correlation_id"].removeprefix("correlation-"): line for line in invocation_lines}
    assert by_tag.keys() == request_ids.keys()
    for tag, line in by_tag.items():
        function_name = tag.rsplit("-", 1)[0]
        assert line["function_name"] == function_name
        assert line["function_arn"].endswith(f":function:{function_name}")
        assert line["function_request_id"] == request_ids[tag]
        assert line.get("tag") == (None if tag.endswith("-1") else tag)
        assert [key for key in line if key.startswith("only_")] == [f"only_{tag}"]
    # the cold start is each function's first invocation: one of its first two, not its third
    for function in functions:
        name = function.spec.name
        assert sorted(by_tag[f"{name}-{n}"]["cold_start"] for n in (1, 2)) == [False, True]
        assert by_tag[f"{name}-3"]["cold_start"] is False
    # and nothing an invocation set is left outside it
    assert not INVOCATION_KEYS & outside.keys()
    assert not [key for key in outside if key.startswith("only_")]
