"""The registry's queue: a task no server can take now is offered the next slot that frees, in
the event that frees it (no alarm polls), highest priority and longest waiting first."""

from pathlib import Path
from typing import Any

import pytest

from durable.server_registry import ServerRegistry, ServerRegistryClient
from durable.task_manager import TaskManager, TaskManagerClient
from tests.world import Reply, World

pytestmark = pytest.mark.anyio
SERVER = {"id": "srv_1", "name": "one", "url": "http://srv.test", "capabilities": [],
          "capacity": 1}  # fmt: skip
CLASSES = {"SERVER_REGISTRY": ServerRegistry, "TASK_MANAGER": TaskManager}


def spec(task_id: str, priority: int = 0) -> dict[str, Any]:
    return {"id": task_id, "type": "echo", "payload": {}, "priority": priority,
            "required_capabilities": [], "timeout_s": 600, "max_attempts": 3}  # fmt: skip


async def start(world: World, *task_ids: str, priority: dict[str, int] | None = None) -> None:
    """One server with one slot; the tasks created in order (the first takes the slot)."""
    await ServerRegistryClient.of(world.services).register(SERVER, "healthy")
    world.http.route("POST", "http://srv.test/tasks", lambda _: Reply(202))
    for task_id in task_ids:
        await task(world, task_id).create(spec(task_id, (priority or {}).get(task_id, 0)))


def task(world: World, task_id: str) -> TaskManagerClient:
    return TaskManagerClient.for_task(world.services, task_id)


async def finish(world: World, task_id: str) -> None:
    """The server reports success under the lease it was given."""
    await world.settle()
    (dispatch,) = [c for c in world.http.to("http://srv.test/tasks") if c.body["id"] == task_id]
    await task(world, task_id).update("srv_1", dispatch.headers["X-Apiary-Lease"],
                                      {"status": "succeeded"})  # fmt: skip


async def dispatched(world: World) -> list[str]:
    """The tasks dispatched so far, once the dispatches under way have been answered."""
    await world.settle()
    return [c.body["id"] for c in world.http.to("http://srv.test/tasks")]


async def test_a_queued_task_is_dispatched_when_the_slot_frees(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        await start(world, "tsk_a", "tsk_b")
        assert await dispatched(world) == ["tsk_a"]
        assert (await task(world, "tsk_b").get())["status"] == "pending"
        recheck = world.alarm_at("TASK_MANAGER", "tsk_b")
        assert recheck == world.clock.ms + 30_000  # only in case an offer is lost
        await finish(world, "tsk_a")  # no alarm fires: the release hands the slot over
        assert await dispatched(world) == ["tsk_a", "tsk_b"]
        b = await task(world, "tsk_b").get()
        assert (b["status"], b["server_id"]) == ("assigned", "srv_1")
        assert world.alarm_at("TASK_MANAGER", "tsk_b") == world.clock.ms + 600_000  # deadline


async def test_higher_priority_then_longer_waiting_goes_first(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        await start(world, "tsk_a", "tsk_b", "tsk_c", "tsk_d", priority={"tsk_d": 5})
        await finish(world, "tsk_a")
        await finish(world, "tsk_d")
        await finish(world, "tsk_b")
        assert await dispatched(world) == ["tsk_a", "tsk_d", "tsk_b", "tsk_c"]


async def test_a_task_cancelled_in_the_queue_leaves_it(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        await start(world, "tsk_a", "tsk_b", "tsk_c")
        cancelled = await task(world, "tsk_b").update(None, None, {"status": "cancelled"})
        assert cancelled["status"] == "cancelled"
        await finish(world, "tsk_a")
        assert await dispatched(world) == ["tsk_a", "tsk_c"]  # the slot skipped the cancelled one
        assert world.alarm_at("TASK_MANAGER", "tsk_b") is None


async def test_a_lost_offer_is_found_when_the_task_asks_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        await start(world, "tsk_a", "tsk_b")

        async def lost(*_: Any) -> None:
            raise ConnectionError("the offer never arrived")

        with monkeypatch.context() as patched:
            patched.setattr(TaskManagerClient, "offer", lost)
            await finish(world, "tsk_a")
        assert await dispatched(world) == ["tsk_a"]
        await world.alarm("TASK_MANAGER", "tsk_b")  # the recheck: the slot it was given
        assert await dispatched(world) == ["tsk_a", "tsk_b"]
        (server,) = await ServerRegistryClient.of(world.services).servers()
        assert server["active_tasks"] == 1


async def test_a_server_coming_up_takes_queued_tasks(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        registry = ServerRegistryClient.of(world.services)
        await registry.register({**SERVER, "capacity": 2}, "unhealthy")
        world.http.route("POST", "http://srv.test/tasks", lambda _: Reply(202))
        for task_id in ("tsk_a", "tsk_b", "tsk_c"):
            await task(world, task_id).create(spec(task_id))
        change = await registry.set_status("srv_1", "healthy")
        assert [(o["task_id"], o["attempt"]) for o in change["offers"]] == [
            ("tsk_a", 1),
            ("tsk_b", 1),
        ]
        assert change["moved"] == []
