"""The requests for deployed Workers: pick the version, forward to workerd, record it.

A request reaches a Worker by its Host (`routing.script_of_host`), or, from a dispatcher
Worker's dispatch-namespace binding, by `x-apiary-dispatch: {namespace}/{script}` with the
runner's dispatch token. The version comes from the current deployment's percentages (per
request) or the version-override header. The request gets a `cf-ray` id (also on the answer),
and is recorded in the invocation log before its answer leaves.

Limits: an invocation that has not answered within its version's `limits.cpu_ms` (default
30 s) of wall time ends as `exceededResources` with Cloudflare's error 1102 (HTTP 503); the
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

import httpx

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
        self._client = httpx.AsyncClient(
            timeout=None, limits=httpx.Limits(max_keepalive_connections=64)
        )
        self._recovering: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        await self._client.aclose()

    def claims(self, scope: dict[str, Any]) -> bool:
        """Whether this request is for a deployed Worker (by Host or from a dispatcher)."""
        if local_guard.header(scope, DISPATCH_HEADER) is not None:
            return True
        host = local_guard.header(scope, b"host") or ""
        return routing.script_of_host(host, self.subdomain) is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        answer = await self._answer(scope, receive)
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope: dict[str, Any], receive: Any) -> Answer:
        dispatch = local_guard.header(scope, DISPATCH_HEADER)
        if dispatch is not None:
            token = local_guard.header(scope, b"x-apiary-dispatch-token") or ""
            if not secrets.compare_digest(token, self.service.runner.dispatch_token):
                return _text(403, "forbidden")
            namespace, _, script = dispatch.partition("/")
            route = self.service.route(namespace, script) if namespace else None
            if route is None:
                return _text(404, f"Worker not found: {script}", x_apiary_outcome="not-found")
        else:
            namespace = ACCOUNT
            host = local_guard.header(scope, b"host") or ""
            script = routing.script_of_host(host, self.subdomain) or ""
            route = self.service.route(ACCOUNT, script)
            if route is None:
                return _text(404, "There is nothing here yet (no Worker is deployed at this host)")
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
            return _text(503, f"{script} is stored but not run locally: {version.reason}")
        return await self._forward(
            scope, receive, namespace, script, route, version_id, dispatch is not None
        )

    async def _forward(
        self,
        scope: dict[str, Any],
        receive: Any,
        namespace: str,
        script: str,
        route: Route,
        version_id: str,
        from_dispatcher: bool,
    ) -> Answer:
        if self._recovering is not None:
            await self._recovering.wait()  # workerd may be stuck: wait for the check
        ray = new_ray()
        started_ms = int(time.time() * 1000)
        started = time.perf_counter()
        limit_s = route.get(version_id).limit_ms / 1000
        exception: dict[str, str] | None = None
        try:
            async with asyncio.timeout(limit_s):
                response = await self._send(scope, receive, ray, version_id)
            outcome = response.headers.get("x-apiary-outcome")
            if outcome == "exception":
                status = THREW
                exception = _exception(response.content)
            elif outcome is not None:
                status = INTERNAL
            else:
                status = SUCCESS
        except TimeoutError:
            status, response = EXCEEDED, None
            if self._recovering is None:
                self._recovering = asyncio.Event()
                self._background(self._unstick())
        except httpx.HTTPError as exc:
            log.warning(
                "worker runner unreachable", extra={"fields": {"error": type(exc).__name__}}
            )
            status, response = INTERNAL, None
            self._background(self.service.recover())
        duration_ms = (time.perf_counter() - started) * 1000
        answer = self._reply(status, response, from_dispatcher, exception)
        self.invocations.record(
            Invocation(
                ray, namespace, script, version_id, started_ms, duration_ms, status,
                answer.status, exception,
            )
        )  # fmt: skip
        answer.headers.append((b"cf-ray", ray.encode()))
        return answer

    async def _send(
        self, scope: dict[str, Any], receive: Any, ray: str, version_id: str
    ) -> httpx.Response:
        url = self.service.runner.gateway_url
        if url is None:
            await self.service.recover()
            url = self.service.runner.gateway_url
            if url is None:
                raise httpx.ConnectError("the Worker runner is not running")
        headers = [
            (k, v)
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
        keep = local_guard.header(scope, routing.OVERRIDES_HEADER.encode())
        if keep is not None:
            headers.append((routing.OVERRIDES_HEADER.encode(), keep.encode("latin-1")))
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        request = self._client.build_request(
            scope["method"],
            url + path + (f"?{query}" if query else ""),
            headers=headers,
            content=await _body(receive),
        )
        response = await self._client.send(request, stream=True)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        response._content = body
        return response

    @staticmethod
    def _reply(
        status: str,
        response: httpx.Response | None,
        from_dispatcher: bool,
        exception: dict[str, str] | None,
    ) -> Answer:
        if status == SUCCESS and response is not None:
            headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower().encode() not in HOP_BY_HOP
            ]
            return Answer(response.status_code, headers, response.content)
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
                headers = {
                    "x-apiary-token": self.service.runner.gateway_token,
                    "x-apiary-target": "__ping",
                }
                try:
                    ping = await self._client.get(url, headers=headers, timeout=PING_TIMEOUT_S)
                    if ping.status_code == 200:
                        return
                except httpx.HTTPError:
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


async def _body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
