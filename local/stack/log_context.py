"""Powertools logger keys per invocation, for the local stack's concurrent invocations in one process.

Powertools keeps a logger's keys (what `inject_lambda_context` adds, the correlation id, `append_keys`,
`remove_keys`, `clear_state`) in its formatter's `log_format` dict, and the cold start in a module
global: one of each per process. On Lambda a container runs one invocation at a time, so that is
right there; here several functions and invocations run at once in threads of one process, and
their keys would leak into each other's lines. `install()` makes `log_format` per invocation: inside
an invocation begun with `begin_invocation()` (in the invocation's own contextvars Context) a
formatter's keys start as a copy of its keys outside any invocation and changes stay in that
invocation. Loggers must therefore be created outside invocations, as they are when the handlers'
modules are imported (Lambda's init phase): a logger first created inside an invocation would keep
its initial keys in that invocation only.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.logging import formatter as powertools_formatter
from aws_lambda_powertools.logging import logger as powertools_logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

Keys = dict[str, Any]

# The invocation's keys of each formatter (created on first use); None outside invocations.
_invocation_keys: ContextVar[dict[LambdaPowertoolsFormatter, Keys] | None] = ContextVar(
    "local_stack_invocation_keys", default=None
)
_cold_start: ContextVar[bool | None] = ContextVar("local_stack_cold_start", default=None)


class _InvocationKeys:
    """Replaces the formatter's `log_format` attribute; the process's keys stay in the instance's __dict__."""

    def __get__(self, formatter: LambdaPowertoolsFormatter | None, owner: type | None = None) -> Any:
        if formatter is None:
            return self
        process_keys: Keys = formatter.__dict__["log_format"]
        invocation = _invocation_keys.get()
        if invocation is None:
            return process_keys
        keys = invocation.get(formatter)
        if keys is None:
            keys = invocation[formatter] = dict(process_keys)
        return keys

    def __set__(self, formatter: LambdaPowertoolsFormatter, keys: Keys) -> None:
        invocation = _invocation_keys.get()
        if invocation is None or "log_format" not in formatter.__dict__:
            formatter.__dict__["log_format"] = keys
        else:
            invocation[formatter] = keys


def install() -> None:
    """Make Powertools' logger keys and cold start per invocation (idempotent; no change outside invocations)."""
    if isinstance(LambdaPowertoolsFormatter.__dict__.get("log_format"), _InvocationKeys):
        return
    LambdaPowertoolsFormatter.log_format = _InvocationKeys()  # type: ignore[assignment]
    process_cold_start = powertools_logger._is_cold_start

    def is_cold_start() -> bool:
        cold_start = _cold_start.get()
        return process_cold_start() if cold_start is None else cold_start

    powertools_logger._is_cold_start = is_cold_start


def begin_invocation(*, cold_start: bool) -> None:
    """Give the current contextvars Context (one invocation's own copy) its own logger keys and cold start."""
    _invocation_keys.set({})
    _cold_start.set(cold_start)
    # The thread_safe_* keys already live in a ContextVar; a copy keeps their in-place removals here too.
    keys = powertools_formatter.THREAD_LOCAL_KEYS
    keys.set(dict(keys.get()))
