"""TaskManager in process: events that arrive while its dispatch call is in flight.

On Cloudflare (and in `apiary dev`) the input gate opens while an object awaits an outbound
call, so a callback or a cancel can land between the dispatch going out and its answer coming
back. The answer must then be judged against the task as it is, not as it was.
"""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from durable.server_registry import ServerRegistry, ServerRegistryClient
from durable.task_manager import TaskManager, TaskManagerClient
from tests.world import Gate, Reply, World

pytestmark = pytest.mark.anyio
TASK = "tsk_01M8000000000000000000TASK"
SERVER = {"id": "srv_1", "name": "one", "url": "http://srv.test", "capabilities": [],
          "capacity": 2}  # fmt: skip
SPEC = {"id": TASK, "type": "echo", "payload": {"n": 1}, "priority": 0,
        "required_capabilities": [], "timeout_s": 60, "max_attempts": 3}  # fmt: skip
CLASSES = {"SERVER_REGISTRY": ServerRegistry, "TASK_MANAGER": TaskManager}


async def dispatching(world: World, gate: Gate) -> tuple[TaskManagerClient, asyncio.Task[Any]]:
    """A task whose first dispatch (made after its creation answers) is out and held open by
    `gate`; `created` is the creation."""
    await ServerRegistryClient.of(world.services).register(SERVER, "healthy")
    world.http.route("POST", "http://srv.test/tasks", gate)
    client = TaskManagerClient.for_task(world.services, TASK)
    created = asyncio.create_task(client.create(SPEC))
    await gate.entered.wait()
    return client, created


async def test_a_cancel_during_the_dispatch_stands(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        cancels = Gate(Reply(200))
        cancels.release.set()
        world.http.route("POST", f"http://srv.test/tasks/{TASK}/cancel", cancels)
        gate = Gate(Reply(202))
        client, alarm = await dispatching(world, gate)
        assert (await client.update(None, None, {"status": "cancelled"}))["status"] == "cancelled"
        gate.release.set()  # the server accepts, but the task is no longer its to run
        await alarm
        await world.settle()
        task = await client.get()
        assert task["status"] == "cancelled"
        assert [a["outcome"] for a in task["attempts"]] == ["cancelled"]
        servers = await ServerRegistryClient.of(world.services).servers()
        assert servers[0]["active_tasks"] == 0  # the slot went back
        (told,) = cancels.requests  # and the server was told, under the lease it was given
        assert told.headers["X-Apiary-Lease"] == gate.requests[0].headers["X-Apiary-Lease"]
        assert world.alarm_at("TASK_MANAGER", TASK) is None


async def test_a_callback_during_the_dispatch_is_kept(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        gate = Gate(Reply(202))
        client, alarm = await dispatching(world, gate)
        lease = gate.requests[0].headers["X-Apiary-Lease"]
        await client.update("srv_1", lease, {"status": "running"})
        done = await client.update("srv_1", lease, {"status": "succeeded", "result": {"ok": 1}})
        assert done["status"] == "succeeded"
        gate.release.set()  # the dispatch's own answer arrives last
        await alarm
        await world.settle()
        task = await client.get()
        assert task["status"] == "succeeded"
        assert task["result"] == {"ok": 1}
        assert [a["outcome"] for a in task["attempts"]] == ["succeeded"]
        projected = world.rows("SELECT status FROM tasks WHERE id = ?", TASK)
        assert projected == [{"status": "succeeded"}]


async def test_a_dispatch_answered_503_retries_after_backoff(tmp_path: Path) -> None:
    """Without interleaving: the rules applied end to end on the step clock."""
    async with World(tmp_path, classes=CLASSES) as world:
        gate = Gate(Reply(503, headers={"Retry-After": "3"}))
        gate.release.set()
        client, alarm = await dispatching(world, gate)
        await alarm
        await world.settle()
        retry_at = world.alarm_at("TASK_MANAGER", TASK)
        assert retry_at == world.clock.ms + 3_000  # Retry-After honoured
        world.http.route("POST", "http://srv.test/tasks", lambda _: Reply(202))
        await world.alarm("TASK_MANAGER", TASK)
        task = await client.get()
        assert task["status"] == "assigned"
        assert len(world.http.to("http://srv.test/tasks")) == 2


async def test_an_alarm_during_the_dispatch_does_not_dispatch_again(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        gate = Gate(Reply(202))
        _, created = await dispatching(world, gate)
        # Nothing is due before the deadline: the projection waits for this event to finish.
        assert world.alarm_at("TASK_MANAGER", TASK) == world.clock.ms + 60_000
        await world.alarm("TASK_MANAGER", TASK)  # fires anyway (a retry of the platform's)
        assert len(gate.requests) == 1  # the alarm left the dispatch to the event making it
        gate.release.set()
        await created
        await world.settle()  # (the clock is at the deadline now: a second attempt may follow)
        assert [r.body["attempt"] for r in gate.requests].count(1) == 1


async def test_the_creation_answers_while_the_dispatch_is_out(tmp_path: Path) -> None:
    """A backend that hangs holds its own task, not the caller of `POST /api/task`."""
    async with World(tmp_path, classes=CLASSES) as world:
        gate = Gate(Reply(202))
        client, created = await dispatching(world, gate)
        answered = (await asyncio.wait_for(created, timeout=5))["task"]
        assert (answered["status"], answered["server_id"]) == ("assigned", "srv_1")
        gate.release.set()
        await world.settle()
        assert (await client.get())["attempts"][0]["outcome"] is None  # accepted, running
