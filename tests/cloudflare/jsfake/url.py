"""`URL` and `URLSearchParams`.

Contract: WHATWG URL Standard (https://url.spec.whatwg.org/), as workerd implements it
(https://developers.cloudflare.com/workers/runtime-apis/url/): relative or scheme-less input
throws `TypeError("Invalid URL string.")`; special schemes get a lower-cased host, their default
port dropped, `/` as the empty path, dot segments resolved and spaces etc. percent-encoded;
`search` is "" or "?..." and `hash` is "" or "#...". This is an approximation built on
`urllib.parse`, exact for ordinary http(s) URLs.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

from .errors import type_error
from .proxy import jsnull
from .values import JsArray, JsIterator, JsProxy, js_method, js_to_string

_SPECIAL_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21", "file": ""}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~[]|^"
_QUERY_SAFE = "/%:@!$&'()*+,;=-._~?[]|^`{}\\"
_FRAGMENT_SAFE = "/%:@!$&'()*+,;=-._~?#[]|^{}\\"


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", "%2e", "%2E"):
            if last:
                out.append("")
            continue
        if segment in ("..", ".%2e", "%2e.", "%2e%2e", ".%2E", "%2E.", "%2E%2E"):
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


class URLSearchParams(JsProxy):
    js_class = "URLSearchParams"

    def __init__(self, init: Any = None, *, url: URL | None = None) -> None:
        self._url = url
        text = "" if init is None else js_to_string(init)
        self._pairs = parse_qsl(text.removeprefix("?"), keep_blank_values=True)

    def _update(self) -> None:
        if self._url is not None:
            query = self.toString()
            self._url._search = f"?{query}" if query else ""

    @js_method
    def get(self, name: Any = None) -> Any:
        for k, v in self._pairs:
            if k == name:
                return v
        return jsnull

    @js_method
    def getAll(self, name: Any = None) -> JsArray:
        return JsArray([v for k, v in self._pairs if k == name])

    @js_method
    def has(self, name: Any = None) -> bool:
        return any(k == name for k, _ in self._pairs)

    @js_method
    def set(self, name: Any = None, value: Any = None) -> None:
        self._pairs = [(k, v) for k, v in self._pairs if k != name]
        self._pairs.append((js_to_string(name), js_to_string(value)))
        self._update()

    @js_method
    def append(self, name: Any = None, value: Any = None) -> None:
        self._pairs.append((js_to_string(name), js_to_string(value)))
        self._update()

    @js_method
    def delete(self, name: Any = None) -> None:
        self._pairs = [(k, v) for k, v in self._pairs if k != name]
        self._update()

    def entries(self) -> JsIterator:
        return JsIterator(JsArray([k, v]) for k, v in self._pairs)

    def __iter__(self) -> JsIterator:
        return self.entries()

    def toString(self) -> str:
        return urlencode(self._pairs, quote_via=quote, safe="*-._")


class URL(JsProxy):
    js_class = "URL"

    def __init__(self, url: Any, base: Any = None) -> None:
        text = js_to_string(url).strip(" \t\n\r\f\v")
        if base is not None:
            text = urljoin(str(URL(base)), text)
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise type_error("Invalid URL string.") from None
        scheme = parts.scheme.lower()
        if not scheme or not re.match(r"^[a-z][a-z0-9+.\-]*$", scheme):
            raise type_error("Invalid URL string.")
        special = scheme in _SPECIAL_PORTS
        if special and scheme != "file" and not parts.hostname:
            raise type_error("Invalid URL string.")
        self._protocol = scheme + ":"
        self._username = parts.username or ""
        self._password = parts.password or ""
        self._hostname = (parts.hostname or "").lower()
        self._port = "" if port is None or str(port) == _SPECIAL_PORTS.get(scheme) else str(port)
        path = parts.path.replace("\\", "/") if special else parts.path
        path = quote(path, safe=_PATH_SAFE)
        self._pathname = _remove_dot_segments(path) if special else path
        self._search = f"?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else ""
        fragment = quote(parts.fragment, safe=_FRAGMENT_SAFE)
        self._hash = f"#{fragment}" if fragment else ""
        self._special = special

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    @property
    def hostname(self) -> str:
        return self._hostname

    @property
    def port(self) -> str:
        return self._port

    @property
    def host(self) -> str:
        return f"{self._hostname}:{self._port}" if self._port else self._hostname

    @property
    def origin(self) -> str:
        if self._special and self._protocol != "file:":
            return f"{self._protocol}//{self.host}"
        return "null"

    @property
    def pathname(self) -> str:
        return self._pathname

    @property
    def search(self) -> str:
        return self._search

    @property
    def hash(self) -> str:
        return self._hash

    @property
    def searchParams(self) -> URLSearchParams:
        return URLSearchParams(self._search, url=self)

    @property
    def href(self) -> str:
        auth = ""
        if self._username or self._password:
            auth = self._username + (f":{self._password}" if self._password else "") + "@"
        authority = f"//{auth}{self.host}" if self._special or self.host else ""
        return f"{self._protocol}{authority}{self._pathname}{self._search}{self._hash}"

    def toString(self) -> str:
        return self.href

    def toJSON(self) -> str:
        return self.href
