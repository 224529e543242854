"""The base of every fake JS value: `pyodide.ffi.JsProxy`, plus `jsnull`.

Contract (Pyodide 0.28, https://pyodide.org/en/stable/usage/type-conversions.html and
https://pyodide.org/en/stable/usage/api/python-api/ffi.html):
- Every JS object reaches Python as a `JsProxy`; `x.constructor.name` is its JS class name.
- `==` is JS `===` (identity); `str(x)` is `x.toString()` ("[object Object]" for plain objects).
- A capability exists only if the JS object has it: a plain object is not subscriptable, not
  iterable and has no `len()`; `callable(x)` is true only for JS functions.
- Reading a property that does not exist raises `AttributeError`.
- `x.object_keys()`, `x.object_values()`, `x.object_entries()` are `Object.keys/values/entries`.
- JS `undefined` is Python `None`; JS `null` is the falsy singleton `pyodide.ffi.jsnull` (type
  `JsNull`), both when a value is returned and inside `to_py()` results.
"""

from __future__ import annotations

from typing import Any, ClassVar


class JsConstructorRef:
    """What `x.constructor` gives: the JS class (a function), of which tests only read `.name`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def typeof(self) -> str:
        return "function"

    def __repr__(self) -> str:
        return f"<JS class {self.name}>"


_CONSTRUCTORS: dict[str, JsConstructorRef] = {}


def constructor_ref(name: str) -> JsConstructorRef:
    ref = _CONSTRUCTORS.get(name)
    if ref is None:
        ref = _CONSTRUCTORS[name] = JsConstructorRef(name)
    return ref


class JsProxy:
    """Base class of all fake JS objects. Subclasses set `js_class` to the JS class name."""

    js_class: ClassVar[str] = "Object"

    @property
    def constructor(self) -> JsConstructorRef:
        return constructor_ref(self.js_class)

    @property
    def typeof(self) -> str:
        return "object"

    def _own_properties(self) -> dict[str, Any]:
        """Own enumerable properties (what `Object.keys` sees). Host objects have none."""
        return {}

    def object_keys(self) -> Any:
        from .values import JsArray

        return JsArray(list(self._own_properties()))

    def object_values(self) -> Any:
        from .values import JsArray

        return JsArray(list(self._own_properties().values()))

    def object_entries(self) -> Any:
        from .values import JsArray

        return JsArray([JsArray([k, v]) for k, v in self._own_properties().items()])

    def to_py(self, *, depth: int = -1, default_converter: Any = None) -> Any:
        from .values import convert_to_py

        return convert_to_py(self, depth=depth, default_converter=default_converter)

    def toString(self) -> str:
        return f"[object {self.js_class}]"

    def __str__(self) -> str:
        return self.toString()

    def __repr__(self) -> str:
        return f"<JsProxy {self.js_class}>"


class JsNull:
    """JS `null` (`pyodide.ffi.jsnull`): falsy, distinct from `None` (JS `undefined`).

    A singleton sentinel, not a `JsProxy`: it has no `constructor` and no methods.
    """

    _instance: ClassVar[JsNull | None] = None

    def __new__(cls) -> JsNull:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return "null"

    def __repr__(self) -> str:
        return "jsnull"


jsnull = JsNull()
