"""What the apiary Worker is, independent of the runtime that hosts it.

`entry.py` adapts this to the Python Workers API; `apiary dev` hosts it on CPython. Both read the
same five things: the HTTP app, the Durable Object classes by `class_name`, the scheduled
handler, the WebSocket routes that go straight to an object (never through the ASGI app), and
the customer routes that go to a customer's Worker through the dispatch namespace (the last
hop is the runtime's: the `dispatch_namespaces` binding on Cloudflare, a dispatcher Worker on
the local account under apiary dev).
`define_worker` builds them around one job table, so the app, the scheduled handler and the
job runners never disagree about the jobs (tests define workers with jobs of their own).
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from api.app import create_app
from cron.dispatch import ScheduledEvent, on_scheduled
from cron.jobs import JOBS, JobTable
from durable.base import DurableObjectLogic
from durable.browser_limits import BrowserLimits
from durable.browser_test_run import BrowserTestRun
from durable.fleet_watch import FleetWatch
from durable.job_runner import JobRunner
from durable.rate_limiter import RateLimiter
from durable.server_instance import ServerInstance
from durable.server_registry import ServerRegistry
from durable.swarm_coordinator import SwarmCoordinator
from durable.task_manager import TaskManager
from durable.worker_health import WorkerHealth
from durable.worker_rollout import WorkerRollout
from fleet import customers
from fleet.customers import CustomerMiss, CustomerRoute
from services import Services, ServicesProvider
from swarms import registry as swarm_registry
from swarms.models import SWARMS


@dataclass(frozen=True, slots=True)
class ObjectAddress:
    binding: str
    name: str


async def no_customers(host: str, path: str, services: Services) -> None:
    """A worker without customer Workers: every request is its own."""
    return None


@dataclass(frozen=True, slots=True)
class WorkerDefinition:
    create_app: Callable[[ServicesProvider], Any]
    durable_objects: Mapping[str, type[DurableObjectLogic]]
    scheduled: Callable[[ScheduledEvent, Services], Awaitable[None]]
    # Which object serves a WebSocket upgrade at a path, or None (404). Asked before the
    # upgrade reaches any object, so it must not wake one.
    websocket_route: Callable[[str, Services], Awaitable[ObjectAddress | None]]
    # Whether a request (Host, path) is for a customer's Worker: where to send it, a miss (an
    # unknown subdomain of the customer domain: 404), or None (apiary's own request).
    customer_route: Callable[
        [str, str, Services], Awaitable[CustomerRoute | CustomerMiss | None]
    ] = no_customers


async def websocket_route(path: str, services: Services) -> ObjectAddress | None:
    """`/api/swarms/{id}/ws` goes to its swarm, if D1 knows the swarm."""
    parts = path.strip("/").split("/")
    shape = len(parts) == 4 and parts[:2] == ["api", "swarms"] and parts[3] == "ws"
    if shape and await swarm_registry.exists(services.database, parts[2]):
        return ObjectAddress(SWARMS, parts[2])
    return None


def define_worker(jobs: JobTable) -> WorkerDefinition:
    return WorkerDefinition(
        create_app=partial(create_app, jobs=jobs),
        durable_objects={
            "RateLimiter": RateLimiter,
            "ServerRegistry": ServerRegistry,
            "ServerInstance": ServerInstance,
            "TaskManager": TaskManager,
            "JobRunner": JobRunner.for_jobs(jobs),
            "SwarmCoordinator": SwarmCoordinator,
            "BrowserTestRun": BrowserTestRun,
            "BrowserLimits": BrowserLimits,
            "WorkerHealth": WorkerHealth,
            "WorkerRollout": WorkerRollout,
            "FleetWatch": FleetWatch,
        },
        scheduled=partial(on_scheduled, jobs=jobs),
        websocket_route=websocket_route,
        customer_route=customers.route,
    )


WORKER = define_worker(JOBS)
