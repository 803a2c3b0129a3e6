"""Runs a template's function in-process, as Lambda would: its handler imported lazily, a Lambda context.

Each invocation runs in a thread and a contextvars Context of its own, with its own Powertools
logger keys (log_context), and is stopped at the function's timeout (deadline).
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.iam.identity import acting_as

from . import log_context
from .deadline import DeadlinePassed, call_with_deadline
from .functions import FunctionSpec

Handler = Callable[[Any, Any], Any]


class FunctionTimedOut(Exception):
    """The invocation ran past the function's timeout; Lambda's error for it, and its message."""


@dataclass
class LambdaContext:
    """The attributes of Lambda's Python context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)  # time.monotonic() when the invocation would time out
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def import_handler(path: str) -> Handler:
    """`package.module.function` -> that function (Lambda's `Handler` setting)."""
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {path!r} is not module.function")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"handler {path!r} is not callable")
    return handler  # type: ignore[no-any-return]


class LambdaFunction:
    """One function of the template; its handler is imported on the first invocation."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._handler: Handler | None = None
        self._lock = threading.Lock()
        log_context.install()

    @property
    def imported(self) -> bool:
        """Whether the handler has been imported (it is on the first invocation)."""
        return self._handler is not None

    def _load(self) -> tuple[Handler, bool]:
        """The handler, and whether this call imported it (the invocation's cold start)."""
        with self._lock:
            if self._handler is not None:
                return self._handler, False
            self._handler = import_handler(self.spec.handler)
            return self._handler, True

    def context(self) -> LambdaContext:
        spec = self.spec
        return LambdaContext(
            function_name=spec.name,
            function_version="$LATEST",
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name=time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            deadline=time.monotonic() + spec.timeout_seconds,
        )

    def invoke(self, event: Any) -> Any:
        """The handler's result for `event` (its exceptions propagate); FunctionTimedOut at the timeout."""
        # Imported outside the invocation, as in Lambda's init phase: loggers created at import keep their keys.
        handler, cold_start = self._load()
        context = self.context()
        run = functools.partial(self._run, handler, event, context, cold_start)
        try:
            return call_with_deadline(run, context.deadline, name=f"lambda-{self.spec.logical_id}")
        except DeadlinePassed:
            raise FunctionTimedOut(f"Task timed out after {self.spec.timeout_seconds:.2f} seconds") from None

    def _run(self, handler: Handler, event: Any, context: LambdaContext, cold_start: bool) -> Any:
        """The handler call, in the invocation's own thread and contextvars Context: per-invocation state goes here."""
        log_context.begin_invocation(cold_start=cold_start)
        with acting_as(self.spec.logical_id):  # its AWS calls are checked against its own role
            return handler(event, context)
