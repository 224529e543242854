"""The registry past one object: requests per registry shard per second at a simulated load.

The real objects (TaskManager, ServerRegistry shards) run in process on the local runtime's
hosts, on a step clock: tasks arrive at `RATE` per simulated second, run `TASK_S` on one of
`SERVERS` backends (answered in process), and report success. Every call to an object is
counted by object, so the figure is what each shard would be asked per second at that rate,
whatever this machine's speed. Cloudflare's soft limit is about 1,000 requests per second per
object; the shard count follows from requests per task at the registry times the rate.
"""

import asyncio
import hashlib
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from durable.registry_shards import ServerRegistries
from durable.server_registry import ServerRegistry
from durable.task_manager import TaskManager, TaskManagerClient
from tests.world import Reply, World

RATE = 5_000  # tasks per simulated second
TASKS = 1_500  # 0.3 simulated seconds of arrivals: past the ramp to a steady state
TASK_S = 0.1  # how long a backend runs each task
TICK_MS = 10
SERVERS = 64
CAPACITY = 32  # slots per server: 2,048 in all, four times what TASK_S x RATE holds
SHARD_COUNTS = (1, 4, 8, 16)
OBJECT_LIMIT = 1_000  # requests per second per object (Cloudflare's soft limit)
HEADROOM = 0.5  # plan each shard to half the limit: bursts, retries, rebalancing


def _count_calls(world: World, binding: str, counts: Counter[str]) -> None:
    host = world.hosts[binding]
    call = host.call

    async def counted(name: str, method: str, args: list[Any]) -> Any:
        counts[name] += 1
        return await call(name, method, args)

    host.call = counted  # type: ignore[method-assign]  # a bench's meter per object


async def _simulate(directory: Path, shards: int) -> dict[str, Any]:
    classes = {"SERVER_REGISTRY": ServerRegistry, "TASK_MANAGER": TaskManager}
    config = {"REGISTRY_SHARDS": str(shards), "TASK_WAIT_RECHECK_S": "30"}
    async with World(directory, classes=classes, config=config) as world:
        registries = ServerRegistries(world.services)
        for n in range(SERVERS):
            server_id = f"srv_{n:04d}"
            record = {"id": server_id, "name": f"s{n}", "url": f"http://s{n}.test",
                      "capabilities": [], "capacity": CAPACITY}  # fmt: skip
            await registries.shard(registries.shard_for_new_server(server_id)).register(
                record, "healthy"
            )
            world.http.route("POST", f"http://s{n}.test/tasks", lambda _: Reply(202))
        counts: Counter[str] = Counter()
        _count_calls(world, "SERVER_REGISTRY", counts)
        per_tick = RATE * TICK_MS // 1000
        started_ms, created, finished = world.clock.ms, 0, 0
        running: list[tuple[int, str]] = []  # (due ms, task id)
        seen = 0  # dispatches already turned into running tasks
        arrivals: tuple[Counter[str], float] | None = None
        while finished < TASKS:
            batch = [_task_id(created + i) for i in range(min(per_tick, TASKS - created))]
            created += len(batch)
            await asyncio.gather(*(
                TaskManagerClient.for_task(world.services, t).create(
                    {"id": t, "type": "echo", "payload": {}, "priority": 0,
                     "required_capabilities": [], "timeout_s": 600, "max_attempts": 3})
                for t in batch
            ))  # fmt: skip
            await world.settle()
            for request in world.http.calls[seen:]:
                running.append((world.clock.ms + int(TASK_S * 1000), request.body["id"]))
            seen = len(world.http.calls)
            due = [r for r in running if r[0] <= world.clock.ms]
            running = [r for r in running if r[0] > world.clock.ms]
            await asyncio.gather(*(_succeed(world, task_id) for _, task_id in due))
            await world.settle()
            finished += len(due)
            world.clock.advance(TICK_MS)
            if created == TASKS and arrivals is None:  # the rate is measured while they come
                arrivals = (Counter(counts), (world.clock.ms - started_ms) / 1000)
        assert arrivals is not None
        during, seconds = arrivals
        per_shard = [during[name] / seconds for name in sorted(during)]
        return {
            "shards": shards,
            "simulated_s": round(seconds, 2),
            "registry_requests_per_task": round(sum(counts.values()) / TASKS, 2),
            "tasks_per_s_measured": round(TASKS / seconds),
            "busiest_shard_per_s": round(max(per_shard)),
            "mean_shard_per_s": round(sum(per_shard) / shards),
            "under_limit": max(per_shard) < OBJECT_LIMIT,
        }


async def _succeed(world: World, task_id: str) -> None:
    task = TaskManagerClient.for_task(world.services, task_id)
    doc = await task.get()
    lease = next(c.headers["X-Apiary-Lease"] for c in world.http.calls if c.body["id"] == task_id)
    await task.update(doc["server_id"], lease, {"status": "succeeded"})


def _task_id(n: int) -> str:
    """Ids as spread as real ones (ULIDs): sequential ones would hash too evenly."""
    return "tsk_" + hashlib.sha256(str(n).encode()).hexdigest()[:26]


def shards_needed(tasks_per_s: float, registry_requests_per_task: float) -> int:
    """Shards so that each stays under HEADROOM of the per-object limit."""
    return max(1, math.ceil(tasks_per_s * registry_requests_per_task / (OBJECT_LIMIT * HEADROOM)))


def run() -> dict[str, Any]:
    rows = []
    for shards in SHARD_COUNTS:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="apiary-shards-") as directory:
            row = asyncio.run(_simulate(Path(directory), shards))
        row["wall_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(f"  {shards:>2} shards: busiest {row['busiest_shard_per_s']}/s", flush=True)
    per_task = rows[0]["registry_requests_per_task"]
    plan = {f"{rate} tasks/s": shards_needed(rate, per_task) for rate in (300, 1_000, 5_000)}
    return {
        "rate_tasks_per_s": RATE,
        "tasks": TASKS,
        "servers": SERVERS,
        "object_limit_per_s": OBJECT_LIMIT,
        "rows": rows,
        "plan": plan,
    }
