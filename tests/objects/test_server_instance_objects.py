"""ServerInstance in process: status events reach D1 in order, even when D1 fails meanwhile."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from durable.server_instance import ServerInstance, ServerInstanceClient
from durable.server_registry import ServerRegistry, ServerRegistryClient
from durable.task_manager import TaskManager
from ports import PortError, QueryResult, Statement
from tests.world import Reply, World

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
