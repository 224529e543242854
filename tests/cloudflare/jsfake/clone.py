"""The structured clone algorithm, as used by Durable Object storage, WebSocket attachments and
Workers RPC.

Contracts:
- HTML structured clone (https://html.spec.whatwg.org/multipage/structured-data.html): primitives,
  plain objects, arrays, Map, Set, Date, Error (name kept only for the standard error classes),
  ArrayBuffer and typed arrays clone; functions, host objects and proxies throw `DataCloneError`
  ("... could not be cloned."). A Python object handed to JS is a Pyodide `PyProxy` (a JS Proxy),
  so it cannot be cloned either: `ws.serializeAttachment({"a": 1})` fails like in workerd.
- Workers RPC (https://developers.cloudflare.com/workers/runtime-apis/rpc/) extends it: functions
  and RPC stubs are passed by reference (the receiver gets a callable stub), and Request,
  Response and ReadableStream are transferred.
"""

from __future__ import annotations

from typing import Any

from .buffers import JsBuffer
from .errors import STANDARD_ERRORS, JsException, data_clone_error
from .jsglobals import JsDate
from .proxy import JsNull
from .values import JsArray, JsFunction, JsMap, JsObject, JsProxy, JsSet, PyProxy, call_function

# Host objects Workers RPC transfers instead of cloning.
RPC_TRANSFERABLE = frozenset({"Request", "Response", "ReadableStream", "WritableStream"})


class RpcCallbackStub(JsFunction):
    """What the receiver of an RPC call gets for a function argument: a stub calling back."""

    def __init__(self, target: Any) -> None:
        def forward(*args: Any) -> Any:
            return call_function(target, *(structured_clone(a, rpc=True) for a in args))

        super().__init__(forward, "RpcStub")


def structured_clone(value: Any, *, rpc: bool = False) -> Any:
    memo: dict[int, Any] = {}

    def clone(v: Any) -> Any:
        if v is None or isinstance(v, bool | int | float | str | JsNull):
            return v
        if id(v) in memo:
            return memo[id(v)]
        if isinstance(v, PyProxy):
            if rpc and v.typeof == "function":
                return RpcCallbackStub(v)
            raise data_clone_error(f"#<Object> (a Python {v.type} proxied into JS)")
        if isinstance(v, JsException):
            name = v.name if v.name in STANDARD_ERRORS else "Error"
            return JsException(name, v.message)
        if isinstance(v, JsFunction):
            if rpc:
                return RpcCallbackStub(v)
            raise data_clone_error(f"function {v.name}")
        if isinstance(v, JsArray):
            out = JsArray()
            memo[id(v)] = out
            out._items.extend(clone(item) for item in v._items)
            return out
        if type(v) is JsObject:
            out_obj = JsObject()
            memo[id(v)] = out_obj
            for key, item in v._props.items():
                out_obj._props[key] = clone(item)
            return out_obj
        if isinstance(v, JsMap):
            out_map = JsMap()
            memo[id(v)] = out_map
            for key, item in v._data.items():
                out_map._data[clone(key)] = clone(item)
            return out_map
        if isinstance(v, JsSet):
            return JsSet(clone(item) for item in v._data)
        if isinstance(v, JsDate):
            return JsDate(v._ms)
        if isinstance(v, JsBuffer):
            return type(v)(v._bytes())
        if isinstance(v, JsProxy):
            if rpc and (v.js_class in RPC_TRANSFERABLE or getattr(v, "_is_rpc_stub", False)):
                return v
            raise data_clone_error(f"#<{v.js_class}>")
        raise data_clone_error(f"#<Object> (Python {type(v).__name__})")

    return clone(value)


def serialized_size(value: Any) -> int:
    """A rough size of a structured-clone payload (JSON length of a clone-able value)."""
    import json

    from .jsglobals import to_json_value

    try:
        return len(json.dumps(to_json_value(value), default=str).encode())
    except (TypeError, ValueError):
        return 0
