"""Adapts a `DurableObjectLogic` class to `workers.DurableObject`.

https://developers.cloudflare.com/durable-objects/api/base/ . The shell owns the platform
callbacks (`fetch`, `alarm`, `webSocketMessage`, `webSocketClose`, `webSocketError`) and RPC
methods, and calls the logic's hooks. The logic instance is built on the first event (after
hibernation the runtime constructs a new shell, so this is once per wake-up).
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

from cloudflare_adapters.services import services_from_env
from cloudflare_adapters.sockets import CloudflareSocket, CloudflareSocketHub
from cloudflare_adapters.storage import DurableObjectStorage
from durable.base import (
    AlarmInfo,
    DurableObjectLogic,
    ObjectContext,
    ObjectRequest,
    ObjectResponse,
    Work,
    rpc_methods,
)
from durable.rpc import dispatch
from logs import get_logger

log = get_logger("shell")
_pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def _message_value(message: Any) -> str | bytes:
    # workerd passes handler arguments as raw JS values: a text frame is a str, a binary frame
    # an ArrayBuffer proxy.
    if isinstance(message, str):
        return message
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    return bytes(message.to_bytes())


# Codes a peer may report but no endpoint may send (RFC 6455 7.4.1), and those outside what
# `WebSocket.close()` accepts everywhere (1000, 3000-4999): the answer to those is 1000.
def _close_answer(code: int) -> int:
    return code if code == 1000 or 3000 <= code <= 4999 else 1000


def _answer_close(ws: Any, code: int, reason: str) -> None:
    """Complete a close the client started. With the Hibernation API the server must answer
    itself (workerd's automatic reply comes only with `web_socket_auto_reply_to_close`, from
    2026-04-07); otherwise the client waits in CLOSING and then sees 1006."""
    try:
        ws.close(_close_answer(code), reason[:120])
    except Exception:  # already closed by the logic, or the connection is gone
        log.debug("close answer not sent", exc_info=True)


async def _object_request(request: Any) -> ObjectRequest:
    from workers import Request

    if not isinstance(request, Request):
        request = Request(request)
    headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
    body = b""
    if request.body is not None and request.method not in ("GET", "HEAD"):
        body = await request.bytes()
    return ObjectRequest(method=str(request.method), url=request.url, headers=headers, body=body)


def _waiter(ctx: Any) -> Callable[[Work], None]:
    """`ObjectContext.wait_until` on Cloudflare: the work runs as a task, and its proxy goes to
    `ctx.waitUntil` as the SDK's ASGI adapter does. A Durable Object stays active at least 70 s
    while work or outbound I/O is pending, waitUntil or not
    (https://developers.cloudflare.com/durable-objects/api/state/); from compatibility date
    2026-10-01 pending waitUntil promises also hold off eviction."""

    def wait_until(work: Work) -> None:
        from pyodide.ffi import create_proxy

        task = asyncio.ensure_future(work)
        _pending.add(task)
        proxy = create_proxy(task)

        def settled(done: asyncio.Task[None]) -> None:
            _pending.discard(done)
            proxy.destroy()
            if not done.cancelled() and done.exception() is not None:
                log.error("work after an event failed", exc_info=done.exception())

        task.add_done_callback(settled)
        ctx.waitUntil(proxy)

    return wait_until


def _rpc_forwarder(method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def forward(self: Any, *args: Any) -> Any:
        from workers import python_from_rpc, python_to_rpc

        logic = self._apiary_logic()
        return python_to_rpc(await dispatch(logic, method, [python_from_rpc(a) for a in args]))

    forward.__name__ = method
    return forward


def durable_object_class(name: str, logic_class: type[DurableObjectLogic]) -> type:
    """A `workers.DurableObject` subclass named `name` that hosts `logic_class`."""
    from workers import DurableObject, Response

    def __init__(self: Any, ctx: Any, env: Any) -> None:
        DurableObject.__init__(self, ctx, env)
        self._logic = None
        self._hub = CloudflareSocketHub(ctx)

    def _apiary_logic(self: Any) -> DurableObjectLogic:
        if self._logic is None:
            storage = DurableObjectStorage(self.ctx.storage)
            object_name = getattr(self.ctx.id, "name", None)
            context = ObjectContext(
                id=str(self.ctx.id.toString()),
                name=object_name if isinstance(object_name, str) else None,
                storage=storage,
                sockets=self._hub,
                services=services_from_env(self.env),
                wait_until=_waiter(self.ctx),
            )
            logic = logic_class(context)
            storage.transaction(logic.on_start)
            self._logic = logic
        return cast(DurableObjectLogic, self._logic)  # self: the generated class

    async def fetch(self: Any, request: Any) -> Any:
        response: ObjectResponse = await self._apiary_logic().on_request(
            await _object_request(request)
        )
        if response.status == 101:
            return Response(None, status=101, web_socket=self._hub.take_client())
        return Response(response.body, status=response.status, headers=dict(response.headers))

    async def alarm(self: Any, alarm_info: Any = None) -> None:
        retry_count = getattr(alarm_info, "retryCount", 0) if alarm_info is not None else 0
        await self._apiary_logic().on_alarm(AlarmInfo(retry_count=int(retry_count or 0)))

    async def webSocketMessage(self: Any, ws: Any, message: Any) -> None:
        socket = CloudflareSocket(ws, self.ctx)
        await self._apiary_logic().on_socket_message(socket, _message_value(message))

    async def webSocketClose(self: Any, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        socket = CloudflareSocket(ws, self.ctx)
        try:
            await self._apiary_logic().on_socket_close(socket, int(code), str(reason or ""))
        finally:
            _answer_close(ws, int(code), str(reason or ""))

    async def webSocketError(self: Any, ws: Any, error: Any) -> None:
        log.warning("websocket error", extra={"fields": {"error": str(error)}})
        try:
            await self._apiary_logic().on_socket_close(
                CloudflareSocket(ws, self.ctx), 1011, "error"
            )
        finally:
            _answer_close(ws, 1011, "error")

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "__doc__": logic_class.__doc__,
        "__module__": "entry",
        "_apiary_logic": _apiary_logic,
        "fetch": fetch,
        "alarm": alarm,
        "webSocketMessage": webSocketMessage,
        "webSocketClose": webSocketClose,
        "webSocketError": webSocketError,
    }
    for method in rpc_methods(logic_class):
        namespace[method] = _rpc_forwarder(method)
    # A class statement would run DurableObject.__init_subclass__ too; type() does the same.
    return type(name, (DurableObject,), namespace)
