"""JS values and the Python<->JS conversions of Pyodide 0.28.

Contracts (https://pyodide.org/en/stable/usage/type-conversions.html,
https://pyodide.org/en/stable/usage/api/python-api/ffi.html):

Implicit conversion (arguments of a JS call, values returned by JS, property reads/writes):
- Python -> JS: `int`, `float`, `str`, `bool` and `None` (-> `undefined`) are converted; a
  `JsProxy` is unwrapped; every other Python object (dict, list, tuple, bytes, functions,
  coroutines...) becomes a `PyProxy`. A fake JS API that receives a `PyProxy` sees a Python object
  it cannot use as a JS object: a Python dict is *not* a JS object.
- JS -> Python: a JS number is an `int` when integral and within +-2**53, else a `float`; `null`
  is `jsnull`, `undefined` is `None`; a `PyProxy` is unwrapped to the Python object (except a
  `create_proxy()` proxy, which comes back as itself: `roundtrip=True`).
- Keyword arguments of a call from Python to JS are gathered into one JS object passed as the
  last positional argument: `Response.new(body, status=201)` is `new Response(body, {status})`.

Explicit conversion:
- `to_js(x, dict_converter=None, default_converter=None, ...)`: list/tuple -> Array, dict -> Map
  (or `dict_converter(entries)`, e.g. `Object.fromEntries` -> plain object), set -> Set, buffers
  -> Uint8Array, immutable values unchanged, `JsProxy` unchanged; other objects go to
  `default_converter(value, convert, cache)` if given, else become a `PyProxy`.
- `proxy.to_py(depth=-1, default_converter=None)`: Array -> list, plain Object (constructor
  "Object") -> dict, Map -> dict, Set -> set, primitives as is; instances of any other class are
  passed to `default_converter(value, convert, cache)` if given, else left as the proxy.
- `create_proxy(obj)` gives a `JsDoubleProxy` (here `PyProxy`) with `destroy()`, `unwrap()` and,
  for buffer objects, `getBuffer()` -> a view with `.data` (a Uint8Array) and `release()`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, MutableMapping, MutableSequence
from typing import Any

from .errors import ConversionError, JsException, type_error
from .proxy import JsConstructorRef, JsNull, JsProxy, constructor_ref, jsnull

MAX_SAFE = 2**53


# ---------------------------------------------------------------------------------------------
# Implicit conversions
# ---------------------------------------------------------------------------------------------


def py2js(value: Any) -> Any:
    """Implicit Python -> JS conversion (an argument or a property value crossing into JS)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, JsProxy | JsNull):
        return value
    return PyProxy(value, roundtrip=False)


def js2py(value: Any) -> Any:
    """Implicit JS -> Python conversion (a value returned from JS)."""
    if isinstance(value, PyProxy) and not value._roundtrip:
        return value._unwrap_for_python()
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE:
        return int(value)
    return value


def js_number(value: int | float) -> int | float:
    """Normalize a JS number as Pyodide presents it to Python."""
    return js2py(float(value)) if isinstance(value, float) else value


def js_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The JS arguments of a call made from Python (kwargs become a trailing object)."""
    converted = [py2js(a) for a in args]
    if kwargs:
        converted.append(JsObject({k: py2js(v) for k, v in kwargs.items()}))
    return converted


def js_method(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a fake JS method: its body receives JS values exactly as JS would."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return js2py(fn(self, *js_args(args, kwargs)))

    return wrapper


def is_bigint(value: Any) -> bool:
    """A Python int outside +-2**53 crosses into JS as a BigInt, not a Number."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE


def js_typeof(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if is_bigint(value):
        return "bigint"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, JsProxy):
        return value.typeof
    if isinstance(value, JsNull):
        return "object"
    return "object"


def call_function(fn: Any, *args: Any) -> Any:
    """Call `fn` the way JS code would (JS arguments in, a JS value out)."""
    if isinstance(fn, JsFunction):
        return fn._impl(*args)
    if isinstance(fn, PyProxy):
        return fn._js_call(*args)
    if callable(fn) and not isinstance(fn, JsProxy):
        return py2js(fn(*(js2py(a) for a in args)))
    raise type_error(f"{js_typeof(fn)} is not a function")


def js_to_string(value: Any) -> str:
    """JS ToString of a primitive, strict about proxied Python objects."""
    if isinstance(value, PyProxy):
        raise type_error(
            f"jsfake: got a Python {value.type} (PyProxy) where JS expects a string; "
            f"workerd would use its str() ({value!s})"
        )
    if value is None:
        return "undefined"
    if isinstance(value, JsNull):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, JsProxy):
        return value.toString()
    return str(value)


# ---------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------


class JsObject(JsProxy):
    """A plain JS object (constructor "Object"): attribute access, `to_py()` -> dict."""

    js_class = "Object"

    def __init__(self, props: dict[str, Any] | None = None, /) -> None:
        object.__setattr__(self, "_props", {})
        for key, value in (props or {}).items():
            self._props[str(key)] = py2js(value)

    def _own_properties(self) -> dict[str, Any]:
        return dict(self._props)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        props = self.__dict__["_props"]
        if name not in props:
            raise AttributeError(name)
        return js2py(props[name])

    def __setattr__(self, name: str, value: Any) -> None:
        self._props[name] = py2js(value)

    def __delattr__(self, name: str) -> None:
        try:
            del self._props[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> Iterable[str]:
        return [*self._props, *super().__dir__()]

    def as_object_map(self) -> JsObjectMap:
        return JsObjectMap(self)

    def __repr__(self) -> str:
        return f"JsObject({self._props!r})"


class JsObjectMap(MutableMapping[str, Any]):
    """`JsProxy.as_object_map()`: a Python mapping view of an object's own properties."""

    def __init__(self, obj: JsObject) -> None:
        self._obj = obj

    def __getitem__(self, key: str) -> Any:
        return js2py(self._obj._props[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self._obj._props[key] = py2js(value)

    def __delitem__(self, key: str) -> None:
        del self._obj._props[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._obj._props))

    def __len__(self) -> int:
        return len(self._obj._props)


class JsArray(JsProxy, MutableSequence[Any]):
    """A JS Array (constructor "Array"): iterable, indexable, `length`, `to_py()` -> list."""

    js_class = "Array"

    def __init__(self, items: Iterable[Any] = (), /) -> None:
        self._items: list[Any] = [py2js(v) for v in items]

    @property
    def length(self) -> int:
        return len(self._items)

    def _own_properties(self) -> dict[str, Any]:
        return {str(i): v for i, v in enumerate(self._items)}

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [js2py(v) for v in self._items[index]]
        return js2py(self._items[index])

    def __setitem__(self, index: Any, value: Any) -> None:
        self._items[index] = py2js(value)

    def __delitem__(self, index: Any) -> None:
        del self._items[index]

    def insert(self, index: int, value: Any) -> None:
        self._items.insert(index, py2js(value))

    def __iter__(self) -> Iterator[Any]:
        return (js2py(v) for v in list(self._items))

    # JS methods (reached through the proxy when Python calls them)
    @js_method
    def push(self, *values: Any) -> int:
        self._items.extend(values)
        return len(self._items)

    @js_method
    def slice(self, start: Any = None, end: Any = None) -> JsArray:
        return JsArray(self._items[slice(start, end)])

    @js_method
    def join(self, sep: Any = ",") -> str:
        return sep.join("" if v is None or isinstance(v, JsNull) else str(v) for v in self._items)

    @js_method
    def includes(self, value: Any) -> bool:
        return any(v is value or (type(v) is type(value) and v == value) for v in self._items)

    @js_method
    def indexOf(self, value: Any) -> int:
        for i, v in enumerate(self._items):
            if v is value or (type(v) is type(value) and v == value):
                return i
        return -1

    def toString(self) -> str:
        return ",".join("" if v is None or isinstance(v, JsNull) else str(v) for v in self._items)

    def __repr__(self) -> str:
        return f"JsArray({self._items!r})"


class JsMap(JsProxy, MutableMapping[Any, Any]):
    """A JS Map (constructor "Map"). Pyodide gives it the Python mapping protocol."""

    js_class = "Map"

    def __init__(self, entries: Iterable[Any] = (), /) -> None:
        self._data: dict[Any, Any] = {}
        for entry in entries:
            key, value = tuple(entry)
            self._data[py2js(key)] = py2js(value)

    @property
    def size(self) -> int:
        return len(self._data)

    def __getitem__(self, key: Any) -> Any:
        return js2py(self._data[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[key] = py2js(value)

    def __delitem__(self, key: Any) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def has(self, key: Any) -> bool:
        return key in self._data

    def set(self, key: Any, value: Any) -> JsMap:
        self._data[py2js(key)] = py2js(value)
        return self

    def delete(self, key: Any) -> bool:
        return self._data.pop(key, _MISSING) is not _MISSING

    def entries(self) -> JsIterator:
        return JsIterator(JsArray([k, v]) for k, v in list(self._data.items()))

    # JS semantics: `==` is identity (Mapping would compare contents and drop hashing).
    __eq__ = JsProxy.__eq__
    __hash__ = JsProxy.__hash__

    def __repr__(self) -> str:
        return f"JsMap({self._data!r})"


class JsSet(JsProxy):
    """A JS Set (constructor "Set"); `to_py()` -> set."""

    js_class = "Set"

    def __init__(self, values: Iterable[Any] = (), /) -> None:
        self._data: dict[Any, None] = {py2js(v): None for v in values}

    @property
    def size(self) -> int:
        return len(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return (js2py(v) for v in list(self._data))

    def __contains__(self, value: Any) -> bool:
        return value in self._data

    def has(self, value: Any) -> bool:
        return value in self._data

    def add(self, value: Any) -> JsSet:
        self._data[py2js(value)] = None
        return self

    def delete(self, value: Any) -> bool:
        return self._data.pop(value, _MISSING) is not _MISSING


class JsIterator(JsProxy):
    """A JS iterator (e.g. `headers.entries()`): Python iteration and JS `next()`."""

    js_class = "Iterator"

    def __init__(self, source: Iterable[Any]) -> None:
        self._it = iter(source)

    def __iter__(self) -> JsIterator:
        return self

    def __next__(self) -> Any:
        return js2py(next(self._it))

    def next(self) -> JsObject:
        try:
            return JsObject({"value": next(self._it), "done": False})
        except StopIteration:
            return JsObject({"value": None, "done": True})


_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Functions and classes of the `js` namespace
# ---------------------------------------------------------------------------------------------


class JsFunction(JsProxy):
    """A JS function. Calling it from Python applies the implicit conversions."""

    js_class = "Function"

    def __init__(self, impl: Callable[..., Any], name: str | None = None) -> None:
        self._impl = impl
        self.name = name or getattr(impl, "__name__", "anonymous")

    @property
    def typeof(self) -> str:
        return "function"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return js2py(self._impl(*js_args(args, kwargs)))

    def toString(self) -> str:
        return f"function {self.name}() {{ [native code] }}"

    def __repr__(self) -> str:
        return f"<JsFunction {self.name}>"


class JsClass(JsFunction):
    """A JS class in the `js` namespace: `X.new(...)` constructs, statics are attributes."""

    def __init__(
        self,
        name: str,
        factory: Callable[..., Any] | None,
        statics: dict[str, Any] | None = None,
        *,
        call: Callable[..., Any] | None = None,
    ) -> None:
        def not_callable(*_args: Any) -> Any:
            raise type_error(f"Class constructor {name} cannot be invoked without 'new'")

        super().__init__(call or not_callable, name)
        self._factory = factory
        self._statics: dict[str, Any] = {}
        for key, value in (statics or {}).items():
            self._statics[key] = (
                JsFunction(value, key)
                if callable(value) and not isinstance(value, JsProxy)
                else value
            )

    def new(self, *args: Any, **kwargs: Any) -> Any:
        if self._factory is None:
            raise type_error(f"Illegal constructor: {self.name} cannot be constructed")
        return js2py(self._factory(*js_args(args, kwargs)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        statics = self.__dict__.get("_statics", {})
        if name in statics:
            return js2py(statics[name])
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"<JS class {self.name}>"


# ---------------------------------------------------------------------------------------------
# Python objects inside JS: PyProxy / create_proxy
# ---------------------------------------------------------------------------------------------


class PyProxy(JsProxy):
    """A Python object as JS sees it (`create_proxy()` gives one back to Python as a
    `JsDoubleProxy`, which is this class)."""

    js_class = "PyProxy"

    def __init__(self, obj: Any, *, roundtrip: bool = True, once: bool = False) -> None:
        self._obj = obj
        self._roundtrip = roundtrip
        self._once = once
        self._destroyed = False

    @property
    def typeof(self) -> str:
        return "function" if callable(self._obj) else "object"

    def _check(self) -> Any:
        if self._destroyed:
            raise JsException("Error", "Object has already been destroyed")
        return self._obj

    def _unwrap_for_python(self) -> Any:
        return self._check()

    # JsDoubleProxy API (Python side)
    def unwrap(self) -> Any:
        return self._check()

    def destroy(self) -> None:
        self._check()
        self._destroyed = True

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    # PyProxy API (JS side, reachable from Python through the double proxy)
    @property
    def type(self) -> str:
        cls = type(self._check())
        if cls.__module__ in ("builtins", "__main__"):
            return cls.__name__
        return f"{cls.__module__}.{cls.__name__}"

    def toJs(self, *args: Any, **kwargs: Any) -> Any:
        return to_js(self._check())

    def copy(self) -> PyProxy:
        return PyProxy(self._check(), roundtrip=self._roundtrip)

    def getBuffer(self, type: Any = None) -> Any:
        from .buffers import PyBufferView

        obj = self._check()
        try:
            with memoryview(obj) as view:
                data = view.tobytes()
        except TypeError:
            raise type_error("Python argument doesn't support the buffer protocol") from None
        return PyBufferView(data)

    def toString(self) -> str:
        return str(self._check())

    def _js_call(self, *args: Any) -> Any:
        fn = self._check()
        if not callable(fn):
            raise type_error(f"{self.type} is not a function")
        if self._once:
            self._destroyed = True
        return py2js(fn(*(js2py(a) for a in args)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return js2py(self._js_call(*js_args(args, kwargs)))

    def __repr__(self) -> str:
        state = " (destroyed)" if self._destroyed else ""
        return f"<PyProxy of {type(self._obj).__name__}{state}>"


def create_proxy(obj: Any, /, *, capture_this: bool = False, roundtrip: bool = True) -> PyProxy:
    return PyProxy(obj, roundtrip=roundtrip)


def create_once_callable(obj: Callable[..., Any], /, *, _may_syncify: bool = False) -> PyProxy:
    return PyProxy(obj, roundtrip=True, once=True)


def destroy_proxies(pyproxies: Any, /) -> None:
    for proxy in list(pyproxies):
        if isinstance(proxy, PyProxy) and not proxy.destroyed:
            proxy.destroy()


def is_awaitable_value(value: Any) -> bool:
    """Something JS can await: a promise or a proxied Python awaitable (PyProxy has then())."""
    if isinstance(value, PyProxy):
        return inspect.isawaitable(value._obj)
    return inspect.isawaitable(value)


async def await_js(value: Any) -> Any:
    """`await value` as JS does it (non-thenables resolve to themselves)."""
    if isinstance(value, PyProxy) and inspect.isawaitable(value._obj):
        return py2js(await value._check())
    if inspect.isawaitable(value):
        return py2js(await value)
    return value


# ---------------------------------------------------------------------------------------------
# Explicit conversions
# ---------------------------------------------------------------------------------------------


def to_js(
    obj: Any,
    /,
    *,
    depth: int = -1,
    pyproxies: Any = None,
    create_pyproxies: bool = True,
    dict_converter: Callable[[Iterable[Any]], Any] | None = None,
    default_converter: Callable[..., Any] | None = None,
    eager_converter: Callable[..., Any] | None = None,
) -> Any:
    """`pyodide.ffi.to_js`."""
    from .buffers import Uint8Array

    cache: dict[int, Any] = {}

    def cache_conversion(py: Any, js: Any) -> None:
        cache[id(py)] = js

    def make_proxy(value: Any) -> Any:
        if not create_pyproxies:
            raise ConversionError(f"No conversion known for {type(value).__name__} to JavaScript")
        proxy = PyProxy(value, roundtrip=False)
        if pyproxies is not None:
            pyproxies.push(proxy)
        return proxy

    def convert(value: Any, level: int = depth) -> Any:
        if value is None or isinstance(value, bool | int | float | str | JsProxy | JsNull):
            return value
        if id(value) in cache:
            return cache[id(value)]
        if level == 0:
            return make_proxy(value)

        def sub(v: Any) -> Any:
            return convert(v, level - 1)

        if eager_converter is not None:
            return py2js(eager_converter(value, sub, cache_conversion))
        if isinstance(value, dict):
            entries = JsArray()
            for k, v in value.items():
                entries.push(JsArray([sub(k), sub(v)]))
            result = JsMap(entries) if dict_converter is None else py2js(dict_converter(entries))
        elif isinstance(value, list | tuple):
            result = JsArray()
            cache[id(value)] = result
            for item in value:
                result._items.append(sub(item))
            return result
        elif isinstance(value, set | frozenset):
            result = JsSet(sub(v) for v in value)
        elif isinstance(value, bytes | bytearray | memoryview):
            result = Uint8Array(bytes(value))
        elif default_converter is not None:
            converted = default_converter(value, sub, cache_conversion)
            if converted is value:
                result = make_proxy(value)
            else:
                result = py2js(converted)
                if isinstance(result, PyProxy) and not create_pyproxies:
                    raise ConversionError(f"No conversion known for {type(converted).__name__}")
        else:
            result = make_proxy(value)
        cache[id(value)] = result
        return result

    return convert(obj)


def convert_to_py(value: Any, *, depth: int = -1, default_converter: Any = None) -> Any:
    """`JsProxy.to_py`."""
    cache: dict[int, Any] = {}

    def cache_conversion(js: Any, py: Any) -> None:
        cache[id(js)] = py

    def convert(v: Any, level: int) -> Any:
        v = js2py(v)
        if isinstance(v, PyProxy):
            return v.unwrap()
        if not isinstance(v, JsProxy) or level == 0:
            return v
        if id(v) in cache:
            return cache[id(v)]

        def sub(x: Any) -> Any:
            return convert(x, level - 1)

        if isinstance(v, JsArray):
            out: Any = []
            cache[id(v)] = out
            out.extend(sub(item) for item in v._items)
            return out
        if isinstance(v, JsMap):
            out = {}
            cache[id(v)] = out
            for key, item in v._data.items():
                out[sub(key)] = sub(item)
            return out
        if isinstance(v, JsSet):
            return {sub(item) for item in v._data}
        if type(v) is JsObject:
            out = {}
            cache[id(v)] = out
            for key, item in v._props.items():
                out[key] = sub(item)
            return out
        if default_converter is not None:
            return default_converter(v, sub, cache_conversion)
        return v

    return convert(value, depth)


def object_from_entries(entries: Any) -> JsObject:
    """`Object.fromEntries(iterable)`: accepts JS iterables and proxied Python iterables."""
    source = entries._check() if isinstance(entries, PyProxy) else entries
    try:
        iterator = iter(source)
    except TypeError:
        raise type_error("object is not iterable") from None
    result = JsObject()
    for entry in iterator:
        entry = entry._check() if isinstance(entry, PyProxy) else entry
        try:
            key, value = list(entry)[:2]
        except (TypeError, ValueError):
            raise type_error("Iterator value is not an entry object") from None
        result._props[str(js2py(key))] = py2js(value)
    return result


__all__ = [
    "MAX_SAFE",
    "JsArray",
    "JsClass",
    "JsConstructorRef",
    "JsFunction",
    "JsIterator",
    "JsMap",
    "JsObject",
    "JsProxy",
    "JsSet",
    "PyProxy",
    "await_js",
    "call_function",
    "constructor_ref",
    "convert_to_py",
    "create_once_callable",
    "create_proxy",
    "destroy_proxies",
    "is_awaitable_value",
    "is_bigint",
    "js2py",
    "js_args",
    "js_method",
    "js_number",
    "js_to_string",
    "js_typeof",
    "jsnull",
    "object_from_entries",
    "py2js",
    "to_js",
]
