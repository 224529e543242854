"""The requests for deployed Workers: pick the version, forward to workerd, record it.

A request reaches a Worker by its Host (`routing.script_of_host`), or, from a dispatcher
Worker's dispatch-namespace binding, by `x-apiary-dispatch: {namespace}/{script}` with the
runner's dispatch token. The version comes from the current deployment's percentages (per
request) or the version-override header. The request gets a `cf-ray` id (also on the answer),
and is recorded in the invocation log as soon as its answer is written, before this task
yields: a client that has its answer and then asks GraphQL finds it counted.

Limits: an invocation that has not answered within its version's `limits.cpu_ms` (default
30 s) of wall time, or the `cpuMs` a dispatcher set (`get(name, {}, {limits})`, sent by the
wrapper as `x-apiary-dispatch-limits` with `subRequests`, which the wrapper enforces), ends as
`exceededResources` with Cloudflare's error 1102 (HTTP 503); the
clock is the wall clock because workerd gives its host no CPU time. If workerd is then stuck
(a Worker that loops never yields its isolate, and workerd runs every isolate on one thread)
the runner is restarted. A Worker that throws answers error 1101 (HTTP 500) and is recorded
as `scriptThrewException`; to a dispatcher, the exception is thrown from its `fetch()`.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from apiary_local import local_guard
from apiary_local.account import routing
from apiary_local.account.invocations import (
    EXCEEDED,
    INTERNAL,
    SUCCESS,
    THREW,
    Invocation,
    InvocationLog,
)
from apiary_local.account.service import AccountService, Route
from apiary_local.account.store import ACCOUNT
from apiary_local.account.upstream import Upstream, UpstreamError, UpstreamResponse
from logs import get_logger

log = get_logger("account.router")
DISPATCH_HEADER = b"x-apiary-dispatch"
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"trailer",
        b"proxy-authorization", b"proxy-authenticate", b"host", b"content-length",
    }
)  # fmt: skip
PING_TIMEOUT_S = 1.0
WORKER_BODY_LIMIT = 100 * 1024 * 1024  # Cloudflare's request body limit (Free and Pro)


@dataclass(frozen=True, slots=True)
class DispatchLimits:
    cpu_ms: int | None = None
    subrequests: int | None = None


def dispatch_limits(raw: str | None) -> DispatchLimits:
    """A dispatcher's `{cpuMs, subRequests}` (anything unreadable sets no limit)."""
    try:
        limits = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return DispatchLimits()
    if not isinstance(limits, dict):
        return DispatchLimits()
    cpu, sub = limits.get("cpuMs"), limits.get("subRequests")
    return DispatchLimits(
        cpu if type(cpu) is int and cpu > 0 else None,
        sub if type(sub) is int and sub >= 0 else None,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _text(status: int, text: str, **extra: str) -> Answer:
    headers = [(b"content-type", b"text/plain; charset=UTF-8")]
    headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()]
    return Answer(status, headers, text.encode())


def new_ray() -> str:
    return f"{secrets.token_hex(8)}-LOCAL"


class WorkerRouter:
    def __init__(
        self,
        service: AccountService,
        invocations: InvocationLog,
        *,
        subdomain: str,
        draw: Callable[[], float] | None = None,
    ) -> None:
        self.service = service
        self.invocations = invocations
        self.subdomain = subdomain
        self.draw = draw or (lambda: random.random() * 100)
        self._upstream: Upstream | None = None
        self._recovering: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._upstream is not None:
            await self._upstream.aclose()

    def _gateway(self, url: str) -> Upstream:
        address = _address(url)
        if self._upstream is None or (self._upstream.host, self._upstream.port) != address:
            self._upstream = Upstream(*address)
        return self._upstream

    def claims(self, scope: dict[str, Any]) -> bool:
        """Whether this request is for a deployed Worker (by Host or from a dispatcher)."""
        if local_guard.header(scope, DISPATCH_HEADER) is not None:
            return True
        host = local_guard.header(scope, b"host") or ""
        return routing.script_of_host(host, self.subdomain) is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        answer, invocation = await self._answer(scope, receive)
        headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        if invocation is not None:
            self.invocations.record(invocation)

    async def _answer(
        self, scope: dict[str, Any], receive: Any
    ) -> tuple[Answer, Invocation | None]:
        dispatch = local_guard.header(scope, DISPATCH_HEADER)
        if dispatch is not None:
            token = local_guard.header(scope, b"x-apiary-dispatch-token") or ""
            if not secrets.compare_digest(token, self.service.runner.dispatch_token):
                return _text(403, "forbidden"), None
            namespace, _, script = dispatch.partition("/")
            route = self.service.route(namespace, script) if namespace else None
            if route is None:
                not_found = _text(404, f"Worker not found: {script}", x_apiary_outcome="not-found")
                return not_found, None
        else:
            namespace = ACCOUNT
            host = local_guard.header(scope, b"host") or ""
            script = routing.script_of_host(host, self.subdomain) or ""
            route = self.service.route(ACCOUNT, script)
            if route is None:
                return _text(404, "There is nothing here yet (no Worker is deployed here)"), None
        overrides = routing.parse_overrides(
            local_guard.header(scope, routing.OVERRIDES_HEADER.encode())
        )
        version_id = routing.pick_version(
            [(v.version_id, v.percentage) for v in route.versions],
            override=overrides.get(script),
            draw=self.draw(),
        )
        version = route.get(version_id)
        if not version.runnable:
            return _text(503, f"{script} is stored but not run locally: {version.reason}"), None
        try:
            body = await local_guard.read_body(receive, scope, WORKER_BODY_LIMIT)
        except local_guard.BodyTooLarge:
            return _text(413, "error code: 413"), None
        limits = DispatchLimits()
        if dispatch is not None:  # only a dispatcher (holding the token) sets limits
            limits = dispatch_limits(local_guard.header(scope, b"x-apiary-dispatch-limits"))
        return await self._forward(
            scope, body, namespace, script, route, version_id, dispatch is not None, limits
        )

    async def _forward(
        self,
        scope: dict[str, Any],
        body: bytes,
        namespace: str,
        script: str,
        route: Route,
        version_id: str,
        from_dispatcher: bool,
        limits: DispatchLimits,
    ) -> tuple[Answer, Invocation]:
        if self._recovering is not None:
            await self._recovering.wait()  # workerd may be stuck: wait for the check
        ray = new_ray()
        started_ms = int(time.time() * 1000)
        started = time.perf_counter()
        limit_ms = route.get(version_id).limit_ms
        if limits.cpu_ms is not None:
            limit_ms = min(limit_ms, limits.cpu_ms)
        exception: dict[str, str] | None = None
        try:
            async with asyncio.timeout(limit_ms / 1000):
                response = await self._send(scope, body, ray, version_id, limits.subrequests)
            outcome = response.header(b"x-apiary-outcome")
            if outcome == "exception":
                status = THREW
                exception = _exception(response.body)
            elif outcome is not None:
                status = INTERNAL
            else:
                status = SUCCESS
        except TimeoutError:
            status, response = EXCEEDED, None
            if self._recovering is None:
                self._recovering = asyncio.Event()
                self._background(self._unstick())
        except UpstreamError as exc:
            log.warning("worker runner unreachable", extra={"fields": {"error": str(exc)}})
            status, response = INTERNAL, None
            self._background(self.service.recover())
        duration_ms = (time.perf_counter() - started) * 1000
        answer = self._reply(status, response, from_dispatcher, exception)
        answer.headers.append((b"cf-ray", ray.encode()))
        invocation = Invocation(
            ray, namespace, script, version_id, started_ms, duration_ms, status, answer.status,
            exception,
        )  # fmt: skip
        return answer, invocation

    async def _send(
        self,
        scope: dict[str, Any],
        body: bytes,
        ray: str,
        version_id: str,
        subrequests: int | None = None,
    ) -> UpstreamResponse:
        url = self.service.runner.gateway_url
        if url is None:
            await self.service.recover()
            url = self.service.runner.gateway_url
            if url is None:
                raise UpstreamError("the Worker runner is not running")
        headers = [
            (k.lower(), v)
            for k, v in scope["headers"]
            if k.lower() not in HOP_BY_HOP and not k.lower().startswith((b"x-apiary-", b"cf-"))
        ]
        headers += [
            (b"host", (local_guard.header(scope, b"host") or "localhost").encode("latin-1")),
            (b"cf-ray", ray.encode()),
            (b"cf-connecting-ip", str((scope.get("client") or ("127.0.0.1",))[0]).encode()),
            (b"x-apiary-target", ("v" + version_id.replace("-", "")).encode()),
            (b"x-apiary-token", self.service.runner.gateway_token.encode()),
        ]
        if subrequests is not None:
            headers.append((b"x-apiary-subrequest-limit", str(subrequests).encode()))
        query = scope.get("query_string", b"")
        target = scope.get("raw_path") or scope["path"].encode()
        if query:
            target += b"?" + query
        return await self._gateway(url).request(
            scope["method"], target.decode("latin-1"), headers, body
        )

    @staticmethod
    def _reply(
        status: str,
        response: UpstreamResponse | None,
        from_dispatcher: bool,
        exception: dict[str, str] | None,
    ) -> Answer:
        if status == SUCCESS and response is not None:
            headers = [(k, v) for k, v in response.headers if k not in HOP_BY_HOP]
            return Answer(response.status, headers, response.body)
        if status == THREW:
            if from_dispatcher:
                body = json.dumps(exception or {"name": "Error", "message": "exception"})
                return _text(500, body, x_apiary_outcome="exception")
            return _text(500, "error code: 1101")
        if status == EXCEEDED:
            if from_dispatcher:
                thrown = {"name": "Error", "message": "Worker exceeded resource limits"}
                return _text(500, json.dumps(thrown), x_apiary_outcome="exception")
            return _text(503, "error code: 1102")
        return _text(500, "error code: 1101" if not from_dispatcher else "internal error")

    async def _unstick(self) -> None:
        """After a timeout: if workerd no longer answers, a restart frees it. Requests that
        arrive meanwhile wait for this, rather than queue behind a spinning isolate."""
        try:
            url = self.service.runner.gateway_url
            if url is not None:
                headers = [
                    (b"x-apiary-token", self.service.runner.gateway_token.encode()),
                    (b"x-apiary-target", b"__ping"),
                ]
                try:
                    async with asyncio.timeout(PING_TIMEOUT_S):
                        ping = await Upstream(*_address(url)).request("GET", "/", headers)
                    if ping.status == 200:
                        return
                except (UpstreamError, TimeoutError):
                    pass
            log.warning("workerd is stuck: restarting the Worker runner")
            await self.service.runner.restart()
        finally:
            recovering, self._recovering = self._recovering, None
            if recovering is not None:
                recovering.set()


def _exception(body: bytes) -> dict[str, str]:
    try:
        thrown = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"name": "Error", "message": "unknown"}
    return {k: str(thrown.get(k, "")) for k in ("name", "message", "stack")}


def _address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)
