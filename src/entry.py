"""The Cloudflare entrypoint: `Default` (fetch, scheduled) and the Durable Object classes.

https://developers.cloudflare.com/workers/languages/python/basics . HTTP goes to the FastAPI
app through the SDK's ASGI adapter. WebSocket upgrades never do (its WebSocket path is not
hibernatable and gets an empty env): they go straight to the Durable Object that owns them.
"""

from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from cloudflare_adapters.services import services_from_env
from cloudflare_adapters.shell import durable_object_class
from cron.dispatch import ScheduledEvent
from logs import configure
from worker import WORKER

configure()
_app = None


def _get_app():
    # Built once per isolate, on first use; cheap, and nothing in lifespan (the adapter runs
    # lifespan around every request).
    global _app
    if _app is None:
        _app = WORKER.create_app(lambda scope: services_from_env(scope["env"]))
    return _app


def _not_found() -> Response:
    body = '{"error":{"code":"not_found","message":"no WebSocket endpoint here"}}'
    return Response(body, status=404, headers={"content-type": "application/json"})


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if (request.headers.get("upgrade") or "").lower() == "websocket":
            address = WORKER.websocket_route(urlsplit(request.url).path)
            if address is None:
                return _not_found()
            stub = getattr(self.env, address.binding).getByName(address.name)
            return await stub.fetch(getattr(request, "js_object", request))
        import asgi

        return await asgi.fetch(_get_app(), getattr(request, "js_object", request), self.env)

    async def scheduled(self, controller, env, ctx):
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
