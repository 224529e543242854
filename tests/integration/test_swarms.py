"""Swarms through `apiary dev` at scale and over time: real WebSocket clients (device agents
and raw sockets). Authentication and bad input are in test_swarm_security.py."""

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from apiary_local.device_agent import DeviceAgent, echo
from tests.harness import APIARY, DevServer
from tests.swarm_client import (
    ADMIN,
    create_swarm,
    job,
    receive,
    send,
    snapshot,
    start_agents,
    submit,
    token,
    wait_job,
    ws_url,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_two_hundred_devices_finish_two_thousand_chunks_despite_twenty_drops(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server, heartbeat_timeout_s=20, broadcast_interval_ms=500)
    invite_token = token(server, swarm_id, max_uses=200)
    stop, drop = asyncio.Event(), asyncio.Event()
    agents = [
        DeviceAgent(server.url, swarm_id, token=invite_token, name=f"d{n}", heartbeat_s=5)
        for n in range(200)
    ]
    tasks = [asyncio.create_task(a.run(drop if n < 20 else stop)) for n, a in enumerate(agents)]
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 120)
    job_id = submit(
        server, swarm_id, [{"n": n, "ms": 100} for n in range(2000)], chunk_timeout_s=30
    )
    while sum(len(a.completed) for a in agents) < 300:  # noqa: ASYNC110 (mid-run, by the devices)
        await asyncio.sleep(0.005)
    for agent in agents[:20]:
        agent.drop()  # the first twenty vanish without a close frame ...
    drop.set()  # ... and never come back
    record = await wait_job(server, swarm_id, job_id, done=2000, timeout_s=240)
    await asyncio.sleep(1)
    record = await job(server, swarm_id, job_id)
    assert record["status"] == "completed"
    assert (record["done"], record["failed"]) == (2000, 0)
    assert [c["id"] for c in record["chunks"]] == [f"{job_id}.{n}" for n in range(2000)]
    assert {c["status"] for c in record["chunks"]} == {"done"}
    assert all(c["result"] == {"echo": {"n": n, "ms": 100}} for n, c in enumerate(record["chunks"]))
    dropped = {a.credentials.device_id for a in agents[:20]}
    view = snapshot(server, swarm_id)
    statuses = {d["id"]: d["status"] for d in view["devices"]}
    assert len(statuses) == 200
    assert {statuses[d] for d in dropped} == {"offline"}
    assert sum(s == "online" for s in statuses.values()) == 180
    assert sum(len(a.completed) for a in agents) >= 2000
    # Each dropped device went offline (on a loaded machine it may also have timed out and
    # resumed before); what it held went to others and completed, exactly once (above).
    offline = {
        d
        for line in view["log"]
        for d in dropped
        if line["message"].startswith(f"device {d} offline")
    }
    assert offline == dropped
    stop.set()
    await asyncio.gather(*tasks)


async def test_restart_devices_resume_and_the_swarm_comes_back(
    dev_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server, heartbeat_timeout_s=10)
    invite_token = token(server, swarm_id, max_uses=10)
    stop = asyncio.Event()
    agents = [
        DeviceAgent(server.url, swarm_id, token=invite_token, name=f"d{n}", heartbeat_s=2,
                    credentials_path=tmp_path / f"device{n}.json", backoff_s=(0.1, 1.0))
        for n in range(10)
    ]  # fmt: skip
    tasks = await start_agents(agents, stop)
    ids = {a.credentials.device_id for a in agents}
    job_id = submit(server, swarm_id, [{"n": n, "ms": 50} for n in range(300)], chunk_timeout_s=5)
    await wait_job(server, swarm_id, job_id, done=50)
    server.kill()
    for agent in agents:
        agent.connected.clear()
    server.start()
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 60)
    record = await wait_job(server, swarm_id, job_id, done=300, timeout_s=90)
    assert (record["done"], record["failed"]) == (300, 0)
    view = snapshot(server, swarm_id)
    assert {d["id"] for d in view["devices"]} == ids  # resumed, not joined again
    assert {a.credentials.device_id for a in agents} == ids
    assert any("resumed" in line["message"] for line in view["log"])
    assert [j["id"] for j in view["jobs"]] == [job_id]
    stop.set()
    await asyncio.gather(*tasks)


async def test_heartbeats_never_wake_the_object_and_silence_goes_offline(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server, heartbeat_timeout_s=2)
    stop = asyncio.Event()
    talker = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), heartbeat_s=0.2)
    silent = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), heartbeat_s=3600)
    tasks = await start_agents([talker, silent], stop)
    before = server.meter()["objects"]["SwarmCoordinator"]

    def answered() -> int:
        during = server.meter()["objects"]["SwarmCoordinator"]
        return during.get("do_ws_auto_responses", 0) - before.get("do_ws_auto_responses", 0)

    while answered() < 4:  # noqa: ASYNC110 (the meter is another process's)
        await asyncio.sleep(0.05)
    during = server.meter()["objects"]["SwarmCoordinator"]
    assert during.get("do_ws_messages", 0) == before.get("do_ws_messages", 0)
    submit(server, swarm_id, [{"ms": 60_000}] * 2 + [{"n": n} for n in range(20)])
    # The silent device goes stale, then offline: closed, its chunks handed to the talker.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        statuses = {d["id"]: d["status"] for d in snapshot(server, swarm_id)["devices"]}
        if statuses[silent.credentials.device_id] == "offline":
            break
        await asyncio.sleep(0.1)
    assert statuses == {talker.credentials.device_id: "online",
                        silent.credentials.device_id: "offline"}  # fmt: skip
    stop.set()
    await asyncio.gather(*tasks)


async def test_faster_devices_get_more_chunks_and_gpu_jobs_go_to_gpus(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    stop = asyncio.Event()

    def slowed(factor: float) -> Callable[[Any], Any]:
        async def handler(payload: Any) -> Any:
            await asyncio.sleep(0.01 * factor)
            return await echo(payload)

        return handler

    fast = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), handler=slowed(1),
                       score=100, name="fast")  # fmt: skip
    slow = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), handler=slowed(25),
                       score=100, name="slow")  # fmt: skip
    gpu_box = {"cpuCores": 4, "memoryGB": 8, "gpuAvailable": True}
    gpu = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), name="gpu",
                      capabilities=gpu_box)  # fmt: skip
    tasks = await start_agents([fast, slow], stop)
    # 10 ms a chunk against 250: wide enough that the round trip (longer on a loaded
    # machine) still leaves the fast device well ahead.
    job_id = submit(server, swarm_id, [{"n": n} for n in range(200)])
    record = await wait_job(server, swarm_id, job_id, done=200)
    by_device = {a.credentials.device_id: 0 for a in (fast, slow)}
    for chunk in record["chunks"]:
        by_device[chunk["device_id"]] += 1
    assert by_device[fast.credentials.device_id] > 3 * by_device[slow.credentials.device_id]
    tasks += await start_agents([gpu], stop)
    gpu_job = submit(server, swarm_id, [{"n": n} for n in range(30)], requirements={"gpu": True})
    record = await wait_job(server, swarm_id, gpu_job, done=30)
    assert {c["device_id"] for c in record["chunks"]} == {gpu.credentials.device_id}
    stop.set()
    await asyncio.gather(*tasks)


async def test_broadcasts_are_coalesced_and_an_idle_swarm_sets_no_alarm(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server, broadcast_interval_ms=500, heartbeat_timeout_s=4)

    async def heartbeats(*sockets: Any) -> None:
        while True:
            for ws in sockets:
                await ws.send("ping")
            await asyncio.sleep(0.5)

    async with websockets.connect(ws_url(server, swarm_id, "watcher")) as watcher:
        beating = asyncio.create_task(heartbeats(watcher))
        await send(watcher, "JOIN", {"invite_token": token(server, swarm_id)})
        await receive(watcher, "WELCOME")
        await receive(watcher, "STATE")  # the full snapshot on joining
        async with websockets.connect(ws_url(server, swarm_id, "busy")) as busy:
            await send(busy, "JOIN", {"invite_token": token(server, swarm_id)})
            await receive(busy, "WELCOME")
            beating.cancel()
            beating = asyncio.create_task(heartbeats(watcher, busy))
            started = time.monotonic()
            for n in range(40):  # forty changes in about a second
                await send(busy, "BENCHMARK_RESULT", {"score": n + 1})
                await asyncio.sleep(0.025)
            states = []
            with contextlib.suppress(TimeoutError):
                while True:
                    states.append(await receive(watcher, "STATE", timeout_s=1.2))
            elapsed = time.monotonic() - started
        assert 1 <= len(states) <= elapsed / 0.5 + 1  # at most one per interval
        assert all(not s["full"] for s in states)  # deltas
        last = states[-1]
        assert [d["name"] for d in last["devices"]] == [None]  # only what changed: the busy one
        # The collection ended on 1.2 s of silence: no change, no broadcast. The busy device
        # leaving is a change: one more delta, saying so.
        gone = await receive(watcher, "STATE", timeout_s=3)
        assert [d["status"] for d in gone["devices"]] == ["offline"]
        beating.cancel()
    await asyncio.sleep(1.5)  # the closes are handled; the last alarm clears itself
    alarms = server.meter()["objects"]["SwarmCoordinator"].get("do_alarms", 0)
    await asyncio.sleep(3.0)  # three sweep intervals: a connected swarm would have swept
    assert server.meter()["objects"]["SwarmCoordinator"].get("do_alarms", 0) == alarms


@pytest.mark.timeout(120)
def test_the_device_cli_joins_runs_chunks_and_resumes(
    dev_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    creds = tmp_path / "device.json"
    base = [str(APIARY), "device"]
    common = [server.url, "--swarm", swarm_id, "--credentials", str(creds), "--name", "cli"]
    join = [*base, "join", *common, "--heartbeat-s", "1"]
    invite = {**os.environ, "APIARY_INVITE_TOKEN": token(server, swarm_id)}
    output = tmp_path / "device.log"
    with (
        output.open("wb") as log,
        subprocess.Popen(join, stdout=log, stderr=log, env=invite) as device,
    ):
        try:
            job_id = submit(server, swarm_id, [{"n": n} for n in range(5)])
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and device.poll() is None:
                record = httpx.get(
                    f"{server.url}/api/swarms/{swarm_id}/jobs/{job_id}", headers=ADMIN
                ).json()
                if record["done"] == 5:
                    break
                time.sleep(0.1)
            why = f"device exit {device.poll()}:\n{output.read_text()}\n{server.log()[-3000:]}"
            assert record["done"] == 5, why
        finally:
            device.terminate()
    saved = json.loads(creds.read_text())
    assert saved["device_id"].startswith("dev_")
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    with subprocess.Popen([*base, "resume", *common], stdout=subprocess.DEVNULL) as device:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                devices = snapshot(server, swarm_id)["devices"]
                if devices[0]["status"] == "online" and "resumed" in str(
                    snapshot(server, swarm_id)["log"]
                ):
                    break
                time.sleep(0.1)
            assert [d["id"] for d in devices] == [saved["device_id"]]
            assert devices[0]["status"] == "online"
        finally:
            device.terminate()
