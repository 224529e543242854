"""The registry in shards: a server lives in one, a task asks the shard its id hashes to and
another only when that one has no healthy server able to run it; releases and offers go to
the shard that holds the slot; lists and look-ups by id ask every shard."""

from pathlib import Path
from typing import Any

import pytest

from durable.registry_shards import ServerRegistries, shard_of
from durable.server_registry import ServerRegistry
from durable.task_manager import TaskManager, TaskManagerClient
from tests.world import Reply, World

pytestmark = pytest.mark.anyio
SHARDS = 4
CLASSES = {"SERVER_REGISTRY": ServerRegistry, "TASK_MANAGER": TaskManager}
CONFIG = {"REGISTRY_SHARDS": str(SHARDS)}


def task_in(shard: int, tag: str) -> str:
    """A task id whose home is `shard`."""
    for n in range(10_000):
        task_id = f"tsk_{tag}{n:06d}"
        if shard_of(task_id, SHARDS) == shard:
            return task_id
    raise AssertionError("no such id")


def spec(task_id: str, required: list[str] | None = None) -> dict[str, Any]:
    return {"id": task_id, "type": "echo", "payload": {}, "priority": 0,
            "required_capabilities": required or [], "timeout_s": 600,
            "max_attempts": 3}  # fmt: skip


async def server(world: World, shard: int, name: str, capabilities: list[str],
                 capacity: int = 1) -> None:  # fmt: skip
    record = {"id": f"srv_{name}", "name": name, "url": f"http://{name}.test",
              "capabilities": capabilities, "capacity": capacity}  # fmt: skip
    await ServerRegistries(world.services).shard(shard).register(record, "healthy")
    world.http.route("POST", f"http://{name}.test/tasks", lambda _: Reply(202))


async def finish(world: World, task_id: str) -> None:
    await world.settle()
    doc = await TaskManagerClient.for_task(world.services, task_id).get()
    (lease,) = [c.headers["X-Apiary-Lease"] for c in world.http.calls if c.body["id"] == task_id]
    await TaskManagerClient.for_task(world.services, task_id).update(
        doc["server_id"], lease, {"status": "succeeded"}
    )


async def load(world: World) -> dict[str, int]:
    return {s["id"]: s["active_tasks"] for s in await ServerRegistries(world.services).servers()}


async def test_a_task_goes_to_another_shard_only_for_what_its_own_lacks(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES, config=CONFIG) as world:
        await server(world, 0, "cpu0", [])
        await server(world, 2, "gpu2", ["gpu"])
        plain, gpu = task_in(0, "p"), task_in(1, "g")
        await TaskManagerClient.for_task(world.services, plain).create(spec(plain))
        await TaskManagerClient.for_task(world.services, gpu).create(spec(gpu, ["gpu"]))
        await world.settle()
        asked = world.meter.by_class["ServerRegistry"]["do_requests"]
        assert asked == 2 + 1 + 3  # two registrations; the plain task once; the gpu one hops
        assert await load(world) == {"srv_cpu0": 1, "srv_gpu2": 1}
        await finish(world, gpu)  # the release goes to the shard that holds the slot
        assert await load(world) == {"srv_cpu0": 1, "srv_gpu2": 0}


async def test_a_queued_task_waits_in_its_shard_and_gets_its_slot(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES, config=CONFIG) as world:
        await server(world, 3, "one", [])
        first, second = task_in(3, "a"), task_in(3, "b")
        for task_id in (first, second):
            await TaskManagerClient.for_task(world.services, task_id).create(spec(task_id))
        await world.settle()
        waiting = await TaskManagerClient.for_task(world.services, second).get()
        assert waiting["status"] == "pending"
        await world.alarm("TASK_MANAGER", second)  # the recheck asks where it waits: still busy
        assert (await TaskManagerClient.for_task(world.services, second).get())["status"] == (
            "pending"
        )
        await finish(world, first)  # the freed slot is offered to it in that event
        await world.settle()
        taken = await TaskManagerClient.for_task(world.services, second).get()
        assert (taken["status"], taken["server_id"]) == ("assigned", "srv_one")


async def test_listing_finding_and_removing_span_the_shards(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES, config=CONFIG) as world:
        registries = ServerRegistries(world.services)
        for shard, name in enumerate(("a", "b", "c", "d")):
            world.clock.advance(1)
            await server(world, shard, name, [])
        assert [s["id"] for s in await registries.servers()] == [
            "srv_a", "srv_b", "srv_c", "srv_d"]  # fmt: skip
        assert (await registries.get("srv_c"))["url"] == "http://c.test"
        assert (await registries.remove("srv_c"))["removed"] is True
        assert [s["id"] for s in await registries.servers()] == ["srv_a", "srv_b", "srv_d"]
        assert (await registries.remove("srv_c"))["removed"] is False
