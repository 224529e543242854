"""The local runtime's front door: the ASGI app uvicorn serves on 127.0.0.1:8787.

- Requests for a customer's Worker (`{subdomain}.CUSTOMER_DOMAIN`, or `/CUSTOMER_PATH_PREFIX/
  {subdomain}/...`), as the worker's `customer_route` decides: through the local dispatcher
  (`apiary_local.customer_dispatch`) to the customers namespace; an unknown subdomain is 404.
- Requests for a deployed Worker of the local account (Host `{script}.localhost`, or from a
  dispatcher): `apiary_local.account.router`. These are public, as on workers.dev.
- `/__meter` (GET; POST `/__meter/reset`): the meter.
- `/__scheduled?cron=...&time=...`: run the scheduled handler now (wrangler dev's convention).
- `/client/v4/...`: the local Cloudflare account (`apiary_local.account.app`): Workers
  scripts, versions, deployments, dispatch namespaces, GraphQL analytics and the Browser
  Rendering subset, behind the account's bearer token.
- WebSocket upgrades whose path the worker routes to an object go straight to that object.
- `[assets]`: static files with Cloudflare's routing rules and `_headers`
  (`apiary_local.assets`); unbilled, like Cloudflare's asset serving.
- Everything else is the Worker's own HTTP app.

The three local-only entries answer only a loopback Host and this server's own Origin (see
`apiary_local.local_guard`), and a loopback client.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from apiary_local import local_guard
from apiary_local.customer_dispatch import LocalCustomerDispatch
from apiary_local.runtime import LocalRuntime
from durable.base import ObjectRequest
from fleet.customers import CustomerMiss
from logs import get_logger

log = get_logger("server")
ACCOUNT_API = "/client/v4/"  # Cloudflare's API, served locally
_LOOPBACK = ("127.", "::1", "localhost")


async def _send_bytes(send: Any, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Any, status: int, data: Any) -> None:
    await _send_bytes(send, status, json.dumps(data).encode(), "application/json")


def _request_of(scope: dict[str, Any], scheme: str) -> ObjectRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    host = headers.get("host", "127.0.0.1")
    query = scope.get("query_string", b"").decode()
    url = f"{scheme}://{host}{scope['path']}" + (f"?{query}" if query else "")
    return ObjectRequest(method="GET", url=url, headers=headers)


class _AsgiConnection:
    def __init__(self, send: Any) -> None:
        self._send = send

    async def send(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._send({"type": "websocket.send", "bytes": message})
        else:
            await self._send({"type": "websocket.send", "text": message})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class LocalServer:
    def __init__(self, runtime: LocalRuntime, *, port: int = 8787) -> None:
        self.runtime = runtime
        self.port = port
        self.customers = LocalCustomerDispatch(runtime.account, port=port)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif await self._customer(scope, receive, send):
            pass
        elif self.runtime.account.router.claims(scope):
            await self.runtime.account.router(scope, receive, send)
        elif scope["path"] == "/__meter" or scope["path"].startswith("/__meter/"):
            await self._meter(scope, send)
        elif scope["path"] == "/__scheduled":
            await self._scheduled(scope, send)
        elif scope["path"].startswith(ACCOUNT_API):
            await self.runtime.account.api(scope, receive, send)
        elif not await self._asset(scope, send):
            self.runtime.meter.count("worker_requests")
            await self.runtime.app(scope, receive, send)

    async def _customer(self, scope: dict[str, Any], receive: Any, send: Any) -> bool:
        """Serve a customer Worker's request if it is one (True); apiary's Worker decides."""
        host = local_guard.header(scope, b"host") or ""
        route = await self.runtime.definition.customer_route(
            host, scope["path"], self.runtime.services
        )
        if route is None:
            return False
        self.runtime.meter.count("worker_requests")
        if isinstance(route, CustomerMiss):
            message = f"no customer Worker at {route.subdomain}"
            await _send_json(send, 404, {"error": {"code": "not_found", "message": message}})
        else:
            await self.customers(route, scope, receive, send)
        return True

    async def _asset(self, scope: dict[str, Any], send: Any) -> bool:
        """Serve a static asset if the request is one's (True), as Cloudflare does before the
        Worker runs."""
        assets = self.runtime.assets
        if assets is None:
            return False
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        https = scope.get("scheme") == "https"
        response = assets.respond(scope["method"], scope["path"], headers, https=https)
        if response is None:
            return False
        self.runtime.meter.count("asset_requests")
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in response.headers]
        if response.status not in (304,) and scope["method"] != "HEAD":
            raw.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        await send({"type": "http.response.body", "body": response.body})
        return True

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _local_only(self, scope: dict[str, Any]) -> bool:
        client = scope.get("client") or ("",)
        return (
            str(client[0]).startswith(_LOOPBACK)
            and local_guard.loopback_host(scope)
            and local_guard.own_origin(scope, self.port)
        )

    async def _meter(self, scope: dict[str, Any], send: Any) -> None:
        if not self._local_only(scope):
            await _send_json(send, 403, {"error": {"code": "forbidden", "message": "local only"}})
            return
        if scope["path"] == "/__meter/reset" and scope["method"] == "POST":
            self.runtime.meter.reset()
        elif scope["path"] != "/__meter":
            await _send_json(send, 404, {"error": {"code": "not_found", "message": "no route"}})
            return
        snapshot = self.runtime.meter.snapshot()
        snapshot["instances"] = {
            host.class_name: host.live_instances for host in set(self.runtime.hosts.values())
        }
        await _send_json(send, 200, snapshot)

    async def _scheduled(self, scope: dict[str, Any], send: Any) -> None:
        if not self._local_only(scope):
            await _send_json(send, 403, {"error": {"code": "forbidden", "message": "local only"}})
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        cron = query.get("cron", [""])[0]
        raw_time = query.get("time", [""])[0]
        when = int(raw_time) if raw_time.isdigit() else self.runtime.clock.now_ms()
        try:
            await self.runtime.scheduled(cron, when)
        except Exception:
            log.exception("scheduled event failed", extra={"fields": {"cron": cron}})
            await _send_bytes(send, 500, b"Scheduled event failed", "text/plain")
            return
        await _send_bytes(send, 200, b"Ran scheduled event", "text/plain")

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.runtime.meter.count("worker_requests")
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        route = self.runtime.definition.websocket_route
        address = await route(scope["path"], self.runtime.services)
        host = self.runtime.hosts.get(address.binding) if address else None
        if address is None or host is None:
            await self._deny(scope, send, 404, b'{"error":{"code":"not_found"}}')
            return
        connection = _AsgiConnection(send)
        response, socket, hub = await host.connect(
            address.name,
            _request_of(scope, "ws"),
            connection,
            accept=lambda: send({"type": "websocket.accept"}),
        )
        if socket is None:
            await self._deny(scope, send, response.status, response.body)
            return
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                data = message.get("text")
                if data is None:
                    data = message.get("bytes", b"")
                await host.socket_message(hub, socket, data)
            elif message["type"] == "websocket.disconnect":
                code = message.get("code", 1005)
                await host.socket_closed(hub, socket, code, message.get("reason") or "")
                return

    @staticmethod
    async def _deny(scope: dict[str, Any], send: Any, status: int, body: bytes) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})
