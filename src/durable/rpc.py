"""Typed calls to Durable Objects, in one shape on the wire.

An object's RPC method (marked `@rpc`) returns a plain value or raises a domain error
(`errors.ApiaryError`). Exceptions do not cross Workers RPC as Python exceptions, so both shells
run a method through `dispatch`, which answers `{"ok": value}` or `{"error": {code, message,
status, ...}}`; a client's `invoke` turns that back into the value or the same domain error.
So a route or an object calls `TaskManagerClient(...).create(spec)` and gets a `TaskView` or a
`NotFound`, and a reader follows the call from the route to the method through imports: the
client names the method by reference (`TaskManager.create`), never by a string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, cast

import errors
from ports import ObjectStub

_MARK = "__apiary_rpc__"


def rpc[F: Callable[..., Any]](fn: F) -> F:
    """Mark an async method as callable through a stub."""
    setattr(fn, _MARK, True)
    return fn


def rpc_methods(cls: type) -> list[str]:
    return sorted(
        name
        for name in dir(cls)
        if not name.startswith("_") and getattr(getattr(cls, name), _MARK, False)
    )


def _error_classes() -> dict[int, type[errors.ApiaryError]]:
    found: dict[int, type[errors.ApiaryError]] = {}
    pending: list[type[errors.ApiaryError]] = [errors.ApiaryError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.status, cls)
        pending.extend(cls.__subclasses__())
    return found


async def dispatch(target: object, method: str, args: list[Any]) -> dict[str, Any]:
    """Run `target.method(*args)` as RPC: its value, or the domain error it raised."""
    try:
        return {"ok": await getattr(target, method)(*args)}
    except errors.ApiaryError as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message, "status": exc.status}
        if isinstance(exc, errors.RateLimited):
            error["retry_after_s"] = exc.retry_after_s
        if exc.details:
            error["details"] = exc.details
        return {"error": error}


def unwrap(envelope: Any) -> Any:
    """The value of a `dispatch` answer, or its domain error raised again."""
    if not isinstance(envelope, dict) or not ({"ok", "error"} & set(envelope)):
        raise errors.ApiaryError("an object answered outside the RPC envelope")
    error = envelope.get("error")
    if not error:
        return envelope["ok"]
    status, code, message = int(error.get("status", 500)), error.get("code"), error["message"]
    if status == errors.RateLimited.status:
        raise errors.RateLimited(message, retry_after_s=int(error.get("retry_after_s", 1)))
    details = error.get("details")
    raise _error_classes().get(status, errors.ApiaryError)(message, code=code, details=details)


class ObjectClient:
    """Base of the typed client beside each object: `invoke(Class.method, *args)`."""

    def __init__(self, stub: ObjectStub) -> None:
        self._stub = stub

    async def invoke[**P, R](
        self,
        method: Callable[Concatenate[Any, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        if kwargs:
            raise TypeError("RPC arguments are positional")
        return cast(R, unwrap(await self._stub.call(method.__name__, *args)))
