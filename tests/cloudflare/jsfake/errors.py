"""JS errors as Python sees them: `pyodide.ffi.JsException` and `ConversionError`.

Contract (Pyodide 0.28, https://pyodide.org/en/stable/usage/api/python-api/ffi.html):
- A JS `Error` object proxied into Python is a `JsException`, which is both a `JsProxy` and an
  `Exception`. It has `.name` ("TypeError", "RangeError", "DataCloneError", ...), `.message` and
  `.stack`; `str(e)` is the JS `e.toString()`, i.e. "Name: message".
- `JsException(name, message)` builds one from Python (used by `pyodide.http` for AbortError).
- A *Python* exception raised in a Python callback that JS calls keeps its identity when it comes
  back to Python (Pyodide unwraps the `PythonError`); only RPC serialization turns it into a JS
  `Error` (see `durable.py`).

DOMException names (DataCloneError, AbortError, InvalidStateError, ...) have the constructor
"DOMException"; the standard ECMAScript error classes are their own constructors.
"""

from __future__ import annotations

from typing import Any

from .proxy import JsProxy, constructor_ref

STANDARD_ERRORS = frozenset(
    {"Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError", "EvalError", "URIError"}
)
DOM_EXCEPTIONS = frozenset(
    {
        "DataCloneError",
        "AbortError",
        "InvalidStateError",
        "InvalidAccessError",
        "NotSupportedError",
        "TimeoutError",
        "SyntaxError",
    }
)


class JsException(JsProxy, Exception):
    """A JS error. `JsException("TypeError", "bad")` is a thrown `new TypeError("bad")`."""

    js_class = "Error"

    def __init__(self, name: str = "Error", message: str = "", *, constructor: str | None = None):
        Exception.__init__(self, f"{name}: {message}" if message else name)
        self.name = name
        self.message = message
        if constructor is None:
            if name in STANDARD_ERRORS:
                constructor = name
            elif name in DOM_EXCEPTIONS:
                constructor = "DOMException"
            else:
                constructor = "Error"
        self._constructor_name = constructor
        self.stack = f"{self.toString()}\n    at <jsfake>"

    @property
    def constructor(self) -> Any:
        return constructor_ref(self._constructor_name)

    @property
    def js_error(self) -> JsException:
        return self

    def toString(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name

    def __str__(self) -> str:
        return self.toString()

    def __repr__(self) -> str:
        return f"JsException({self.name!r}, {self.message!r})"

    __hash__ = Exception.__hash__


class ConversionError(Exception):
    """`pyodide.ffi.ConversionError`: a value that `to_js` may not proxy or convert."""


def type_error(message: str) -> JsException:
    return JsException("TypeError", message)


def range_error(message: str) -> JsException:
    return JsException("RangeError", message)


def error(message: str) -> JsException:
    return JsException("Error", message)


def data_clone_error(what: str) -> JsException:
    return JsException("DataCloneError", f"{what} could not be cloned.")
