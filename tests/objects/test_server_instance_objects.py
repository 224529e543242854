"""ServerInstance in process: status events reach D1 in order, even when D1 fails meanwhile."""

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from durable.server_instance import ServerInstance, ServerInstanceClient
from durable.server_registry import ServerRegistry, ServerRegistryClient
from durable.task_manager import TaskManager, TaskManagerClient
from ports import PortError, QueryResult, Statement
from tests.world import Gate, Reply, World

pytestmark = pytest.mark.anyio
SERVER = {"id": "srv_1", "name": "one", "url": "http://srv.test", "capabilities": [],
          "capacity": 1}  # fmt: skip
CLASSES = {"SERVER_REGISTRY": ServerRegistry, "SERVER_INSTANCE": ServerInstance,
           "TASK_MANAGER": TaskManager}  # fmt: skip


class FailingEvents:
    """D1 whose writes of status events fail the first `failures` times."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def execute(self, sql: str, *params: Any) -> QueryResult:
        return await self.inner.execute(sql, *params)

    async def batch(self, statements: list[Statement]) -> list[QueryResult]:
        if any("server_status_events" in s.sql for s in statements) and self.failures:
            self.failures -= 1
            raise PortError("D1 is down")
        return await self.inner.batch(statements)


async def test_two_status_changes_land_in_order_through_d1_failures(tmp_path: Path) -> None:
    config = {"HEALTH_INTERVAL_MIN_S": "5", "HEALTH_INTERVAL_MAX_S": "5"}
    async with World(tmp_path, classes=CLASSES, config=config) as world:
        world.services = replace(world.services, database=FailingEvents(world.db, 3))
        await ServerRegistryClient.of(world.services).register(SERVER, "unhealthy")
        world.http.route("GET", "http://srv.test/health", lambda _: Reply(200, {}))
        instance = ServerInstanceClient.for_server(world.services, "srv_1")
        assert await instance.start("srv_1", "http://srv.test") == "healthy"  # D1 fails (1)
        world.http.route("GET", "http://srv.test/health", lambda _: Reply(503))
        await world.alarm("SERVER_INSTANCE", "srv_1")  # a failed check; D1 fails (2)
        # Unhealthy now: the second event is due at once while the first fails (3) and backs
        # off again; it must wait behind the first, not overtake it.
        await world.alarm("SERVER_INSTANCE", "srv_1")
        assert world.rows("SELECT * FROM server_status_events") == []
        await world.alarm("SERVER_INSTANCE", "srv_1")  # D1 is back: both, in order
        events = world.rows(
            "SELECT from_status, to_status FROM server_status_events ORDER BY rowid"
        )
        assert events == [
            {"from_status": "unhealthy", "to_status": "healthy"},
            {"from_status": "healthy", "to_status": "unhealthy"},
        ]
        (server,) = await ServerRegistryClient.of(world.services).servers()
        assert server["status"] == "unhealthy"  # the registry got both, the last one last


TASK = "tsk_01M8000000000000000000TASK"
SPEC = {"id": TASK, "type": "echo", "payload": {}, "priority": 0, "required_capabilities": [],
        "timeout_s": 600, "max_attempts": 3}  # fmt: skip
# Dispatch window 2 s (two tries of 1 s); a heartbeat may lag an acceptance by 1 s.
QUICK = {"DISPATCH_TIMEOUT_S": "1", "DISPATCH_TRIES": "2", "HEALTH_INTERVAL_MIN_S": "600",
         "HEALTH_INTERVAL_MAX_S": "600"}  # fmt: skip


async def held_task(
    world: World, dispatch: Any
) -> tuple[ServerInstanceClient, TaskManagerClient, asyncio.Task[Any]]:
    """srv_1 registered and watched; the task being created (`created`) and assigned to it, its
    dispatch (which runs after the creation answers: `world.settle()`) answered by `dispatch`."""
    await ServerRegistryClient.of(world.services).register({**SERVER, "capacity": 4}, "healthy")
    world.http.route("GET", "http://srv.test/health", lambda _: Reply(200, {}))
    instance = ServerInstanceClient.for_server(world.services, "srv_1")
    await instance.start("srv_1", "http://srv.test")
    world.http.route("POST", "http://srv.test/tasks", dispatch)
    task = TaskManagerClient.for_task(world.services, TASK)
    created = asyncio.create_task(task.create(SPEC))
    return instance, task, created


async def outcomes(task: TaskManagerClient) -> list[str | None]:
    return [a["outcome"] for a in (await task.get())["attempts"]]


async def test_a_task_left_out_of_two_heartbeats_is_lost(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES, config=QUICK) as world:
        instance, task, created = await held_task(world, lambda _: Reply(202))
        await created
        await world.settle()  # dispatched and accepted
        await instance.heartbeat({"active_tasks": []})  # too soon to expect it listed
        world.clock.advance(2_000)
        await instance.heartbeat({"active_tasks": []})
        await instance.heartbeat({"active_tasks": [TASK]})  # listed again: the count restarts
        await instance.heartbeat({"active_tasks": []})
        assert await outcomes(task) == [None]
        await instance.heartbeat({"active_tasks": []})  # the second miss in a row
        assert await outcomes(task) == ["lost", None]  # and on again, in the same event
        await world.settle()
        (server,) = await ServerRegistryClient.of(world.services).servers()
        assert server["active_tasks"] == 1  # the lost attempt's slot went back
        assert len(world.http.to("http://srv.test/tasks")) == 2


async def test_a_task_whose_dispatch_is_still_out_is_not_lost(tmp_path: Path) -> None:
    """Misses counted while the dispatch is in flight do not end the attempt once it lands."""
    async with World(tmp_path, classes=CLASSES, config=QUICK) as world:
        gate = Gate(Reply(202))
        instance, task, _ = await held_task(world, gate)
        await gate.entered.wait()
        world.clock.advance(3_000)
        await instance.heartbeat({"active_tasks": []})
        await instance.heartbeat({"active_tasks": []})
        assert await outcomes(task) == [None]
        gate.release.set()
        await world.settle()  # accepted now; a heartbeat sent before that may still arrive
        await instance.heartbeat({"active_tasks": []})
        assert await outcomes(task) == [None]
        world.clock.advance(1_000)
        await instance.heartbeat({"active_tasks": []})
        assert (await outcomes(task))[0] == "lost"
