"""Swarms through `apiary dev`: real WebSocket clients (the device agent and raw sockets)."""

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from apiary_local.device_agent import DeviceAgent, echo
from swarms import credentials
from tests.harness import APIARY, DevServer, admin_token

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
ADMIN = {"Authorization": f"Bearer {admin_token()}"}


def create_swarm(server: DevServer, **settings: Any) -> str:
    body = {"name": "test swarm", "settings": settings}
    response = httpx.post(f"{server.url}/api/swarms", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def invite(server: DevServer, swarm_id: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/swarms/{swarm_id}/invites", headers=ADMIN, json=body)


def token(server: DevServer, swarm_id: str, **body: Any) -> str:
    response = invite(server, swarm_id, **body)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def snapshot(server: DevServer, swarm_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/swarms/{swarm_id}", headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def submit(server: DevServer, swarm_id: str, chunks: list, **body: Any) -> str:
    response = httpx.post(
        f"{server.url}/api/swarms/{swarm_id}/jobs",
        headers=ADMIN,
        json={"name": "job", "chunks": chunks, **body},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def job(server: DevServer, swarm_id: str, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=ADMIN, timeout=30) as client:
        response = await client.get(f"{server.url}/api/swarms/{swarm_id}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_job(
    server: DevServer, swarm_id: str, job_id: str, done: int, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = await job(server, swarm_id, job_id)
        if record["done"] >= done:
            return record
        await asyncio.sleep(0.2)
    raise AssertionError(f"job at {record['done']}/{record['total_chunks']}, wanted {done}")


def ws_url(server: DevServer, swarm_id: str, pid: str = "p1") -> str:
    return f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws?persistentId={pid}"


async def send(ws: Any, kind: str, data: dict[str, Any]) -> None:
    await ws.send(json.dumps({"type": kind, "data": data}))


async def receive(ws: Any, kind: str, timeout_s: float = 10) -> dict[str, Any]:
    """The next frame of `kind`, skipping others (STATE, SYSTEM_LOG, pong)."""
    deadline = time.monotonic() + timeout_s
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        if raw == "pong":
            continue
        message = json.loads(raw)
        if message["type"] == kind:
            return message["data"]


async def start_agents(agents: list[DeviceAgent], stop: asyncio.Event) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 90)
    return tasks


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
    # The dropped devices held chunks when they vanished; those went to others and completed.
    handed_back = [
        int(line["message"].rsplit("; ", 1)[1].split()[0])
        for line in view["log"]
        if any(line["message"].startswith(f"device {d} offline") for d in dropped)
    ]
    assert len(handed_back) == 20
    assert sum(handed_back) > 0
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


async def test_invites_rate_limit_expiry_and_uses(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    first = invite(server, swarm_id, max_uses=2)
    assert first.json()["join_url"] == f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws"
    expiring = token(server, swarm_id, ttl_s=1)
    for _ in range(3):
        assert invite(server, swarm_id).status_code == 201
    limited = invite(server, swarm_id)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"]["code"] == "rate_limited"
    assert invite(server, create_swarm(server)).status_code == 201  # per swarm

    two_uses = first.json()["token"]
    for pid in ("a", "b"):
        async with websockets.connect(ws_url(server, swarm_id, pid)) as ws:
            await send(ws, "JOIN", {"invite_token": two_uses})
            assert (await receive(ws, "WELCOME"))["device_id"].startswith("dev_")
    async with websockets.connect(ws_url(server, swarm_id, "c")) as ws:
        await send(ws, "JOIN", {"invite_token": two_uses})
        assert await receive(ws, "ERROR") == {"code": "auth_failed", "message": "invite used up"}
        await asyncio.sleep(1.1)
        await send(ws, "JOIN", {"invite_token": expiring})
        assert await receive(ws, "ERROR") == {"code": "auth_failed", "message": "invite expired"}
        await send(ws, "JOIN", {"invite_token": "not-an-invite-token"})
        assert await receive(ws, "ERROR") == {"code": "auth_failed", "message": "unknown invite"}
    assert len(snapshot(server, swarm_id)["devices"]) == 2
    small = create_swarm(server, max_devices=1)
    many = token(server, small, max_uses=5)
    async with websockets.connect(ws_url(server, small, "a")) as first:
        await send(first, "JOIN", {"invite_token": many})
        await receive(first, "WELCOME")
        async with websockets.connect(ws_url(server, small, "b")) as second:
            await send(second, "JOIN", {"invite_token": many})
            full = await receive(second, "ERROR")
            assert full == {"code": "swarm_full", "message": "at most 1 devices"}
    missing = invite(server, "swm_01M8000000000000000000000")
    assert missing.status_code == 404


async def test_resume_rejects_replays_bad_signatures_and_stale_timestamps(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    async with websockets.connect(ws_url(server, swarm_id)) as ws:
        await send(ws, "JOIN", {"invite_token": token(server, swarm_id)})
        welcome = await receive(ws, "WELCOME")
    device_id, secret = welcome["device_id"], welcome["device_secret"]

    def resume(ts: int, nonce: str, key: str = secret) -> dict[str, Any]:
        signature = credentials.sign(key, device_id, ts, nonce)
        return {"device_id": device_id, "ts": ts, "nonce": nonce, "signature": signature}

    good = resume(int(time.time() * 1000), "nonce-0001")
    cases = [
        (good, None),
        (good, "nonce reused"),
        (resume(int(time.time() * 1000), "nonce-0002", key="wrong-secret"), "bad signature"),
        (resume(int(time.time() * 1000) - 120_000, "nonce-0003"), "stale timestamp"),
        ({**good, "device_id": "dev_nobody"}, "unknown device"),
    ]
    for data, refusal in cases:
        async with websockets.connect(ws_url(server, swarm_id)) as ws:
            await send(ws, "RESUME", data)
            if refusal is None:
                assert (await receive(ws, "WELCOME")) == {
                    "device_id": device_id,
                    "swarm_id": swarm_id,
                    "resumed": True,
                }
            else:
                assert await receive(ws, "ERROR") == {"code": "auth_failed", "message": refusal}


async def test_bad_frames_are_refused_audited_and_end_in_a_policy_close(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server, allowed_origins=["https://app.example"])
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            ws_url(server, swarm_id), additional_headers={"Origin": "https://evil.example"}
        ):
            pass
    assert refused.value.response.status_code == 403
    async with websockets.connect(
        ws_url(server, swarm_id),
        additional_headers={"Origin": "https://app.example"},
        max_size=None,
    ) as ws:
        await send(ws, "DEVICE_REGISTER", {"name": "x", "capabilities": {}})
        assert (await receive(ws, "ERROR"))["code"] == "invalid"  # not joined yet
        await send(ws, "JOIN", {"invite_token": token(server, swarm_id)})
        await receive(ws, "WELCOME")
        bad = [
            json.dumps({"type": "LAUNCH_MISSILES", "data": {}}),
            json.dumps({"type": "BENCHMARK_RESULT", "data": {"score": "fast"}}),
            json.dumps({"type": "JOIN", "data": {"invite_token": "x" * 70_000}}),
            "{not json",
            b"\x00binary",
        ]
        codes = []
        for frame in bad:
            await ws.send(frame)
            codes.append((await receive(ws, "ERROR"))["code"])
        assert codes == ["unknown_type", "invalid", "too_large", "bad_json", "bad_json"]
        # The device still works: state untouched by the bad frames.
        await send(ws, "BENCHMARK_RESULT", {"score": 42})
        await send(ws, "SYNC", {})
        state = await receive(ws, "STATE")
        assert state["full"] is True
        for _ in range(5):
            await ws.send("{still not json")
        await ws.wait_closed()
        assert ws.close_code == 1008
    devices = snapshot(server, swarm_id)["devices"]
    assert [d["benchmark_score"] for d in devices] == [42]
    assert server.log().count("audit: bad frame") == 11
    assert "audit: upgrade refused" in server.log()


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
    await asyncio.sleep(1.0)
    during = server.meter()["objects"]["SwarmCoordinator"]
    assert during["do_ws_auto_responses"] - before.get("do_ws_auto_responses", 0) >= 4
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
    slow = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), handler=slowed(8),
                       score=100, name="slow")  # fmt: skip
    gpu_box = {"cpuCores": 4, "memoryGB": 8, "gpuAvailable": True}
    gpu = DeviceAgent(server.url, swarm_id, token=token(server, swarm_id), name="gpu",
                      capabilities=gpu_box)  # fmt: skip
    tasks = await start_agents([fast, slow], stop)
    job_id = submit(server, swarm_id, [{"n": n} for n in range(400)])
    record = await wait_job(server, swarm_id, job_id, done=400)
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


frames = st.one_of(
    st.builds(
        lambda kind, data: json.dumps({"type": kind, "data": data}),
        st.sampled_from(["JOIN", "RESUME", "DEVICE_REGISTER", "BENCHMARK_RESULT", "JOB_PROGRESS",
                         "JOB_COMPLETE", "SYNC", "STATE", "NOPE"]),
        st.dictionaries(
            st.sampled_from(["chunkId", "score", "pct", "name", "capabilities", "result",
                             "error", "durationMs", "version", "invite_token", "device_id"]),
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
            | st.lists(st.integers(), max_size=3),
            max_size=5,
        ),
    ),
    st.text(max_size=100),
    st.binary(max_size=100),
)  # fmt: skip


def test_fuzzed_frames_over_the_wire_leave_the_swarm_intact(
    dev_server: Callable[..., DevServer],
) -> None:
    """Hypothesis drives a real device socket; the object never crashes, its state holds."""
    from websockets.sync.client import connect

    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    job_id = submit(server, swarm_id, [{"n": n} for n in range(5)])
    sockets = contextlib.ExitStack()
    device: dict[str, str] = {}

    def open_socket() -> Any:
        ws = sockets.enter_context(connect(ws_url(server, swarm_id, "fuzz")))
        if not device:
            ws.send(json.dumps({"type": "JOIN", "data": {"invite_token": token(server, swarm_id)}}))
        else:
            ts, nonce = int(time.time() * 1000), credentials.new_token()[:16]
            signature = credentials.sign(device["secret"], device["id"], ts, nonce)
            data = {"device_id": device["id"], "ts": ts, "nonce": nonce, "signature": signature}
            ws.send(json.dumps({"type": "RESUME", "data": data}))
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "WELCOME":
                break
        if not device:
            device.update(id=message["data"]["device_id"], secret=message["data"]["device_secret"])
        return ws

    ws = open_socket()
    sent = 0

    @settings(max_examples=600, deadline=None)
    @given(frame=frames)
    def fuzz(frame: str | bytes) -> None:
        nonlocal ws, sent
        try:
            ws.send(frame)
        except websockets.ConnectionClosed:
            ws = open_socket()  # closed for bad frames (1008): come back as the same device
            ws.send(frame)
        sent += 1

    fuzz()
    assert sent >= 600
    time.sleep(0.5)
    view = snapshot(server, swarm_id)
    assert [d["id"] for d in view["devices"]] == [device["id"]]
    record = httpx.get(f"{server.url}/api/swarms/{swarm_id}/jobs/{job_id}", headers=ADMIN).json()
    assert record["total_chunks"] == 5
    assert record["done"] + record["failed"] <= 5
    assert all(c["status"] in {"pending", "assigned", "done", "failed"} for c in record["chunks"])
    assert "Traceback" not in server.log()
    assert "handler failed" not in server.log()
    sockets.close()


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


def test_the_device_cli_joins_runs_chunks_and_resumes(
    dev_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    server = dev_server(args=("--no-cron",))
    swarm_id = create_swarm(server)
    creds = tmp_path / "device.json"
    base = [str(APIARY), "device"]
    common = [server.url, "--swarm", swarm_id, "--credentials", str(creds), "--name", "cli"]
    join = [*base, "join", *common, "--token", token(server, swarm_id), "--heartbeat-s", "1"]
    with subprocess.Popen(join, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as device:
        try:
            job_id = submit(server, swarm_id, [{"n": n} for n in range(5)])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                record = httpx.get(
                    f"{server.url}/api/swarms/{swarm_id}/jobs/{job_id}", headers=ADMIN
                ).json()
                if record["done"] == 5:
                    break
                time.sleep(0.1)
            assert record["done"] == 5
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
