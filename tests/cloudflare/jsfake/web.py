"""Fetch API bodies, `Request` and `Response` (Headers: `headers.py`, URL: `url.py`).

Contracts: WHATWG Fetch (https://fetch.spec.whatwg.org/) as implemented by workerd
(https://developers.cloudflare.com/workers/runtime-apis/request/ ,
https://developers.cloudflare.com/workers/runtime-apis/response/):
- A string body sets `content-type: text/plain;charset=UTF-8`; buffer bodies are copied when the
  Request/Response is constructed; `body` is a ReadableStream or `null` (`jsnull`); a body can be
  read once (`bodyUsed`), a second read is a TypeError.
- Response status must be 200-599 (101 only with a `webSocket`); a null-body status (101, 204,
  205, 304) with a body is a TypeError; `Response.redirect` takes 301/302/303/307/308;
  `Response.json(value, init)` sets `content-type: application/json`.
- Request URLs must be absolute; standard methods are upper-cased; GET/HEAD cannot have a body.
  Request properties workerd does not implement (mode, credentials, referrer...) are absent.
- Pyodide passes keyword arguments as the trailing init object: `Response.new(b, status=201)`.
- Strictness beyond the runtime: where workerd would silently turn a proxied Python object into a
  string ("b'...'", "{'a': 1}", "[object Object]"), this fake raises a TypeError naming the
  mistake.
"""

from __future__ import annotations

import json
from typing import Any

from .buffers import ArrayBuffer, Uint8Array, buffer_bytes
from .errors import JsException, range_error, type_error
from .headers import TOKEN, Headers
from .jsglobals import from_json_value, json_stringify
from .promises import JsPromise
from .proxy import JsNull, jsnull
from .streams import ReadableStream
from .url import URL, URLSearchParams
from .values import JsObject, JsProxy, PyProxy, js2py, js_to_string


def _init_get(init: Any, key: str) -> Any:
    """Read an option of a JS init dictionary (`undefined` when missing)."""
    if init is None or isinstance(init, JsNull):
        return None
    if isinstance(init, PyProxy):
        raise type_error(
            f"jsfake: the init argument is a Python {init.type}; pass keyword arguments or a JS "
            "object (to_js(..., dict_converter=Object.fromEntries))"
        )
    if not isinstance(init, JsProxy):
        raise type_error("The init argument must be an object.")
    return getattr(init, key, None)


# ---------------------------------------------------------------------------------------------
# Bodies
# ---------------------------------------------------------------------------------------------


def extract_body(body: Any) -> tuple[ReadableStream | JsNull, str | None, bytes | None]:
    """(stream, default content-type, bytes when known) for a BodyInit value."""
    if body is None or isinstance(body, JsNull):
        return jsnull, None, None
    if isinstance(body, str):
        data = body.encode()
        return ReadableStream.of_bytes(data), "text/plain;charset=UTF-8", data
    data = buffer_bytes(body)
    if data is not None:
        return ReadableStream.of_bytes(data), None, data
    if isinstance(body, ReadableStream):
        return body, None, None
    if isinstance(body, URLSearchParams):
        data = body.toString().encode()
        return (
            ReadableStream.of_bytes(data),
            "application/x-www-form-urlencoded;charset=UTF-8",
            data,
        )
    if isinstance(body, PyProxy):
        raise type_error(
            f"jsfake: the body is a Python {body.type} (PyProxy), not a JS BodyInit; workerd would "
            "send its str(). Pass str, a JS buffer (create_proxy(b).getBuffer().data) or a stream"
        )
    if isinstance(body, int | float | bool):
        data = js_to_string(body).encode()
        return ReadableStream.of_bytes(data), "text/plain;charset=UTF-8", data
    kind = getattr(body, "js_class", type(body).__name__)
    raise type_error(
        f"jsfake: a {kind} is not a body (workerd would send its toString(), e.g. "
        "'[object Object]'; did keyword arguments land in the body position?)"
    )


class _Body(JsProxy):
    """Body mixin shared by Request and Response."""

    _body: ReadableStream | JsNull = jsnull
    _body_bytes: bytes | None = None

    @property
    def body(self) -> ReadableStream | JsNull:
        return self._body

    @property
    def bodyUsed(self) -> bool:
        return isinstance(self._body, ReadableStream) and self._body._disturbed

    async def _consume(self) -> bytes:
        if isinstance(self._body, JsNull):
            return b""
        if self._body._disturbed or self._body.locked:
            raise type_error(
                "Body has already been used. It can only be used once. Use tee() "
                "first if you need to read it twice."
            )
        return await self._body._read_all()

    def text(self) -> JsPromise:
        async def read() -> str:
            return (await self._consume()).decode("utf-8", errors="replace")

        return JsPromise(read())

    def arrayBuffer(self) -> JsPromise:
        async def read() -> ArrayBuffer:
            return ArrayBuffer(await self._consume())

        return JsPromise(read())

    def bytes(self) -> JsPromise:
        async def read() -> Uint8Array:
            return Uint8Array(await self._consume())

        return JsPromise(read())

    def json(self) -> JsPromise:
        async def read() -> Any:
            text = (await self._consume()).decode("utf-8", errors="replace")
            try:
                return from_json_value(json.loads(text))
            except json.JSONDecodeError as exc:
                raise JsException("SyntaxError", f"Unexpected token in JSON: {exc.msg}") from None

        return JsPromise(read())

    def formData(self) -> JsPromise:
        return JsPromise.reject(
            JsException("NotSupportedError", "jsfake: formData() is not implemented")
        )

    def _clone_body(self) -> ReadableStream | JsNull:
        if isinstance(self._body, JsNull):
            return jsnull
        if self.bodyUsed:
            raise type_error("Body has already been used. It can only be used once.")
        data = self._body._buffered_copy()
        if data is None:
            raise JsException("NotSupportedError", "jsfake: cannot clone a streaming body")
        return ReadableStream.of_bytes(data)


# ---------------------------------------------------------------------------------------------
# Request
# ---------------------------------------------------------------------------------------------

_NORMALIZED_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"}


class Request(_Body):
    js_class = "Request"

    def __init__(self, input: Any = None, init: Any = None) -> None:
        source = input if isinstance(input, Request) else None
        if source is None:
            if isinstance(input, URL):
                input = input.href
            if not isinstance(input, str):
                raise type_error(
                    "jsfake: Request input must be a URL string, a URL or a Request (got "
                    f"{type(input).__name__})"
                )
            self.url = URL(input).href
        else:
            self.url = source.url

        method = _init_get(init, "method")
        if method is None:
            method = source.method if source else "GET"
        method = js_to_string(method)
        if not TOKEN.match(method):
            raise type_error(f"Invalid HTTP method string: {method}")
        self.method = method.upper() if method.upper() in _NORMALIZED_METHODS else method

        headers_init = _init_get(init, "headers")
        if headers_init is not None:
            self._headers = Headers(headers_init)
        else:
            self._headers = Headers(source._headers if source else None)

        body = _init_get(init, "body")
        if body is not None and not isinstance(body, JsNull):
            if self.method in ("GET", "HEAD"):
                raise type_error("Request with a GET or HEAD method cannot have a body.")
            self._body, content_type, self._body_bytes = extract_body(body)
            if content_type and not self._headers.has("content-type"):
                self._headers._list.append(("content-type", content_type))
        elif source is not None:
            self._body = source._body
            if isinstance(source._body, ReadableStream):
                source._body._disturbed = True  # the body moves to the new request
        else:
            self._body = jsnull

        self.redirect = _init_get(init, "redirect") or (source.redirect if source else "follow")
        self.signal = _init_get(init, "signal")
        cf = _init_get(init, "cf")
        self.cf = cf if cf is not None else (source.cf if source else None)
        self.integrity = ""
        self.keepalive = False

    @property
    def headers(self) -> Headers:
        return self._headers

    def clone(self) -> Request:
        copy = Request(self.url, JsObject({"method": self.method, "headers": self._headers}))
        copy._body = self._clone_body()
        copy.cf = self.cf
        return copy

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


# ---------------------------------------------------------------------------------------------
# Response
# ---------------------------------------------------------------------------------------------

NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class Response(_Body):
    js_class = "Response"

    def __init__(self, body: Any = None, init: Any = None) -> None:
        status = _init_get(init, "status")
        status = 200 if status is None else js2py(status)
        if not isinstance(status, int) or isinstance(status, bool):
            raise type_error(f"Response status must be an integer, got {status!r}")
        web_socket = _init_get(init, "webSocket")
        if isinstance(web_socket, JsNull):
            web_socket = None
        if web_socket is not None and getattr(web_socket, "js_class", None) != "WebSocket":
            raise type_error("Response webSocket must be a WebSocket (the client end of a pair).")
        if web_socket is not None and status != 101:
            raise range_error("Responses with a WebSocket must have status code 101.")
        if not (200 <= status <= 599 or (status == 101 and web_socket is not None)):
            raise range_error(
                "Responses may only be constructed with status codes in the range 200 to 599, "
                f"inclusive. (got {status})"
            )
        self.status = status
        self.statusText = js_to_string(_init_get(init, "statusText") or "")
        headers_init = _init_get(init, "headers")
        self._headers = Headers(headers_init) if headers_init is not None else Headers()
        self._body, content_type, self._body_bytes = extract_body(body)
        if not isinstance(self._body, JsNull) and status in NULL_BODY_STATUSES:
            raise type_error(f"Response with null body status ({status}) cannot have a body.")
        if content_type and not self._headers.has("content-type"):
            self._headers._list.append(("content-type", content_type))
        self.webSocket = web_socket if web_socket is not None else jsnull
        self.encodeBody = _init_get(init, "encodeBody") or "automatic"
        self.cf = _init_get(init, "cf")
        self.url = ""
        self.redirected = False
        self.type = "default"

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def clone(self) -> Response:
        copy = Response(
            None,
            JsObject(
                {"status": self.status, "statusText": self.statusText, "headers": self._headers}
            ),
        )
        copy._body = self._clone_body()
        copy.url = self.url
        return copy

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


def _response_json(data: Any = None, init: Any = None) -> Response:
    text = json_stringify(data)
    if text is None:
        raise type_error("Response.json: the value cannot be serialized to JSON")
    response = Response(text, init)
    response._headers._list = [(k, v) for k, v in response._headers._list if k != "content-type"]
    headers_init = _init_get(init, "headers")
    explicit = Headers(headers_init) if headers_init is not None else Headers()
    response._headers._list.append(
        ("content-type", explicit.get("content-type") or "application/json")
    )
    return response


def _response_redirect(url: Any = None, status: Any = 302) -> Response:
    status = js2py(status)
    if status not in REDIRECT_STATUSES:
        raise range_error(f"Invalid redirect status: {status}")
    response = Response(None, JsObject({"status": status}))
    response._headers._list.append(("location", URL(url).href))
    return response


def _response_error() -> Response:
    response = Response(None)
    response.status = 0
    response.type = "error"
    return response


def response_statics() -> dict[str, Any]:
    return {"json": _response_json, "redirect": _response_redirect, "error": _response_error}


def read_body_bytes(message: Request | Response) -> bytes | None:
    """The body bytes if the body was built from bytes/str and not read yet (test helper)."""
    if isinstance(message._body, ReadableStream):
        return message._body._buffered_copy()
    return b"" if isinstance(message._body, JsNull) else None


__all__ = [
    "URL",
    "Headers",
    "Request",
    "Response",
    "URLSearchParams",
    "extract_body",
    "read_body_bytes",
    "response_statics",
]
