"""Fetch API `Headers`.

Contract: WHATWG Fetch (https://fetch.spec.whatwg.org/#headers-class) as implemented by workerd
(https://developers.cloudflare.com/workers/runtime-apis/headers/): names are lower-cased and must
be HTTP tokens; values are trimmed and may not contain CR/LF/NUL; `get()` of a missing name is
`null`; iteration yields `[name, value]` pairs sorted by name, repeated names combined by ", "
except `set-cookie`, which `getSetCookie()` returns one by one. The init may be a Headers, a plain
object, a Map or any iterable of 2-item sequences (a proxied Python list of tuples or
`dict.items()` works; a proxied Python dict does not: it iterates its keys). Headers of an
incoming request are immutable ("Can't modify immutable headers.").
"""

from __future__ import annotations

import re
from typing import Any

from .errors import type_error
from .proxy import jsnull
from .values import (
    JsArray,
    JsIterator,
    JsMap,
    JsObject,
    JsProxy,
    PyProxy,
    js_method,
    js_to_string,
    py2js,
)

TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HTTP_WS = " \t\r\n"


class Headers(JsProxy):
    js_class = "Headers"

    def __init__(self, init: Any = None, *, immutable: bool = False) -> None:
        self._list: list[tuple[str, str]] = []
        self._immutable = False
        if init is not None:
            self._fill(init)
        self._immutable = immutable

    def _fill(self, init: Any) -> None:
        if isinstance(init, Headers):
            self._list.extend(init._list)
            return
        if type(init) is JsObject:
            for name, value in init._props.items():
                self.append(name, value)
            return
        if isinstance(init, JsMap):  # JS iterates a Map as [key, value] entries
            for name, value in init._data.items():
                self.append(name, value)
            return
        source = init._check() if isinstance(init, PyProxy) else init
        if isinstance(source, str | bytes) or not hasattr(source, "__iter__"):
            raise type_error(
                "Failed to construct 'Headers': The provided value is not of type "
                "'(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'."
            )
        for entry in source:
            if isinstance(entry, PyProxy):
                entry = entry._check()
            if isinstance(entry, str | bytes) or not hasattr(entry, "__iter__"):
                raise type_error(
                    "Failed to construct 'Headers': a header entry is not a "
                    "sequence of two strings (was a Python dict passed?)"
                )
            pair = list(entry)
            if len(pair) != 2:
                raise type_error(
                    "Failed to construct 'Headers': a header entry must have exactly two items."
                )
            self.append(py2js(pair[0]), py2js(pair[1]))

    @staticmethod
    def _name(name: Any) -> str:
        text = js_to_string(name)
        if not TOKEN.match(text):
            raise type_error(f"Invalid header name: {text!r}")
        return text.lower()

    @staticmethod
    def _value(value: Any) -> str:
        text = js_to_string(value).strip(_HTTP_WS)
        if any(ch in text for ch in "\r\n\0") or any(ord(ch) > 0xFF for ch in text):
            raise type_error(f"Invalid header value: {text!r}")
        return text

    def _check_mutable(self) -> None:
        if self._immutable:
            raise type_error("Can't modify immutable headers.")

    @js_method
    def append(self, name: Any = None, value: Any = None) -> None:
        self._check_mutable()
        self._list.append((self._name(name), self._value(value)))

    @js_method
    def set(self, name: Any = None, value: Any = None) -> None:
        self._check_mutable()
        key = self._name(name)
        self._list = [(k, v) for k, v in self._list if k != key]
        self._list.append((key, self._value(value)))

    @js_method
    def get(self, name: Any = None) -> Any:
        key = self._name(name)
        values = [v for k, v in self._list if k == key]
        return ", ".join(values) if values else jsnull

    @js_method
    def has(self, name: Any = None) -> bool:
        key = self._name(name)
        return any(k == key for k, _ in self._list)

    @js_method
    def delete(self, name: Any = None) -> None:
        self._check_mutable()
        key = self._name(name)
        self._list = [(k, v) for k, v in self._list if k != key]

    def getSetCookie(self) -> JsArray:
        return JsArray([v for k, v in self._list if k == "set-cookie"])

    def getAll(self, name: Any) -> JsArray:
        if self._name(name) != "set-cookie":
            raise type_error('getAll() can only be used with the header name "Set-Cookie".')
        return self.getSetCookie()

    def _sorted_pairs(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name in sorted({k for k, _ in self._list}):
            values = [v for k, v in self._list if k == name]
            if name == "set-cookie":
                out.extend((name, v) for v in values)
            else:
                out.append((name, ", ".join(values)))
        return out

    def entries(self) -> JsIterator:
        return JsIterator(JsArray([k, v]) for k, v in self._sorted_pairs())

    def keys(self) -> JsIterator:
        return JsIterator(k for k, _ in self._sorted_pairs())

    def values(self) -> JsIterator:
        return JsIterator(v for _, v in self._sorted_pairs())

    def __iter__(self) -> JsIterator:
        return self.entries()

    def __repr__(self) -> str:
        return f"Headers({self._sorted_pairs()!r})"
