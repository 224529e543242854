"""The Pyodide-only modules the SDK imports, built from the fakes, and their (un)installation.

- `js`: the JS global scope (https://pyodide.org/en/stable/usage/api/python-api.html#js); a name
  that is not faked raises, so `from js import Blob` fails loudly instead of returning a stub.
  Faked: Object, Array, Map, Set, Date, JSON, Error, TypeError, RangeError, SyntaxError,
  Uint8Array, ArrayBuffer, TextEncoder, TextDecoder, Response, Request, Headers, URL,
  URLSearchParams, ReadableStream (no underlying source), TransformStream, WebSocket,
  WebSocketPair, WebSocketRequestResponsePair, AbortController, AbortSignal, fetch, console,
  queueMicrotask. Not faked: Blob, File, FormData, caches, crypto, setTimeout.
- `pyodide` (`__version__` "0.28.2"), `pyodide.ffi`, `pyodide.http`.
- `_pyodide_entrypoint_helper` (workerd's helper: `cloudflareWorkersModule`,
  `cloudflareSocketsModule`, `doAnImport`, `patch_env_helper`, `patchWaitUntil`) and
  `_cloudflare_compat_flags` (unknown flags read as False, like the SDK's `get_compat_flag`).
- No threads while installed, as in Pyodide (see `threads`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from . import pyodide_http, runtime, sqlstore, threads
from .buffers import JsBuffer
from .errors import ConversionError, JsException
from .jsglobals import build_classes, queue_microtask, set_clock
from .promises import JsPromise, run_sync
from .proxy import JsNull, JsProxy, jsnull
from .sockets import WebSocketPair, WebSocketRequestResponsePair
from .streams import ReadableStream, TransformStream
from .values import (
    JsArray,
    JsClass,
    JsFunction,
    JsMap,
    PyProxy,
    create_once_callable,
    create_proxy,
    destroy_proxies,
    to_js,
)
from .web import URL, Headers, Request, Response, URLSearchParams, response_statics

PYODIDE_VERSION = "0.28.2"
FAKE_MODULES = ("js", "pyodide", "_pyodide_entrypoint_helper", "_cloudflare_compat_flags")
SDK_MODULES = ("workers", "asgi")


def _readable_stream(source: Any = None, *_rest: Any) -> ReadableStream:
    if source is not None:
        raise JsException(
            "NotSupportedError", "jsfake: ReadableStream with an underlying source is not faked"
        )
    return ReadableStream()


def _url(url: Any = None, base: Any = None) -> URL:
    return URL(url, base)


def _url_can_parse(url: Any = None, base: Any = None) -> bool:
    try:
        URL(url, base)
    except JsException:
        return False
    return True


def build_js_module() -> ModuleType:
    module = ModuleType("js", "jsfake: the JS global scope")
    for name, value in build_classes().items():
        setattr(module, name, value)
    module.Response = JsClass("Response", Response, response_statics())
    module.Request = JsClass("Request", Request)
    module.Headers = JsClass("Headers", lambda init=None, *_: Headers(init))
    module.URL = JsClass("URL", _url, {"canParse": _url_can_parse})
    module.URLSearchParams = JsClass("URLSearchParams", lambda init=None, *_: URLSearchParams(init))
    module.ReadableStream = JsClass("ReadableStream", _readable_stream)
    module.TransformStream = JsClass("TransformStream", lambda *_: TransformStream())
    module.WebSocket = JsClass("WebSocket", None)
    module.WebSocketPair = JsClass("WebSocketPair", lambda *_: WebSocketPair())
    module.WebSocketRequestResponsePair = JsClass(
        "WebSocketRequestResponsePair",
        lambda request=None, response=None, *_: WebSocketRequestResponsePair(request, response),
    )
    module.AbortController = JsClass("AbortController", lambda *_: runtime.AbortController())
    module.AbortSignal = JsClass("AbortSignal", None, runtime.abort_signal_statics())
    module.fetch = JsFunction(runtime.global_fetch, "fetch")
    module.console = runtime.STATE.console
    module.queueMicrotask = JsFunction(queue_microtask, "queueMicrotask")

    def __getattr__(name: str) -> Any:
        raise AttributeError(f"jsfake: js.{name} is not faked")

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


def build_ffi_module() -> ModuleType:
    module = ModuleType("pyodide.ffi", "jsfake: pyodide.ffi")
    exported: dict[str, Any] = {
        "IN_BROWSER": True,
        "JsProxy": JsProxy,
        "JsException": JsException,
        "JsBuffer": JsBuffer,
        "JsArray": JsArray,
        "JsMap": JsMap,
        "JsMutableMap": JsMap,
        "JsPromise": JsPromise,
        "JsCallable": JsFunction,
        "JsDoubleProxy": PyProxy,
        "JsFetchResponse": Response,
        "JsNull": JsNull,
        "jsnull": jsnull,
        "ConversionError": ConversionError,
        "to_js": to_js,
        "create_proxy": create_proxy,
        "create_once_callable": create_once_callable,
        "destroy_proxies": destroy_proxies,
        "run_sync": run_sync,
        "register_js_module": runtime.register_js_module,
        "unregister_js_module": lambda name: runtime.STATE.js_modules.pop(name, None),
    }
    for name, value in exported.items():
        setattr(module, name, value)
    module.__all__ = list(exported)  # type: ignore[attr-defined]
    return module


def build_http_module() -> ModuleType:
    module = ModuleType("pyodide.http", "jsfake: pyodide.http")
    for name in (
        "FetchResponse",
        "pyfetch",
        "open_url",
        "HttpStatusError",
        "BodyUsedError",
        "AbortError",
    ):
        setattr(module, name, getattr(pyodide_http, name))
    return module


def build_entrypoint_helper() -> ModuleType:
    module = ModuleType("_pyodide_entrypoint_helper", "jsfake: workerd's entrypoint helper")
    module.cloudflareWorkersModule = runtime.STATE.workers_module  # type: ignore[attr-defined]
    module.cloudflareSocketsModule = runtime.STATE.sockets_module  # type: ignore[attr-defined]
    module.doAnImport = runtime.do_an_import  # type: ignore[attr-defined]
    module.patch_env_helper = runtime.patch_env_helper  # type: ignore[attr-defined]
    module.patchWaitUntil = runtime.patch_wait_until  # type: ignore[attr-defined]
    return module


def build_compat_flags(flags: dict[str, bool]) -> ModuleType:
    module = ModuleType("_cloudflare_compat_flags", "jsfake: compatibility flags")
    values = {
        "python_workflows_implicit_dependencies": False,
        "python_request_headers_preserve_commas": False,
        **flags,
    }
    for name, value in values.items():
        setattr(module, name, value)

    def __getattr__(name: str) -> bool:
        if name.startswith("__"):
            raise AttributeError(name)
        return False

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


def _owned(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def uninstall(*, also_remove: Iterable[str] = ()) -> None:
    """Remove the fake modules, the SDK (`workers`, `asgi`) and any `also_remove` packages
    (modules imported against the fake, e.g. `entry`) from `sys.modules`."""
    prefixes = (*FAKE_MODULES, *SDK_MODULES, *also_remove)
    for name in [n for n in sys.modules if _owned(n, prefixes)]:
        del sys.modules[name]
    runtime.reset_state()
    sqlstore.close_all()
    set_clock(None)
    threads.restore()


def install(*, compat_flags: dict[str, bool] | None = None) -> ModuleType:
    """Register the fake JS layer in `sys.modules`; `import workers` / `import asgi` then load the
    real SDK on top of it. Returns the fake `js` module."""
    uninstall()
    threads.disable()
    js_module = build_js_module()
    pyodide = ModuleType("pyodide", "jsfake: pyodide")
    pyodide.__path__ = []  # type: ignore[attr-defined]
    pyodide.__version__ = PYODIDE_VERSION  # type: ignore[attr-defined]
    ffi = build_ffi_module()
    http = build_http_module()
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    pyodide.http = http  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "js": js_module,
            "pyodide": pyodide,
            "pyodide.ffi": ffi,
            "pyodide.http": http,
            "_pyodide_entrypoint_helper": build_entrypoint_helper(),
            "_cloudflare_compat_flags": build_compat_flags(compat_flags or {}),
        }
    )
    return js_module


__all__ = ["PYODIDE_VERSION", "install", "uninstall"]
