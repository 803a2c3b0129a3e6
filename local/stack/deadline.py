"""Calls that stop at a deadline, as Lambda stops an invocation at its timeout.

The call runs in a thread of its own, in a copy of the caller's contextvars Context; the caller
waits until the deadline at most. If the call is still running then, the caller gets
`DeadlinePassed` and the call's thread gets `Stopped` raised asynchronously
(`PyThreadState_SetAsyncExc`), which unwinds it the way Lambda's freeze and kill end a timed-out
invocation. An asynchronous exception is raised only when the thread runs Python code: a thread
blocked in a C call (a socket read, `time.sleep`) stops when that call returns. Whatever the call
does after its deadline (even if it catches `Stopped` and returns) is never reported as its result.
As on Lambda, a stopped call may leave what it was changing half done; unlike Lambda, which discards
the container, the process and its module state live on.
"""

from __future__ import annotations

import contextvars
import ctypes
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Stopped(BaseException):
    """Raised in a call's thread at its deadline; not an Exception, so `except Exception` lets it through."""


class DeadlinePassed(Exception):
    """The call was still running at its deadline; its thread has been told to stop."""


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in the thread when it next runs Python code; None withdraws one not raised yet."""
    argument = None if exception is None else ctypes.py_object(exception)  # None is passed as NULL
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), argument)


class _Call(Generic[T]):
    """One call: its outcome is set once, by its thread if it finishes first, or by the caller at the deadline."""

    def __init__(self, function: Callable[[], T]) -> None:
        self._function = function
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._stopped = False
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        """The call's thread."""
        try:
            try:
                result = self._context.run(self._function)
            except Stopped:
                raise
            except BaseException as error:
                self._finish(None, error)
            else:
                self._finish(result, None)
        except Stopped:
            pass  # the caller has reported the deadline already

    def _finish(self, result: T | None, error: BaseException | None) -> None:
        with self._lock:
            if self._stopped:
                # Stopped may have been sent but not raised yet: it must not escape into threading's code.
                _raise_in_thread(threading.get_ident(), None)
                return
            self._result, self._error = result, error
            self._finished.set()

    def wait(self, thread: threading.Thread, deadline: float) -> T:
        if not self._finished.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                if not self._finished.is_set():
                    self._stopped = True
                    assert thread.ident is not None  # started
                    _raise_in_thread(thread.ident, Stopped)
                    raise DeadlinePassed
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value] # set with no error: the function's T


def call_with_deadline(function: Callable[[], T], deadline: float, *, name: str) -> T:
    """`function()` run in a thread named `name`, with the caller's contextvars; its result or exception.

    At `deadline` (a `time.monotonic()` value) raises DeadlinePassed and stops the call's thread.
    """
    call = _Call(function)
    thread = threading.Thread(target=call.run, name=name, daemon=True)
    thread.start()
    return call.wait(thread, deadline)
