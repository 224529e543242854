"""A fake of the JS layer under the Python Workers SDK (Pyodide 0.28 + workerd), for tests.

`install()` registers `js`, `pyodide`, `pyodide.ffi`, `pyodide.http`, `_pyodide_entrypoint_helper`
and `_cloudflare_compat_flags` in `sys.modules`; the real `workers-runtime-sdk` (`import workers`,
`import asgi`) then runs on top of fakes built to the documented shapes, so a wrong class name,
signature or conversion in our code fails in tests. `uninstall()` removes them again (with the
SDK, which holds references to them).

Each module documents the contract it follows, with links:
- `proxy`, `values`: Pyodide JsProxy / PyProxy, implicit conversions, `to_js` / `to_py`;
- `errors`, `buffers`, `promises`: JsException, ArrayBuffer / Uint8Array, JsPromise;
- `jsglobals`: ECMAScript globals (Object, Array, Date, JSON, console...);
- `clone`: structured clone and its Workers RPC extensions;
- `streams`, `headers`, `url`, `web`: the Fetch API (Request, Response, ...);
- `sockets`: WebSocket, WebSocketPair, WebSocketRequestResponsePair;
- `d1`, `storage`, `durable`, `sqlstore`: D1, Durable Object storage, state, namespaces, stubs;
- `runtime`: env, ExecutionContext, ScheduledController, global fetch, `cloudflare:workers`;
- `pyodide_http`, `modules`: `pyodide.http` and the module objects put in `sys.modules`.

Typical use (see tests/cloudflare/conftest.py for the `jsfake` fixture):

    env = jsfake.make_env(DB=jsfake.FakeD1Database(), ENVIRONMENT="test")
    ctx = jsfake.FakeExecutionContext()
    request = jsfake.make_request("https://api.example/v1/health", headers={"x": "1"})
"""

from collections.abc import Iterable
from types import ModuleType

from . import modules as _modules
from .buffers import ArrayBuffer, Uint8Array
from .clone import structured_clone
from .d1 import FakeD1Database, FakeD1PreparedStatement
from .durable import (
    DurableObjectStub,
    FakeDurableObjectId,
    FakeDurableObjectNamespace,
    FakeDurableObjectState,
    StubCall,
)
from .errors import ConversionError, JsException
from .jsglobals import JsDate, set_clock
from .modules import PYODIDE_VERSION
from .promises import JsPromise
from .proxy import JsNull, JsProxy, jsnull
from .runtime import (
    AbortController,
    AbortSignal,
    CloudflareWorkersModule,
    FakeExecutionContext,
    FakeScheduledController,
    WaitUntilQueue,
    drain_global_wait_until,
    js_value,
    make_controller,
    make_env,
    make_request,
    register_js_module,
    set_fetch_handler,
    set_worker_env,
)
from .sockets import WebSocket, WebSocketPair, WebSocketRequestResponsePair
from .sockets import WebSocket as FakeWebSocket
from .storage import FakeDurableObjectStorage, SqlStorage, SqlStorageCursor
from .streams import ReadableStream, TransformStream
from .values import (
    JsArray,
    JsFunction,
    JsMap,
    JsObject,
    JsSet,
    PyProxy,
    create_proxy,
    to_js,
)
from .web import URL, Headers, Request, Response, read_body_bytes


def install(*, compat_flags: dict[str, bool] | None = None) -> ModuleType:
    """Register the fake `js`, `pyodide`, `pyodide.ffi`, `pyodide.http`,
    `_pyodide_entrypoint_helper` and `_cloudflare_compat_flags` modules in `sys.modules` (after
    a clean `uninstall()`), so that `import workers` / `import asgi` load the real SDK on top of
    them. `compat_flags` sets `_cloudflare_compat_flags` values (unknown flags read False).
    Returns the fake `js` module."""
    return _modules.install(compat_flags=compat_flags)


def uninstall(*, also_remove: Iterable[str] = ()) -> None:
    """Remove the fake modules, `workers*`, `asgi` and the packages named in `also_remove`
    (modules imported against the fake) from `sys.modules`; reset the fake's global state
    (fetch handler, console, cloudflare:workers env, clock) and close its sqlite connections."""
    _modules.uninstall(also_remove=also_remove)


def fetch_log() -> list[Request]:
    """Every request made through the global `fetch` since `install()`."""
    from . import runtime

    return runtime.STATE.fetch_log


def console_messages() -> list[tuple[str, str]]:
    """Every `console.*` call since `install()`, as (level, message)."""
    from . import runtime

    return runtime.STATE.console.messages


def workers_module() -> CloudflareWorkersModule:
    """The fake `cloudflare:workers` module (`env`, `waitUntil`)."""
    from . import runtime

    return runtime.STATE.workers_module


__all__ = [
    "PYODIDE_VERSION",
    "URL",
    "AbortController",
    "AbortSignal",
    "ArrayBuffer",
    "CloudflareWorkersModule",
    "ConversionError",
    "DurableObjectStub",
    "FakeD1Database",
    "FakeD1PreparedStatement",
    "FakeDurableObjectId",
    "FakeDurableObjectNamespace",
    "FakeDurableObjectState",
    "FakeDurableObjectStorage",
    "FakeExecutionContext",
    "FakeScheduledController",
    "FakeWebSocket",
    "Headers",
    "JsArray",
    "JsDate",
    "JsException",
    "JsFunction",
    "JsMap",
    "JsNull",
    "JsObject",
    "JsPromise",
    "JsProxy",
    "JsSet",
    "PyProxy",
    "ReadableStream",
    "Request",
    "Response",
    "SqlStorage",
    "SqlStorageCursor",
    "StubCall",
    "TransformStream",
    "Uint8Array",
    "WaitUntilQueue",
    "WebSocket",
    "WebSocketPair",
    "WebSocketRequestResponsePair",
    "console_messages",
    "create_proxy",
    "drain_global_wait_until",
    "fetch_log",
    "install",
    "js_value",
    "jsnull",
    "make_controller",
    "make_env",
    "make_request",
    "read_body_bytes",
    "register_js_module",
    "set_clock",
    "set_fetch_handler",
    "set_worker_env",
    "structured_clone",
    "to_js",
    "uninstall",
    "workers_module",
]
