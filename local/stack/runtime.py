"""Runs a template's function in-process, as Lambda would: its handler imported lazily, a Lambda context."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .functions import FunctionSpec

logger = logging.getLogger("local.stack")

Handler = Callable[[Any, Any], Any]


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

    @property
    def imported(self) -> bool:
        """Whether the handler has been imported (it is on the first invocation)."""
        return self._handler is not None

    def handler(self) -> Handler:
        with self._lock:
            if self._handler is None:
                self._handler = import_handler(self.spec.handler)
            return self._handler

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
        """The handler's result for `event` (its exceptions propagate)."""
        handler = self.handler()
        context = self.context()
        started = time.monotonic()
        try:
            return handler(event, context)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.spec.timeout_seconds:
                logger.warning(
                    "function ran past its timeout: function=%s elapsed=%.1fs timeout=%ss",
                    self.spec.logical_id,
                    elapsed,
                    self.spec.timeout_seconds,
                )
