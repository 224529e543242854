"""Durable Objects: state, ids, namespaces and stubs (storage is in `storage.py`).

Contracts:
- State (https://developers.cloudflare.com/durable-objects/api/state/): `id`, `storage`,
  `waitUntil`, `blockConcurrencyWhile(fn)`, `acceptWebSocket(ws, tags?)`, `getWebSockets(tag?)`,
  `getTags(ws)`, `setWebSocketAutoResponse(pair?)`, `getWebSocketAutoResponse()`,
  `getWebSocketAutoResponseTimestamp(ws)` (a Date or null), `abort(reason?)`.
  Tags must be a JS array of strings: at most 10 per socket, each at most 256 characters
  (https://developers.cloudflare.com/durable-objects/api/websockets/); a Python list is a PyProxy,
  not an Array, and is refused like workerd refuses it.
- Storage (`ctx.storage`): see `storage.py`.
- Namespace (https://developers.cloudflare.com/durable-objects/api/namespace/): `idFromName`,
  `newUniqueId`, `idFromString` (64 hex digits), `get(id)`, `getByName(name)`. The stub
  (constructor "DurableObject", a Fetcher subclass in workerd) answers any property name with an
  RPC method; arguments and results cross by structured clone with RPC extensions
  (https://developers.cloudflare.com/workers/runtime-apis/rpc/), so a Python dict reaching the
  stub directly fails with DataCloneError; `stub.fetch(input, init)` builds a Request.
- A Python Durable Object is called by workerd with `python_from_rpc(arg)` for each argument and
  `python_to_rpc(result)` for the result (workerd `src/pyodide/internal/introspection.py`); pass
  `python_entrypoint=True` to get that. A Python exception escaping the target reaches the caller
  as `Error("PythonError: <traceback>")`.

Not modelled: input/output gates (calls to one object may interleave at awaits), location hints,
jurisdictions (returns the same namespace), storage size limits.
"""

from __future__ import annotations

import hashlib
import inspect
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .buffers import ArrayBuffer
from .clone import structured_clone
from .errors import JsException, error, type_error
from .jsglobals import JsDate, now_ms
from .promises import JsPromise
from .proxy import jsnull
from .sockets import CLOSED, CLOSING, WebSocket, WebSocketRequestResponsePair
from .storage import FakeDurableObjectStorage
from .values import (
    JsArray,
    JsFunction,
    JsObject,
    JsProxy,
    PyProxy,
    await_js,
    call_function,
    js_method,
    py2js,
)
from .web import Request, Response

MAX_TAGS = 10
MAX_TAG_LENGTH = 256
MAX_HIBERNATABLE_SOCKETS = 32_768


# ---------------------------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------------------------


class FakeDurableObjectId(JsProxy):
    js_class = "DurableObjectId"

    def __init__(self, hex_id: str, name: str | None = None) -> None:
        self._hex = hex_id
        if name is not None:
            self.name = name

    def __getattr__(self, attr: str) -> Any:
        if attr == "name":
            return None  # undefined for ids not made from a name
        raise AttributeError(attr)

    def toString(self) -> str:
        return self._hex

    @js_method
    def equals(self, other: Any = None) -> bool:
        return isinstance(other, FakeDurableObjectId) and other._hex == self._hex

    @staticmethod
    def from_name(namespace: str, name: str) -> FakeDurableObjectId:
        digest = hashlib.sha256(f"{namespace}\0{name}".encode()).hexdigest()
        return FakeDurableObjectId(digest, name)

    def __repr__(self) -> str:
        return f"<DurableObjectId {self._hex[:12]}… name={self.__dict__.get('name')!r}>"


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


class FakeDurableObjectState(JsProxy):
    """`ctx` of a Durable Object. `FakeDurableObjectState(name="room-1")` gives an id made from
    that name and fresh in-memory storage."""

    js_class = "DurableObjectState"

    def __init__(
        self,
        id: FakeDurableObjectId | None = None,
        *,
        name: str | None = None,
        storage: FakeDurableObjectStorage | None = None,
        namespace: str = "jsfake",
    ) -> None:
        if id is None:
            id = (
                FakeDurableObjectId.from_name(namespace, name)
                if name is not None
                else FakeDurableObjectId(secrets.token_hex(32))
            )
        self.id = id
        self.storage = storage or FakeDurableObjectStorage()
        self.props = JsObject()
        self.wait_until: list[Any] = []
        self.aborted: Any = None
        self._sockets: dict[int, tuple[WebSocket, list[str]]] = {}
        self._auto_response: WebSocketRequestResponsePair | None = None
        self._auto_response_times: dict[int, float] = {}
        self._event_timeout: int | None = None

    @js_method
    def waitUntil(self, promise: Any = None) -> None:
        self.wait_until.append(promise)

    @js_method
    def blockConcurrencyWhile(self, callback: Any = None) -> JsPromise:
        async def run() -> Any:
            return await await_js(call_function(callback))

        return JsPromise(run())

    @js_method
    def abort(self, reason: Any = None) -> None:
        self.aborted = "aborted" if reason is None else reason

    # WebSocket hibernation
    @js_method
    def acceptWebSocket(self, ws: Any = None, tags: Any = None) -> None:
        if not isinstance(ws, WebSocket):
            raise type_error(
                "Failed to execute 'acceptWebSocket' on 'DurableObjectState': "
                "parameter 1 is not of type 'WebSocket'."
            )
        tag_list: list[str] = []
        if tags is not None:
            if not isinstance(tags, JsArray):
                kind = f"a Python {tags.type}" if isinstance(tags, PyProxy) else type(tags).__name__
                raise type_error(
                    "Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter 2 is "
                    f"not of type 'Array' (got {kind}; use to_js([...]))."
                )
            for tag in tags._items:
                if not isinstance(tag, str):
                    raise type_error("WebSocket tags must be strings.")
                if len(tag) > MAX_TAG_LENGTH:
                    raise error(
                        f"A WebSocket tag cannot be longer than {MAX_TAG_LENGTH} characters."
                    )
                tag_list.append(tag)
            if len(tag_list) > MAX_TAGS:
                raise error(f"A WebSocket cannot have more than {MAX_TAGS} tags.")
        if len(self._sockets) >= MAX_HIBERNATABLE_SOCKETS:
            raise error("Too many hibernatable WebSockets on this Durable Object.")
        ws._accept_hibernatable()
        self._sockets[id(ws)] = (ws, tag_list)

    @js_method
    def getWebSockets(self, tag: Any = None) -> JsArray:
        return JsArray(
            ws
            for ws, tags in self._sockets.values()
            if ws.readyState != CLOSED and (tag is None or tag in tags)
        )

    @js_method
    def getTags(self, ws: Any = None) -> JsArray:
        entry = self._sockets.get(id(ws))
        if entry is None:
            raise type_error("getTags() only works on WebSockets accepted via acceptWebSocket().")
        return JsArray(entry[1])

    @js_method
    def setWebSocketAutoResponse(self, pair: Any = None) -> None:
        if pair is not None and not isinstance(pair, WebSocketRequestResponsePair):
            raise type_error("setWebSocketAutoResponse() expects a WebSocketRequestResponsePair.")
        self._auto_response = pair

    def getWebSocketAutoResponse(self) -> Any:
        return self._auto_response if self._auto_response is not None else jsnull

    @js_method
    def getWebSocketAutoResponseTimestamp(self, ws: Any = None) -> Any:
        if not isinstance(ws, WebSocket):
            raise type_error("getWebSocketAutoResponseTimestamp() expects a WebSocket.")
        stamp = self._auto_response_times.get(id(ws))
        return JsDate(stamp) if stamp is not None else jsnull

    @js_method
    def setHibernatableWebSocketEventTimeout(self, timeout: Any = None) -> None:
        self._event_timeout = None if timeout is None else int(timeout)

    def getHibernatableWebSocketEventTimeout(self) -> Any:
        return jsnull if self._event_timeout is None else self._event_timeout

    # --- test helpers: what the runtime does when a hibernated socket has an event -------------

    async def deliver_message(self, ws: WebSocket, message: str | bytes, target: Any) -> bool:
        """A client message reaches `ws`: answer it with the auto-response if it matches
        (without waking the object) or call `target.webSocketMessage(ws, message)` with raw JS
        values, as workerd calls a hibernation handler (no SDK conversion: a binary frame is an
        ArrayBuffer). Returns True if the object was woken."""
        self._check_hibernatable(ws)
        pair = self._auto_response
        if pair is not None and isinstance(message, str) and message == pair.request:
            ws.sent.append(pair.response)
            self._auto_response_times[id(ws)] = float(int(now_ms()))
            return False
        payload: Any = message if isinstance(message, str) else ArrayBuffer(message)
        await _call_handler(target, "webSocketMessage", [ws, payload])
        return True

    async def deliver_close(
        self, ws: WebSocket, target: Any, code: int = 1000, reason: str = "", was_clean: bool = True
    ) -> None:
        """The client closed `ws`: call `target.webSocketClose(ws, code, reason, wasClean)`.

        As with workerd's Hibernation API (before `web_socket_auto_reply_to_close`), the socket
        stays CLOSING until the server answers with `ws.close()`; only then is it CLOSED."""
        self._check_hibernatable(ws)
        ws.readyState = CLOSING
        await _call_handler(target, "webSocketClose", [ws, code, reason, was_clean])

    def _check_hibernatable(self, ws: WebSocket) -> None:
        if id(ws) not in self._sockets:
            raise RuntimeError("this WebSocket was not accepted with acceptWebSocket()")


async def _call_handler(target: Any, method: str, args: list[Any]) -> Any:
    fn = getattr(target, method, None)
    if fn is None:
        raise RuntimeError(f"{type(target).__name__} has no {method}()")
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


# ---------------------------------------------------------------------------------------------
# Namespace and stubs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StubCall:
    """One call through a stub (each is one billed Durable Object request)."""

    object_id: str
    name: str | None
    method: str
    args: tuple[Any, ...]


class FakeDurableObjectNamespace(JsProxy):
    """A Durable Object binding.

    `target` is the object every stub talks to, or pass `factory(id)` to build one instance per
    object id (kept in `instances`). With `python_entrypoint=True` the target is called like
    workerd calls a Python Durable Object (SDK conversions applied to arguments and results).
    """

    js_class = "DurableObjectNamespace"

    def __init__(
        self,
        target: Any = None,
        *,
        factory: Callable[[FakeDurableObjectId], Any] | None = None,
        python_entrypoint: bool = False,
        name: str = "jsfake-namespace",
    ) -> None:
        if (target is None) == (factory is None):
            raise ValueError("pass exactly one of target= or factory=")
        self._factory = factory if factory is not None else (lambda _id: target)
        self._python = python_entrypoint
        self._name = name
        self.instances: dict[str, Any] = {}
        self.calls: list[StubCall] = []

    @js_method
    def idFromName(self, name: Any = None) -> FakeDurableObjectId:
        if not isinstance(name, str):
            raise type_error("idFromName() expects a string")
        return FakeDurableObjectId.from_name(self._name, name)

    def newUniqueId(self, *_options: Any) -> FakeDurableObjectId:
        return FakeDurableObjectId(secrets.token_hex(32))

    @js_method
    def idFromString(self, hex_id: Any = None) -> FakeDurableObjectId:
        text = str(hex_id)
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise type_error("Invalid Durable Object ID: must be 64 hex digits")
        return FakeDurableObjectId(text)

    @js_method
    def get(self, object_id: Any = None, *_options: Any) -> DurableObjectStub:
        if not isinstance(object_id, FakeDurableObjectId):
            raise type_error(
                "Failed to execute 'get' on 'DurableObjectNamespace': parameter 1 "
                "is not of type 'DurableObjectId'."
            )
        return DurableObjectStub(self, object_id)

    @js_method
    def getByName(self, name: Any = None, *_options: Any) -> DurableObjectStub:
        return DurableObjectStub(self, self.idFromName(name))

    def jurisdiction(self, *_args: Any) -> FakeDurableObjectNamespace:
        return self

    # test helpers
    def instance_for(self, object_id: FakeDurableObjectId) -> Any:
        key = object_id.toString()
        if key not in self.instances:
            self.instances[key] = self._factory(object_id)
        return self.instances[key]

    def instance(self, name: str) -> Any:
        """The target serving the object named `name` (created on first use)."""
        return self.instance_for(FakeDurableObjectId.from_name(self._name, name))


def _rpc_error(exc: BaseException) -> JsException:
    if isinstance(exc, JsException):
        return structured_clone(exc)
    text = "".join(traceback.format_exception(exc)).rstrip()
    return JsException("Error", f"PythonError: {text}")


class RpcMethod(JsFunction):
    """`stub.anything`: calling it sends an RPC call."""

    def __init__(self, stub: DurableObjectStub, method: str) -> None:
        super().__init__(lambda *args: stub._call(method, list(args)), method)


class DurableObjectStub(JsProxy):
    js_class = "DurableObject"
    _is_rpc_stub = True

    def __init__(self, namespace: FakeDurableObjectNamespace, object_id: FakeDurableObjectId):
        self._namespace = namespace
        self.id = object_id

    @property
    def name(self) -> Any:
        return self.id.name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return RpcMethod(self, attr)

    def _call(self, method: str, args: list[Any]) -> JsPromise:
        ns = self._namespace
        cloned = [structured_clone(a, rpc=True) for a in args]
        ns.calls.append(StubCall(self.id.toString(), self.id.name, method, tuple(cloned)))

        async def run() -> Any:
            target = ns.instance_for(self.id)
            fn = getattr(target, method, None)
            if fn is None or not callable(fn):
                raise type_error(f'The RPC receiver does not implement the method "{method}".')
            call_args = cloned
            if ns._python:
                from workers import python_from_rpc

                call_args = [python_from_rpc(a) for a in cloned]
            try:
                result = fn(*call_args)
                if inspect.isawaitable(result):
                    result = await result
                if ns._python:
                    from workers import python_to_rpc

                    result = python_to_rpc(result)
            except Exception as exc:
                raise _rpc_error(exc) from exc
            return structured_clone(py2js(result), rpc=True)

        return JsPromise(run())

    @js_method
    def fetch(self, input: Any = None, init: Any = None) -> JsPromise:
        ns = self._namespace
        request = input if isinstance(input, Request) and init is None else Request(input, init)
        ns.calls.append(StubCall(self.id.toString(), self.id.name, "fetch", (request,)))

        async def run() -> Response:
            target = ns.instance_for(self.id)
            fn = getattr(target, "fetch", None)
            if fn is None:
                raise type_error("Handler does not export a fetch() function.")
            arg: Any = request
            if ns._python:
                from workers import python_from_rpc

                arg = python_from_rpc(request)
            try:
                result = fn(arg)
                if inspect.isawaitable(result):
                    result = await result
                if ns._python:
                    from workers import python_to_rpc

                    result = python_to_rpc(result)
            except Exception as exc:
                raise _rpc_error(exc) from exc
            if not isinstance(result, Response):
                raise type_error(
                    "Incorrect type for Promise: the Promise did not resolve to 'Response'."
                )
            return result

        return JsPromise(run())

    def toString(self) -> str:
        return "[object DurableObject]"

    def __repr__(self) -> str:
        return f"<DurableObject stub {self.id.toString()[:12]}… name={self.id.name!r}>"
