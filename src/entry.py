"""The Cloudflare entrypoint: `Default` (fetch, scheduled) and the Durable Object classes.

https://developers.cloudflare.com/workers/languages/python/basics . HTTP goes to the FastAPI
app through the SDK's ASGI adapter. WebSocket upgrades never do (its WebSocket path is not
hibernatable and gets an empty env): they go straight to the Durable Object that owns them.
A request for a customer's Worker (`WORKER.customer_route`: `{subdomain}.CUSTOMER_DOMAIN`)
goes through the `dispatch_namespaces` binding (`cloudflare_adapters.dispatch`).
"""

import json
from typing import Any
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

import correlation
from api.edge import body_refusal
from api.errors import error_body
from cloudflare_adapters.dispatch import dispatch
from cloudflare_adapters.services import services_from_env
from cloudflare_adapters.shell import durable_object_class
from cron.dispatch import ScheduledEvent
from fleet.customers import CustomerMiss
from logs import configure
from worker import WORKER

configure()
# Built at import: workerd snapshots memory after the module is imported, so the app is in the
# snapshot and a new isolate does not build it again. Nothing random or time-dependent happens
# here (tests/cloudflare/test_entry.py imports this module with entropy and clocks refused).
APP = WORKER.create_app(lambda scope: services_from_env(scope["env"]))


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(error_body(code, message)),
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
    )


def _refused_body(request: Any) -> Response | None:
    """The SDK reads the whole body before the app runs, so its cap acts too late on Cloudflare:
    refuse an oversize (or undeclared) body here, before anything is buffered."""
    from pyodide.ffi import jsnull

    body = getattr(request, "js_object", request).body
    refusal = body_refusal(
        str(request.method),
        request.headers.get("content-length"),
        has_body=body is not None and body is not jsnull,
    )
    if refusal is None:
        return None
    cid = correlation.accept_or_new(request.headers.get("x-correlation-id"))
    token = correlation.bind(cid)
    try:
        return _json(*refusal, headers={"x-correlation-id": cid})
    finally:
        correlation.reset(token)


async def _customer(env: Any, request: Any) -> Any:
    """The customer Worker's answer when the request is for one, else None."""
    parts = urlsplit(request.url)
    host = request.headers.get("host") or parts.netloc
    route = await WORKER.customer_route(host, parts.path, services_from_env(env))
    if route is None:
        return None
    if isinstance(route, CustomerMiss):
        return _json(404, "not_found", f"no customer Worker at {route.subdomain}")
    try:
        answer = await dispatch(env, route, request)
    except Exception:
        return _json(502, "customer_worker_failed", "the customer's Worker failed")
    if answer is None:
        return _json(404, "not_found", f"no customer Worker at {route.path}")
    return answer


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:  # a workers.Response or a JS one
        customer = await _customer(self.env, request)
        if customer is not None:
            return customer
        if (request.headers.get("upgrade") or "").lower() == "websocket":
            path = urlsplit(request.url).path
            address = await WORKER.websocket_route(path, services_from_env(self.env))
            if address is None:
                return _json(404, "not_found", "no WebSocket endpoint here")
            stub = getattr(self.env, address.binding).getByName(address.name)
            return await stub.fetch(getattr(request, "js_object", request))
        refused = _refused_body(request)
        if refused is not None:
            return refused
        import asgi

        return await asgi.fetch(APP, getattr(request, "js_object", request), self.env)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        # workerd calls a class entrypoint's handler with the controller alone; the bindings
        # are the instance's own (`self.env`).
        event = ScheduledEvent(
            cron=controller.cron, scheduled_time_ms=int(controller.scheduledTime)
        )
        await WORKER.scheduled(event, services_from_env(self.env))


# Exported by name: wrangler.toml's `class_name`s (a test checks they match).
RateLimiter = durable_object_class("RateLimiter", WORKER.durable_objects["RateLimiter"])
ServerRegistry = durable_object_class("ServerRegistry", WORKER.durable_objects["ServerRegistry"])
ServerInstance = durable_object_class("ServerInstance", WORKER.durable_objects["ServerInstance"])
TaskManager = durable_object_class("TaskManager", WORKER.durable_objects["TaskManager"])
JobRunner = durable_object_class("JobRunner", WORKER.durable_objects["JobRunner"])
SwarmCoordinator = durable_object_class(
    "SwarmCoordinator", WORKER.durable_objects["SwarmCoordinator"]
)
BrowserTestRun = durable_object_class("BrowserTestRun", WORKER.durable_objects["BrowserTestRun"])
BrowserLimits = durable_object_class("BrowserLimits", WORKER.durable_objects["BrowserLimits"])
WorkerHealth = durable_object_class("WorkerHealth", WORKER.durable_objects["WorkerHealth"])
WorkerRollout = durable_object_class("WorkerRollout", WORKER.durable_objects["WorkerRollout"])
FleetWatch = durable_object_class("FleetWatch", WORKER.durable_objects["FleetWatch"])
