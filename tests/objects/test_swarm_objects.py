"""SwarmCoordinator in process: devices on fake connections, the alarm fired by hand on the
step clock. What each socket is sent by a broadcast, and what a chunk's life writes."""

from pathlib import Path
from typing import Any

import pytest

from durable.swarm_coordinator import SwarmClient, SwarmCoordinator
from swarms.models import SWARMS, SwarmSettings
from tests.world import SocketClient, World

pytestmark = pytest.mark.anyio
SWARM = "swm_01M8000000000000000000SWRM"
URL = f"ws://apiary.test/api/swarms/{SWARM}/ws"
CLASSES = {SWARMS: SwarmCoordinator}
INTERVAL_MS = 500


async def swarm(world: World, **settings: Any) -> SwarmClient:
    client = SwarmClient.for_swarm(world.services, SWARM)
    spec = {"broadcast_interval_ms": INTERVAL_MS, **settings}
    await client.create({"id": SWARM, "name": "s", "settings": SwarmSettings(**spec).model_dump()})
    return client


async def join(world: World, token: str, n: int) -> SocketClient:
    device = await world.connect(SWARMS, SWARM, f"{URL}?persistentId=p{n}")
    await device.send_json("JOIN", {"invite_token": token})
    assert [f["type"] for f in device.frames()] == ["WELCOME", "STATE"]
    return device


async def broadcast(world: World) -> None:
    """Let the coalescing interval pass and fire the alarm that sends the broadcast."""
    world.clock.advance(INTERVAL_MS)
    await world.alarm(SWARMS, SWARM)


async def test_a_broadcast_is_one_frame_for_every_socket_at_the_same_version(
    tmp_path: Path,
) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        client = await swarm(world)
        token = (await client.invite(10, 3600))["token"]
        a = await join(world, token, 1)
        b = await join(world, token, 2)
        await broadcast(world)  # a learns of b; b has that version already
        assert [f["data"]["devices"] for f in a.frames("STATE")[1:]] == [
            [{"id": b.frames("WELCOME")[0]["data"]["device_id"], "name": None,
              "status": "online", "quota": 2}]
        ]  # fmt: skip
        assert len(b.frames("STATE")) == 1
        c = await join(world, token, 3)  # joins after that broadcast: has a newer version
        await b.send_json("BENCHMARK_RESULT", {"score": 5})
        sent = {x: len(x.connection.received) for x in (a, b, c)}
        await broadcast(world)
        fresh = {x: x.connection.received[sent[x] :] for x in (a, b, c)}
        assert [len(f) for f in fresh.values()] == [1, 1, 1]
        # a and b had the same version: one frame, serialised once, sent to both.
        assert fresh[a][0] is fresh[b][0]
        since_last = a.frames("STATE")[-1]["data"]
        assert len(since_last["devices"]) == 2  # b's score (not in STATE) and c, who joined
        assert since_last["since"] == b.frames("STATE")[0]["data"]["version"]
        # c was sent the state when it joined: only the change since then.
        newer = c.frames("STATE")[-1]["data"]
        assert newer["since"] == c.frames("STATE")[0]["data"]["version"]
        assert [d["id"] for d in newer["devices"]] == [b.frames("WELCOME")[0]["data"]["device_id"]]


CAPS = {"cpuCores": 4, "memoryGB": 8, "gpuAvailable": False}


async def registered(world: World, token: str, n: int) -> SocketClient:
    device = await join(world, token, n)
    await device.send_json("DEVICE_REGISTER", {"name": f"d{n}", "capabilities": CAPS})
    return device


async def answer(device: SocketClient, done: set[str]) -> None:
    """Complete every chunk handed to `device` and not answered yet."""
    for frame in device.frames("JOB_ASSIGN"):
        chunk_id = frame["data"]["chunkId"]
        if chunk_id not in done:
            done.add(chunk_id)
            result = {"chunk": chunk_id}
            await device.send_json(
                "JOB_COMPLETE", {"chunkId": chunk_id, "result": result, "durationMs": 40}
            )


async def tick(world: World, ms: int) -> None:
    """Time passes; the alarm fires if it came due."""
    world.clock.advance(ms)
    at = world.alarm_at(SWARMS, SWARM)
    if at is not None and at <= world.clock.ms:
        await world.alarm(SWARMS, SWARM)


def rows_written(world: World) -> int:
    return int(world.meter.by_class["SwarmCoordinator"]["do_rows_written"])


async def test_a_busy_swarm_writes_about_one_row_per_chunk(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        client = await swarm(world)
        token = (await client.invite(10, 3600))["token"]
        devices = [await registered(world, token, n) for n in range(4)]
        job = await client.add_job(
            {"name": "j", "chunks": [{"n": n} for n in range(400)], "requirements": {},
             "chunk_timeout_s": 60}
        )  # fmt: skip
        before, done = rows_written(world), set[str]()
        while len(done) < 400:
            for device in devices:
                await answer(device, done)
            await tick(world, 50)
        await tick(world, INTERVAL_MS)  # the last counts go out with a broadcast
        per_chunk = (rows_written(world) - before) / 400
        assert per_chunk <= 1.1, per_chunk  # 5 before: assignment, job, device, document
        record = await client.get_job(job["id"])
        assert (record["done"], record["failed"], record["status"]) == (400, 0, "completed")
        assert all(c["result"] == {"chunk": c["id"]} for c in record["chunks"])
        # Devices saw the counts and the quotas that grew (both written in batches).
        last = devices[0].frames("STATE")[-1]["data"]
        assert [(j["done"], j["total"]) for j in last["jobs"]] == [(400, 400)]
        view = await client.snapshot()
        assert {d["quota"] for d in view["devices"]} == {16}
        assert {d["chunks_in_flight"] for d in view["devices"]} == {0}
        states = [f["data"] for d in devices for f in d.frames("STATE")]
        assert {d["quota"] for s in states for d in s["devices"]} >= {16}


def evict(world: World) -> None:
    """The instance goes (hibernation, or a crash after its last commit); sockets stay."""
    host = world.hosts[SWARMS]
    host._close(host._slot_for(SWARM))


async def test_chunks_in_flight_live_on_the_connection(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        client = await swarm(world)
        token = (await client.invite(10, 3600))["token"]
        a = await registered(world, token, 1)
        job = await client.add_job(
            {"name": "j", "chunks": [{"n": n} for n in range(3)], "requirements": {},
             "chunk_timeout_s": 60}
        )  # fmt: skip
        held = [f["data"]["chunkId"] for f in a.frames("JOB_ASSIGN")]
        assert held == [f"{job['id']}.0", f"{job['id']}.1"]  # its quota
        record = await client.get_job(job["id"])
        assert [(c["status"], c["attempts"]) for c in record["chunks"]] == [
            ("assigned", 1), ("assigned", 1), ("pending", 0)]  # fmt: skip
        evict(world)  # a new instance knows what a holds from its socket
        await a.send_json("JOB_COMPLETE", {"chunkId": held[0], "result": 1})
        assert [f["data"]["chunkId"] for f in a.frames("JOB_ASSIGN")][2:] == [f"{job['id']}.2"]
        await a.close()  # what it held (chunks 1 and 2) waits for the next device
        b = await registered(world, token, 2)
        handed = sorted(f["data"]["chunkId"] for f in b.frames("JOB_ASSIGN"))
        assert handed == [f"{job['id']}.1", f"{job['id']}.2"]
        evict(world)  # with the count not written yet: it is counted again from the chunks
        record = await client.get_job(job["id"])
        assert record["done"] == 1
        b_id = b.frames("WELCOME")[0]["data"]["device_id"]
        assert [c["device_id"] for c in record["chunks"]][1:] == [b_id, b_id]
        assert [c["attempts"] for c in record["chunks"]] == [1, 1, 1]  # a's were not counted


async def test_a_chunk_fails_after_five_missed_deadlines(tmp_path: Path) -> None:
    async with World(tmp_path, classes=CLASSES) as world:
        client = await swarm(world)
        token = (await client.invite(10, 3600))["token"]
        a = await registered(world, token, 1)
        job = await client.add_job(
            {"name": "j", "chunks": [{"n": 0}], "requirements": {}, "chunk_timeout_s": 1}
        )
        for attempt in range(1, 6):
            assert len(a.frames("JOB_ASSIGN")) == attempt  # handed out again each time
            await tick(world, 1000)  # the deadline passes: the alarm takes it back
        (chunk,) = (await client.get_job(job["id"]))["chunks"]
        assert (chunk["status"], chunk["attempts"], chunk["error"]) == (
            "failed", 5, "deadline missed")  # fmt: skip
        await tick(world, INTERVAL_MS)
        assert (await client.get_job(job["id"]))["status"] == "completed_with_failures"
        view = await client.snapshot()
        assert [d["quota"] for d in view["devices"]] == [1]  # halved at each miss


async def test_a_device_timed_out_then_closed_goes_offline_once(tmp_path: Path) -> None:
    """The sweep hangs up a silent device; the close that follows is the same departure."""
    async with World(tmp_path, classes=CLASSES) as world:
        client = await swarm(world, heartbeat_timeout_s=5)
        token = (await client.invite(10, 3600))["token"]
        a = await registered(world, token, 1)
        await client.add_job(
            {"name": "j", "chunks": [{"n": n} for n in range(4)], "requirements": {},
             "chunk_timeout_s": 600}
        )  # fmt: skip
        for _ in range(12):  # silent past the timeout: the sweep hangs up
            await tick(world, 1000)
        await a.close(1006)  # and then its connection ends
        await tick(world, INTERVAL_MS)
        a_id = a.frames("WELCOME")[0]["data"]["device_id"]
        log = [line["message"] for line in (await client.snapshot())["log"]]
        assert [m for m in log if m.startswith(f"device {a_id} offline")] == [
            f"device {a_id} offline: heartbeat timeout; 2 chunks back"
        ]
