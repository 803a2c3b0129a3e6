"""Which function an AWS request is made for, where several functions share one process.

Set by the local runtime around each invocation (and by tests that drive a function's code without
its handler); read by the enforcement. Kept apart so the runtime can import it without the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_acting: ContextVar[str | None] = ContextVar("local_iam_function", default=None)


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    """AWS requests made inside are the function's (its logical id in the template)."""
    token = _acting.set(function)
    try:
        yield
    finally:
        _acting.reset(token)


def acting() -> str | None:
    return _acting.get()
