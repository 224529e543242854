"""Binary data: `ArrayBuffer`, `Uint8Array` (`pyodide.ffi.JsBuffer`) and `PyProxy.getBuffer()`.

Contracts:
- Pyodide `JsBuffer` (https://pyodide.org/en/stable/usage/api/python-api/ffi.html#pyodide.ffi.JsBuffer):
  `to_bytes()`, `to_memoryview()`, `to_string(encoding=None)`, `assign()`, `assign_to()`.
- `PyProxy.getBuffer()` (https://pyodide.org/en/stable/usage/api/js-api.html#pyodide.ffi.PyBuffer)
  returns a `PyBufferView` whose `.data` is a TypedArray *on Python's memory*; after
  `release()` that memory may be reused. This fake makes any read of `.data` after `release()`
  raise, so a use-after-release in our code fails loudly instead of reading garbage.
- JS semantics: `slice()` copies; typed arrays have `length`, `byteLength`, `buffer`.
"""

from __future__ import annotations

from typing import Any

from .errors import type_error
from .values import JsProxy, PyProxy, js_method


class _Guard:
    """Shared by a `PyBufferView` and the arrays reading its memory."""

    def __init__(self) -> None:
        self.released = False


class JsBuffer(JsProxy):
    """Base of ArrayBuffer and the typed arrays."""

    js_class = "ArrayBuffer"

    def __init__(self, data: bytes = b"", *, guard: _Guard | None = None) -> None:
        self._data = bytes(data)
        self._guard = guard

    def _bytes(self) -> bytes:
        if self._guard is not None and self._guard.released:
            raise type_error(
                "jsfake: buffer read after PyBufferView.release(); the memory belongs to Python "
                "and may already hold other data"
            )
        return self._data

    @property
    def byteLength(self) -> int:
        return len(self._bytes())

    # Pyodide JsBuffer API
    def to_bytes(self) -> bytes:
        return self._bytes()

    def to_memoryview(self) -> memoryview:
        return memoryview(self._bytes())

    def to_string(self, encoding: str | None = None) -> str:
        return self._bytes().decode(encoding or "utf-8")

    def assign(self, rhs: Any, /) -> None:
        data = bytes(rhs)
        if len(data) != len(self._bytes()):
            raise ValueError("cannot assign to TypedArray because size does not match")
        self._data = data

    def assign_to(self, to: Any, /) -> None:
        view = memoryview(to)
        data = self._bytes()
        if view.nbytes != len(data):
            raise ValueError("cannot assign from TypedArray because size does not match")
        view.cast("B")[:] = data

    def __repr__(self) -> str:
        return f"{self.js_class}({self._data!r})"


class ArrayBuffer(JsBuffer):
    js_class = "ArrayBuffer"

    @js_method
    def slice(self, begin: Any = None, end: Any = None) -> ArrayBuffer:
        return ArrayBuffer(self._bytes()[slice(begin, end)])


class Uint8Array(JsBuffer):
    js_class = "Uint8Array"

    @property
    def length(self) -> int:
        return len(self._bytes())

    @property
    def byteOffset(self) -> int:
        return 0

    @property
    def buffer(self) -> ArrayBuffer:
        return ArrayBuffer(self._bytes())

    def __len__(self) -> int:
        return len(self._bytes())

    def __getitem__(self, index: int) -> int:
        return self._bytes()[index]

    def __iter__(self) -> Any:
        return iter(self._bytes())

    @js_method
    def slice(self, begin: Any = None, end: Any = None) -> Uint8Array:
        return Uint8Array(self._bytes()[slice(begin, end)])

    @js_method
    def subarray(self, begin: Any = None, end: Any = None) -> Uint8Array:
        return Uint8Array(self._bytes()[slice(begin, end)], guard=self._guard)


def buffer_bytes(value: Any) -> bytes | None:
    """The bytes of an ArrayBuffer / ArrayBufferView, or None if `value` is not one."""
    if isinstance(value, JsBuffer):
        return value._bytes()
    return None


def new_uint8array(arg: Any = None, *_rest: Any) -> Uint8Array:
    """`new Uint8Array(length | buffer | iterable)`."""
    if arg is None:
        return Uint8Array(b"")
    if isinstance(arg, int) and not isinstance(arg, bool):
        return Uint8Array(bytes(arg))
    data = buffer_bytes(arg)
    if data is not None:
        return Uint8Array(data)
    source = arg._check() if isinstance(arg, PyProxy) else arg
    try:
        return Uint8Array(bytes(int(v) & 0xFF for v in source))
    except TypeError:
        raise type_error("invalid Uint8Array source") from None


def new_array_buffer(length: Any = 0, *_rest: Any) -> ArrayBuffer:
    return ArrayBuffer(bytes(int(length or 0)))


class PyBufferView(JsProxy):
    """What `create_proxy(pybuffer).getBuffer()` returns."""

    js_class = "PyBufferView"

    def __init__(self, data: bytes) -> None:
        self._guard = _Guard()
        self._array = Uint8Array(data, guard=self._guard)
        self.readonly = True
        self.format = "B"
        self.itemsize = 1
        self.nbytes = len(data)
        self.ndim = 1
        self.shape = [len(data)]

    @property
    def data(self) -> Uint8Array:
        return self._array

    def release(self) -> None:
        self._guard.released = True
