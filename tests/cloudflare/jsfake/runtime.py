"""The Worker runtime around the handlers: env, ExecutionContext, ScheduledController, global
`fetch`, AbortController, the `cloudflare:workers` module and `_pyodide_entrypoint_helper`.

Contracts:
- Handlers (https://developers.cloudflare.com/workers/runtime-apis/handlers/fetch/ ,
  https://developers.cloudflare.com/workers/runtime-apis/handlers/scheduled/): `env` is a plain
  object of bindings and string vars/secrets; `ctx.waitUntil(promise)`,
  `ctx.passThroughOnException()`; the scheduled controller has `cron`, `scheduledTime` (ms since
  the epoch), `type` ("scheduled") and `noRetry()`.
- Incoming requests have immutable headers and a `cf` object
  (https://developers.cloudflare.com/workers/runtime-apis/request/).
- `ctx.waitUntil` accepts any thenable; Pyodide proxies a Python awaitable with a `then()`, and
  the SDK's `_pyodide_entrypoint_helper.patchWaitUntil(ctx)` makes Python coroutines work too
  (https://developers.cloudflare.com/workers/languages/python/basics).
- `fetch(input, init)` (https://developers.cloudflare.com/workers/runtime-apis/fetch/) builds a
  Request; here it is answered by the handler set with `set_fetch_handler`, never the network.
- `AbortController`/`AbortSignal` as in the DOM standard (https://dom.spec.whatwg.org/#aborting-ongoing-activities).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from .errors import JsException, type_error
from .jsglobals import Console, now_ms
from .promises import JsPromise
from .proxy import JsNull
from .values import (
    JsArray,
    JsObject,
    JsProxy,
    PyProxy,
    call_function,
    js_method,
    to_js,
)
from .web import Headers, Request, Response

# ---------------------------------------------------------------------------------------------
# waitUntil bookkeeping
# ---------------------------------------------------------------------------------------------


class WaitUntilQueue:
    """Everything handed to a `waitUntil`, kept so tests can `await queue.drain()`."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, value: Any) -> None:
        obj = value._obj if isinstance(value, PyProxy) and not value.destroyed else value
        if isinstance(obj, JsPromise | asyncio.Future):
            self.items.append(obj)
            return
        if not inspect.isawaitable(obj):
            raise type_error("waitUntil() expects a Promise (or a Python awaitable).")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.items.append(obj)  # started by drain()
            return
        self.items.append(asyncio.ensure_future(obj))

    async def drain(self, *, raise_errors: bool = True) -> list[Any]:
        """Await everything (including work queued while draining); return results/errors."""
        outcomes: list[Any] = []
        done = 0
        while done < len(self.items):
            item = self.items[done]
            done += 1
            try:
                outcomes.append(await item)
            except Exception as exc:
                outcomes.append(exc)
        if raise_errors:
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
        return outcomes

    def close(self) -> None:
        for item in self.items:
            if inspect.iscoroutine(item):
                item.close()
        self.items.clear()


# ---------------------------------------------------------------------------------------------
# Handler arguments
# ---------------------------------------------------------------------------------------------


class FakeExecutionContext(JsProxy):
    js_class = "ExecutionContext"

    def __init__(self, props: dict[str, Any] | None = None) -> None:
        self.props = to_js(props or {}, dict_converter=_from_entries)
        self.wait_until = WaitUntilQueue()
        self.passed_through = False
        self.patched = False

    @js_method
    def waitUntil(self, promise: Any = None) -> None:
        self.wait_until.add(promise)

    def passThroughOnException(self) -> None:
        self.passed_through = True

    async def drain(self, *, raise_errors: bool = True) -> list[Any]:
        return await self.wait_until.drain(raise_errors=raise_errors)


class FakeScheduledController(JsProxy):
    js_class = "ScheduledController"

    def __init__(self, cron: str, scheduled_time_ms: int | None = None) -> None:
        self.cron = cron
        self.scheduledTime = int(now_ms()) if scheduled_time_ms is None else scheduled_time_ms
        self.type = "scheduled"
        self.retry = True

    def noRetry(self) -> None:
        self.retry = False


def _from_entries(entries: Any) -> JsObject:
    from .values import object_from_entries

    return object_from_entries(entries)


def js_value(value: Any) -> Any:
    """Python data -> JS the way our code should build it (dicts become plain objects)."""
    return to_js(value, dict_converter=_from_entries)


def make_env(**bindings: Any) -> JsObject:
    """The `env` object: bindings (fake JS objects) and vars/secrets (str, or JSON-like data)."""
    return JsObject({name: js_value(value) for name, value in bindings.items()})


def make_request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: str | bytes | None = None,
    cf: dict[str, Any] | None = None,
) -> Request:
    """An incoming request as the runtime hands it to `fetch` (immutable headers, `cf`)."""
    from .buffers import Uint8Array

    init = JsObject({"method": method})
    if headers is not None:
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        init.headers = Headers(JsArray(JsArray(p) for p in pairs))
    if body is not None:
        init.body = body if isinstance(body, str) else Uint8Array(body)
    request = Request(url, init)
    request._headers._immutable = True
    request.cf = js_value(cf if cf is not None else {"colo": "LHR", "country": "GB"})
    return request


def make_controller(cron: str, scheduled_time_ms: int | None = None) -> FakeScheduledController:
    return FakeScheduledController(cron, scheduled_time_ms)


# ---------------------------------------------------------------------------------------------
# AbortController
# ---------------------------------------------------------------------------------------------


class AbortSignal(JsProxy):
    js_class = "AbortSignal"

    def __init__(self) -> None:
        self.aborted = False
        self.reason: Any = None
        self._listeners: list[Any] = []
        self.onabort: Any = None

    def _abort(self, reason: Any) -> None:
        if self.aborted:
            return
        self.aborted = True
        self.reason = (
            reason
            if reason is not None
            else JsException("AbortError", "The operation was aborted.")
        )
        event = JsObject({"type": "abort"})
        for listener in [self.onabort, *self._listeners]:
            if listener is not None and not isinstance(listener, JsNull):
                call_function(listener, event)

    @js_method
    def addEventListener(self, event_type: Any = None, listener: Any = None, *_: Any) -> None:
        if event_type == "abort":
            self._listeners.append(listener)

    @js_method
    def removeEventListener(self, event_type: Any = None, listener: Any = None, *_: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def throwIfAborted(self) -> None:
        if self.aborted:
            raise (
                self.reason
                if isinstance(self.reason, BaseException)
                else JsException("AbortError", str(self.reason))
            )


class AbortController(JsProxy):
    js_class = "AbortController"

    def __init__(self) -> None:
        self.signal = AbortSignal()

    @js_method
    def abort(self, reason: Any = None) -> None:
        self.signal._abort(reason)


def _signal_any(signals: Any = None) -> AbortSignal:
    combined = AbortSignal()
    source = signals._check() if isinstance(signals, PyProxy) else signals
    members = list(source or [])
    for signal in members:
        if isinstance(signal, AbortSignal):
            if signal.aborted:
                combined._abort(signal.reason)
            else:
                signal._listeners.append(
                    lambda _e, s=signal: combined._abort(s.reason)  # type: ignore[misc]
                )
    return combined


def _signal_abort(reason: Any = None) -> AbortSignal:
    signal = AbortSignal()
    signal._abort(reason)
    return signal


def _signal_timeout(ms: Any = None) -> AbortSignal:
    signal = AbortSignal()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return signal
    loop.call_later(
        float(ms or 0) / 1000,
        signal._abort,
        JsException("TimeoutError", "The operation was aborted due to timeout"),
    )
    return signal


def abort_signal_statics() -> dict[str, Any]:
    return {"any": _signal_any, "abort": _signal_abort, "timeout": _signal_timeout}


# ---------------------------------------------------------------------------------------------
# Global state: fetch, cloudflare:workers, JS modules
# ---------------------------------------------------------------------------------------------

FetchHandler = Callable[[Request], Any]


class CloudflareWorkersModule(JsProxy):
    """`import { env, waitUntil } from "cloudflare:workers"` (what `workers.env` reads)."""

    js_class = "Module"

    def __init__(self) -> None:
        self.env: Any = JsObject()
        self.wait_until = WaitUntilQueue()

    @js_method
    def waitUntil(self, promise: Any = None) -> None:
        self.wait_until.add(promise)


class RuntimeState:
    def __init__(self) -> None:
        self.fetch_handler: FetchHandler | None = None
        self.fetch_log: list[Request] = []
        self.console = Console()
        self.workers_module = CloudflareWorkersModule()
        self.sockets_module = JsObject({"connect": None})
        self.js_modules: dict[str, Any] = {}

    def close(self) -> None:
        self.workers_module.wait_until.close()


STATE = RuntimeState()


def reset_state() -> None:
    global STATE
    STATE.close()
    STATE = RuntimeState()


def set_fetch_handler(handler: FetchHandler | None) -> None:
    """Answer global `fetch()` calls: `handler(js_request)` returns a JS Response (or a
    `workers.Response`, or an awaitable of either)."""
    STATE.fetch_handler = handler


def set_worker_env(env: Any) -> None:
    """What `from workers import env` (the `cloudflare:workers` env) returns."""
    STATE.workers_module.env = env


def register_js_module(name: str, module: Any) -> None:
    """Make `import_from_javascript(name)` / `doAnImport(name)` find `module`."""
    STATE.js_modules[name] = module


def global_fetch(input: Any = None, init: Any = None) -> JsPromise:
    try:
        request = input if isinstance(input, Request) and init is None else Request(input, init)
    except JsException as exc:
        return JsPromise.reject(exc)
    STATE.fetch_log.append(request)
    signal = request.signal
    if isinstance(signal, AbortSignal) and signal.aborted:
        return JsPromise.reject(
            signal.reason
            if isinstance(signal.reason, BaseException)
            else JsException("AbortError", "The operation was aborted.")
        )
    handler = STATE.fetch_handler
    if handler is None:
        return JsPromise.reject(
            type_error(
                f"jsfake: fetch({request.url}) but no handler is installed "
                "(jsfake.set_fetch_handler)"
            )
        )

    async def answer() -> Response:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        result = getattr(result, "js_object", result)
        if not isinstance(result, Response):
            raise type_error("jsfake: the fetch handler must return a Response")
        result.url = request.url
        return result

    async def run() -> Response:
        # Fetch standard: aborting the request's signal rejects the pending fetch with the
        # signal's reason (AbortSignal.timeout: a TimeoutError DOMException).
        if not isinstance(signal, AbortSignal):
            return await answer()
        answering = asyncio.ensure_future(answer())
        aborted = asyncio.get_running_loop().create_future()
        signal._listeners.append(lambda _event: aborted.done() or aborted.set_result(None))
        await asyncio.wait({answering, aborted}, return_when=asyncio.FIRST_COMPLETED)
        if not answering.done():
            answering.cancel()
            reason = signal.reason
            raise (reason if isinstance(reason, BaseException) else JsException("AbortError", ""))
        aborted.cancel()
        return answering.result()

    return JsPromise(run())


def do_an_import(module_name: Any) -> JsPromise:
    name = str(module_name)
    if name == "cloudflare:workers":
        return JsPromise.resolve(STATE.workers_module)
    if name in STATE.js_modules:
        return JsPromise.resolve(STATE.js_modules[name])
    return JsPromise.reject(JsException("Error", f'No such module "{name}".'))


def patch_env_helper(kwds: Any) -> Iterator[None]:
    """`_pyodide_entrypoint_helper.patch_env_helper`: overlay env for the `with` block."""
    module = STATE.workers_module
    saved = module.env
    patched = JsObject(dict(saved._own_properties()) if isinstance(saved, JsProxy) else {})
    items = kwds._data.items() if hasattr(kwds, "_data") else []
    for key, value in items:
        patched._props[str(key)] = value
    module.env = patched
    try:
        yield
    finally:
        module.env = saved


def patch_wait_until(ctx: Any) -> None:
    """`_pyodide_entrypoint_helper.patchWaitUntil`: let ctx.waitUntil take Python awaitables.
    The fakes already accept them; record that the SDK asked."""
    if hasattr(ctx, "patched"):
        ctx.patched = True


async def drain_global_wait_until(*, raise_errors: bool = True) -> list[Any]:
    return await STATE.workers_module.wait_until.drain(raise_errors=raise_errors)
