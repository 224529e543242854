"""ECMAScript globals: Object, Array, Map, Set, Date, JSON, Error classes, console,
queueMicrotask, TextEncoder/TextDecoder, Uint8Array/ArrayBuffer constructors.

Contracts: ECMAScript (https://tc39.es/ecma262/), as exposed through Pyodide's `js` module:
- `Object.fromEntries(iterable)` builds a plain object; it is the `dict_converter` the SDK uses.
- `new Date(ms)`; `getTime()` is ms since the epoch; `toISOString()` is UTC with milliseconds.
- `JSON.stringify` skips `undefined` in objects, writes it as `null` in arrays; `JSON.parse`
  gives plain objects / arrays, `null` -> `jsnull`.
- `queueMicrotask(cb)` runs `cb` after the current synchronous code (here: `loop.call_soon`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from collections.abc import Callable
from typing import Any

from .buffers import JsBuffer, Uint8Array, new_array_buffer, new_uint8array
from .errors import JsException, type_error
from .proxy import JsNull, jsnull
from .values import (
    JsArray,
    JsClass,
    JsMap,
    JsObject,
    JsProxy,
    JsSet,
    PyProxy,
    call_function,
    js2py,
    js_number,
    object_from_entries,
)

# A clock tests may replace (`jsfake.set_clock`): returns ms since the epoch.
_clock: list[Callable[[], float]] = [lambda: time.time() * 1000]


def now_ms() -> float:
    return _clock[0]()


def set_clock(clock: Callable[[], float] | None) -> None:
    _clock[0] = clock or (lambda: time.time() * 1000)


class JsDate(JsProxy):
    js_class = "Date"

    def __init__(self, ms: float) -> None:
        self._ms = float(ms)

    def getTime(self) -> int | float:
        return js_number(self._ms)

    def valueOf(self) -> int | float:
        return js_number(self._ms)

    def toISOString(self) -> str:
        if math.isnan(self._ms):
            raise JsException("RangeError", "Invalid time value")
        moment = dt.datetime.fromtimestamp(self._ms / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(self._ms % 1000):03d}Z"

    def toJSON(self) -> str:
        return self.toISOString()

    def toString(self) -> str:
        if math.isnan(self._ms):
            return "Invalid Date"
        moment = dt.datetime.fromtimestamp(self._ms / 1000, tz=dt.UTC)
        return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")

    def __repr__(self) -> str:
        return f"JsDate({self.toISOString() if not math.isnan(self._ms) else 'Invalid'})"


def _new_date(value: Any = None, *rest: Any) -> JsDate:
    if value is None and not rest:
        return JsDate(math.floor(now_ms()))
    if isinstance(value, JsDate):
        return JsDate(value._ms)
    if isinstance(value, bool):
        return JsDate(float(value))
    if isinstance(value, int | float):
        return JsDate(float(math.trunc(value)) if math.isfinite(value) else math.nan)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return JsDate(math.nan)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return JsDate(parsed.timestamp() * 1000)
    raise type_error("jsfake: unsupported Date constructor argument")


# --- JSON ----------------------------------------------------------------------------------


def to_json_value(value: Any, *, in_array: bool = False) -> Any:
    """The Python structure `JSON.stringify` would serialize (`_SKIP` for omitted values)."""
    value = js2py(value) if not isinstance(value, PyProxy) else value
    if value is None:
        return None if in_array else _SKIP
    if isinstance(value, JsNull) or value is jsnull:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, PyProxy):
        raise type_error(
            f"jsfake: JSON.stringify got a Python {value.type} (a PyProxy); "
            "convert it with to_js(..., dict_converter=Object.fromEntries) first"
        )
    if isinstance(value, JsDate):
        return value.toISOString()
    if isinstance(value, JsArray):
        return [to_json_value(v, in_array=True) for v in value._items]
    if type(value) is JsObject:
        out = {}
        for key, item in value._props.items():
            converted = to_json_value(item)
            if converted is not _SKIP:
                out[key] = converted
        return out
    if isinstance(value, JsProxy) and value.typeof == "function":
        return None if in_array else _SKIP
    return {}


_SKIP = object()


def json_stringify(value: Any, replacer: Any = None, space: Any = None) -> Any:
    converted = to_json_value(value)
    if converted is _SKIP:
        return None
    indent = space if isinstance(space, int) and space > 0 else None
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(converted, ensure_ascii=False, separators=separators, indent=indent)


def from_json_value(value: Any) -> Any:
    if value is None:
        return jsnull
    if isinstance(value, dict):
        return JsObject({k: from_json_value(v) for k, v in value.items()})
    if isinstance(value, list):
        return JsArray([from_json_value(v) for v in value])
    if isinstance(value, float):
        return js_number(value)
    return value


def json_parse(text: Any, reviver: Any = None) -> Any:
    try:
        return from_json_value(json.loads(str(text)))
    except json.JSONDecodeError as exc:
        raise JsException("SyntaxError", f"Unexpected token in JSON: {exc.msg}") from None


# --- console / microtasks --------------------------------------------------------------------


class Console(JsProxy):
    """`console`: records every call as (level, message) in `console.messages`."""

    js_class = "Object"

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def _record(self, level: str, args: tuple[Any, ...]) -> None:
        self.messages.append((level, " ".join(str(a) for a in args)))

    def log(self, *args: Any) -> None:
        self._record("log", args)

    def info(self, *args: Any) -> None:
        self._record("info", args)

    def debug(self, *args: Any) -> None:
        self._record("debug", args)

    def warn(self, *args: Any) -> None:
        self._record("warn", args)

    def error(self, *args: Any) -> None:
        self._record("error", args)


def queue_microtask(callback: Any) -> None:
    def run() -> None:
        call_function(callback)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    loop.call_soon(run)


# --- class objects for the `js` module ---------------------------------------------------------


def _error_class(name: str) -> JsClass:
    def make(message: Any = None, *_rest: Any) -> JsException:
        return JsException(name, "" if message is None else str(message))

    return JsClass(name, make, call=make)


def _object_keys(obj: Any) -> JsArray:
    return obj.object_keys() if isinstance(obj, JsProxy) else JsArray()


def _object_values(obj: Any) -> JsArray:
    return obj.object_values() if isinstance(obj, JsProxy) else JsArray()


def _object_entries(obj: Any) -> JsArray:
    return obj.object_entries() if isinstance(obj, JsProxy) else JsArray()


def _object_assign(target: Any, *sources: Any) -> Any:
    for source in sources:
        if isinstance(source, JsProxy):
            for key, value in source._own_properties().items():
                setattr(target, key, js2py(value))
    return target


def _array_from(iterable: Any, *_rest: Any) -> JsArray:
    source = iterable._check() if isinstance(iterable, PyProxy) else iterable
    return JsArray(list(source))


def _array_is_array(value: Any) -> bool:
    return isinstance(value, JsArray)


def _new_map(entries: Any = None, *_rest: Any) -> JsMap:
    if entries is None:
        return JsMap()
    source = entries._check() if isinstance(entries, PyProxy) else entries
    return JsMap(source)


def _new_set(values: Any = None, *_rest: Any) -> JsSet:
    if values is None:
        return JsSet()
    source = values._check() if isinstance(values, PyProxy) else values
    return JsSet(source)


class TextEncoder(JsProxy):
    js_class = "TextEncoder"
    encoding = "utf-8"

    def encode(self, text: Any = "") -> Uint8Array:
        return Uint8Array(str(text).encode())


class TextDecoder(JsProxy):
    js_class = "TextDecoder"
    encoding = "utf-8"

    def decode(self, data: Any = None, *_rest: Any) -> str:
        if data is None:
            return ""
        if isinstance(data, JsBuffer):
            return data.to_bytes().decode("utf-8", errors="replace")
        raise type_error("TextDecoder.decode expects an ArrayBuffer or ArrayBufferView")


def build_classes() -> dict[str, Any]:
    """The ECMAScript part of the `js` namespace."""
    return {
        "Object": JsClass(
            "Object",
            lambda *_a: JsObject(),
            {
                "fromEntries": object_from_entries,
                "keys": _object_keys,
                "values": _object_values,
                "entries": _object_entries,
                "assign": _object_assign,
            },
        ),
        "Array": JsClass(
            "Array",
            lambda *items: JsArray(items if len(items) != 1 else [None] * int(items[0])),
            {"from": _array_from, "isArray": _array_is_array},
        ),
        "Map": JsClass("Map", _new_map),
        "Set": JsClass("Set", _new_set),
        "Date": JsClass(
            "Date",
            _new_date,
            {"now": lambda: math.floor(now_ms())},
            call=lambda *_a: _new_date().toString(),
        ),
        "JSON": JsClass("JSON", None, {"stringify": json_stringify, "parse": json_parse}),
        "Error": _error_class("Error"),
        "TypeError": _error_class("TypeError"),
        "RangeError": _error_class("RangeError"),
        "SyntaxError": _error_class("SyntaxError"),
        "Uint8Array": JsClass("Uint8Array", new_uint8array),
        "ArrayBuffer": JsClass("ArrayBuffer", new_array_buffer),
        "TextEncoder": JsClass("TextEncoder", lambda *_a: TextEncoder()),
        "TextDecoder": JsClass("TextDecoder", lambda *_a: TextDecoder()),
    }
