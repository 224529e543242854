"""What the apiary Worker is, independent of the runtime that hosts it.

`entry.py` adapts this to the Python Workers API; `apiary dev` hosts it on CPython. Both read the
same four things: the HTTP app, the Durable Object classes by `class_name`, the scheduled
handler, and the WebSocket routes that go straight to an object (never through the ASGI app).
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from api.app import create_app
from cron.dispatch import ScheduledEvent, on_scheduled
from durable.base import DurableObjectLogic
from durable.rate_limiter import RateLimiter
from durable.server_instance import ServerInstance
from durable.server_registry import ServerRegistry
from durable.task_manager import TaskManager
from services import Services, ServicesProvider


@dataclass(frozen=True, slots=True)
class ObjectAddress:
    binding: str
    name: str


@dataclass(frozen=True, slots=True)
class WorkerDefinition:
    create_app: Callable[[ServicesProvider], Any]
    durable_objects: Mapping[str, type[DurableObjectLogic]]
    scheduled: Callable[[ScheduledEvent, Services], Awaitable[None]]
    websocket_route: Callable[[str], ObjectAddress | None]


def websocket_route(path: str) -> ObjectAddress | None:
    """Which object serves a WebSocket upgrade at `path` (none yet: swarms add theirs)."""
    return None


WORKER = WorkerDefinition(
    create_app=create_app,
    durable_objects={
        "RateLimiter": RateLimiter,
        "ServerRegistry": ServerRegistry,
        "ServerInstance": ServerInstance,
        "TaskManager": TaskManager,
    },
    scheduled=on_scheduled,
    websocket_route=websocket_route,
)
