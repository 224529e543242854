"""`pyodide.http`: `FetchResponse`, `pyfetch` and their errors, over the fake `js.fetch`.

Contract (Pyodide 0.28, https://pyodide.org/en/stable/usage/api/python-api/http.html):
- `pyfetch(url, /, *, signal=None, fetcher=None, **kwargs)` calls `fetcher or js.fetch` with
  `(url, to_js(kwargs, dict_converter=Object.fromEntries))`, adding an AbortController's signal
  to the options, and wraps the JS Response in `FetchResponse(url, js_response, controller,
  signal)`; a JS error becomes `AbortError` (an `OSError`).
- `FetchResponse`: `body_used`, `headers` (dict), `ok`, `redirected`, `status`, `status_text`,
  `type`, `url`, `raise_for_status()` (-> `HttpStatusError`), `clone()`, async `buffer()`,
  `text()`, `string()`, `json(**kw)`, `memoryview()`, `bytes()`, `abort(reason)`; reading a used
  body raises `BodyUsedError`. The Workers SDK's `Response` subclasses this class.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import JsException
from .values import to_js


class HttpStatusError(OSError):
    def __init__(self, status: int, status_text: str, url: str) -> None:
        self.status = status
        self.status_text = status_text
        self.url = url
        kind = "Client" if 400 <= status < 500 else "Server" if 500 <= status < 600 else "Invalid"
        super().__init__(f"{status} {kind} Error: {status_text} for url: {url}")


class BodyUsedError(OSError):
    def __init__(self, *args: Any) -> None:
        super().__init__("Response body is already used")


class AbortError(OSError):
    def __init__(self, reason: Any) -> None:
        super().__init__(getattr(reason, "message", str(reason)))


class FetchResponse:
    def __init__(
        self,
        url: Any,
        js_response: Any,
        abort_controller: Any = None,
        abort_signal: Any = None,
    ) -> None:
        self._url = url
        self.js_response = js_response
        self.abort_controller = abort_controller
        self.abort_signal = abort_signal

    @property
    def body_used(self) -> bool:
        return self.js_response.bodyUsed

    @property
    def headers(self) -> dict[str, str]:
        from js import Object

        return Object.fromEntries(self.js_response.headers.entries()).to_py()

    @property
    def ok(self) -> bool:
        return self.js_response.ok

    @property
    def redirected(self) -> bool:
        return self.js_response.redirected

    @property
    def status(self) -> int:
        return self.js_response.status

    @property
    def status_text(self) -> str:
        return self.js_response.statusText

    @property
    def type(self) -> str:
        return self.js_response.type

    @property
    def url(self) -> str:
        return self.js_response.url

    def _raise_if_failed(self) -> None:
        signal = self.abort_signal
        if signal is not None and signal.aborted:
            raise AbortError(signal.reason)
        if self.js_response.bodyUsed:
            raise BodyUsedError

    def raise_for_status(self) -> None:
        if 400 <= self.status < 600:
            raise HttpStatusError(self.status, self.status_text, self.url)

    def clone(self) -> FetchResponse:
        if self.js_response.bodyUsed:
            raise BodyUsedError
        return FetchResponse(
            self._url, self.js_response.clone(), self.abort_controller, self.abort_signal
        )

    async def buffer(self) -> Any:
        self._raise_if_failed()
        return await self.js_response.arrayBuffer()

    async def text(self) -> str:
        self._raise_if_failed()
        return await self.js_response.text()

    async def string(self) -> str:
        return await self.text()

    async def json(self, **kwargs: Any) -> Any:
        self._raise_if_failed()
        return json.loads(await self.string(), **kwargs)

    async def memoryview(self) -> memoryview:
        self._raise_if_failed()
        return (await self.buffer()).to_memoryview()

    async def bytes(self) -> bytes:
        self._raise_if_failed()
        return (await self.buffer()).to_bytes()

    def abort(self, reason: Any = None) -> None:
        if self.abort_controller is None:
            raise ValueError("abort_controller is not set")
        self.abort_controller.abort(None if reason is None else JsException("AbortError", reason))


async def pyfetch(url: Any, /, *, signal: Any = None, fetcher: Any = None, **kwargs: Any) -> Any:
    import js

    controller = js.AbortController.new()
    signal = js.AbortSignal.any(to_js([signal, controller.signal])) if signal else controller.signal
    kwargs["signal"] = signal
    fetch = fetcher or js.fetch
    try:
        return FetchResponse(
            url,
            await fetch(url, to_js(kwargs, dict_converter=js.Object.fromEntries)),
            controller,
            signal,
        )
    except JsException as exc:
        raise AbortError(exc) from None


def open_url(url: str) -> Any:
    raise OSError("jsfake: open_url (synchronous XMLHttpRequest) is not available in Workers")
