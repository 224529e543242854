"""JS promises as Python sees them (`pyodide.ffi.JsPromise`) and `run_sync`.

Contract (Pyodide 0.28, https://pyodide.org/en/stable/usage/api/python-api/ffi.html#pyodide.ffi.JsPromise):
- A JS promise is awaitable from Python and has `then()`, `catch()`, `finally_()`; the SDK's
  binding wrapper recognises async results by `hasattr(result, "then")`, so every async fake
  method returns a `JsPromise`, never a bare coroutine.
- The awaited value goes through the implicit JS -> Python conversion.
- A JS async operation starts when it is called, not when it is awaited: a `JsPromise` built from a
  coroutine is scheduled as a task at once (an event loop must be running).
- A rejection with a JS error raises `JsException`; a Python exception raised inside a Python
  callback comes back as the same Python exception (Pyodide unwraps `PythonError`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any

from .values import JsProxy, call_function, js2py, py2js

_PENDING = "pending"
_FULFILLED = "fulfilled"
_REJECTED = "rejected"


class JsPromise(JsProxy):
    js_class = "Promise"

    def __init__(self, awaitable: Awaitable[Any] | None = None) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._task: asyncio.Future[Any] | None = None
        if awaitable is not None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                raise RuntimeError(
                    "jsfake: an async JS operation was started outside a running event loop"
                ) from None
            self._task = asyncio.ensure_future(awaitable)
            self._task.add_done_callback(self._settle_from_task)

    @classmethod
    def resolve(cls, value: Any = None) -> JsPromise:
        promise = cls()
        promise._state = _FULFILLED
        promise._value = py2js(value)
        return promise

    @classmethod
    def reject(cls, error: BaseException) -> JsPromise:
        promise = cls()
        promise._state = _REJECTED
        promise._error = error
        return promise

    @classmethod
    def from_call(cls, fn: Any, *args: Any) -> JsPromise:
        """Run a synchronous fake operation and wrap its outcome (as an async JS method does)."""
        try:
            return cls.resolve(fn(*args))
        except Exception as exc:
            return cls.reject(exc)

    def _settle_from_task(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled():
            self._state = _REJECTED
            self._error = asyncio.CancelledError()
        elif task.exception() is not None:
            self._state = _REJECTED
            self._error = task.exception()
        else:
            self._state = _FULFILLED
            self._value = py2js(task.result())

    @property
    def settled(self) -> bool:
        return self._state != _PENDING

    def __await__(self) -> Any:
        if self._task is not None and not self._task.done():
            # Wait without propagating the task's own failure or cancelling it if we are cancelled.
            yield from asyncio.wait([self._task]).__await__()
        if self._task is not None and not self.settled:
            self._settle_from_task(self._task)
        if self._state == _REJECTED:
            assert self._error is not None
            raise self._error
        return js2py(self._value)

    def then(self, on_fulfilled: Any = None, on_rejected: Any = None) -> JsPromise:
        async def chained() -> Any:
            try:
                value = await self
            except Exception as exc:
                if on_rejected is None:
                    raise
                return await _resolve_thenable(call_function(on_rejected, py2js(exc)))
            if on_fulfilled is None:
                return value
            return await _resolve_thenable(call_function(on_fulfilled, py2js(value)))

        return JsPromise(chained())

    def catch(self, on_rejected: Any) -> JsPromise:
        return self.then(None, on_rejected)

    def finally_(self, on_finally: Any) -> JsPromise:
        async def chained() -> Any:
            try:
                return await self
            finally:
                await _resolve_thenable(call_function(on_finally))

        return JsPromise(chained())

    def __repr__(self) -> str:
        return f"<JsPromise {self._state}>"


async def _resolve_thenable(value: Any) -> Any:
    from .values import await_js

    return await await_js(value)


def promise_from_coroutine(coro: Coroutine[Any, Any, Any]) -> JsPromise:
    return JsPromise(coro)


def run_sync(awaitable: Any, /) -> Any:
    """`pyodide.ffi.run_sync`: settle an awaitable without leaving the current Python frame.

    The real one suspends WebAssembly (JSPI). This fake can only finish awaitables that are
    already settled or complete without suspending, and raises `RuntimeError("No suspender")`
    otherwise (the message the SDK checks for).
    """
    if isinstance(awaitable, JsPromise):
        if awaitable._task is not None and awaitable._task.done():
            awaitable._settle_from_task(awaitable._task)
        if not awaitable.settled:
            raise RuntimeError("No suspender")
        if awaitable._state == _REJECTED:
            assert awaitable._error is not None
            raise awaitable._error
        return js2py(awaitable._value)
    if inspect.iscoroutine(awaitable):
        try:
            awaitable.send(None)
        except StopIteration as stop:
            return stop.value
        awaitable.close()
        raise RuntimeError("No suspender")
    raise TypeError(f"run_sync() expects an awaitable, got {type(awaitable).__name__}")
