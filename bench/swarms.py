"""Swarms: broadcast fan-out latency to 1,000 clients against a bare `websockets` broadcast
server in the same run, and what 100 idle or busy devices cost per device-hour on the meter
against the naive design (every 10 s heartbeat a request, a broadcast alarm every 2 s).
"""

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from apiary_local.device_agent import DeviceAgent, echo
from tests.harness import (
    JWT_SECRET,
    ROOT,
    DevServer,
    admin_token,
    free_port,
    project_config,
    wait_up,
    write_dev_vars,
)

CLIENTS = 1000
ROUNDS = 10
DEVICES = 100
WINDOW_S = 30
HEARTBEAT_S = 10
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
# The naive design, per device-hour: a request per heartbeat (each writing last_seen), and a
# broadcast alarm every 2 s shared by the swarm's devices (each writing its bookkeeping row).
NAIVE_REQUESTS = 3600 / HEARTBEAT_S + 3600 / 2 / DEVICES
NAIVE_ROWS = 3600 / HEARTBEAT_S + 3600 / 2 / DEVICES


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


async def _fan_out(clients: list[Any], trigger: Any, change: str, kind: str) -> list[float]:
    """Latencies (ms) from sending one change to each client receiving the broadcast."""
    arrivals: list[float] = []

    async def listen(ws: Any) -> None:
        while True:
            raw = await ws.recv()
            if raw != "pong" and json.loads(raw)["type"] == kind:
                arrivals.append(time.perf_counter())
                return

    listeners = [asyncio.create_task(listen(ws)) for ws in clients]
    await asyncio.sleep(0.05)
    sent = time.perf_counter()
    await trigger.send(change)
    await asyncio.wait_for(asyncio.gather(*listeners), 30)
    return [(at - sent) * 1000 for at in arrivals]


async def _connect(url: str) -> Any:
    """A client as the fan-out measures it: it answers the server's keepalive pings while it is
    not reading (no cap on buffered frames: during the joins nobody reads the broadcasts)."""
    return await websockets.connect(url, max_size=2**22, max_queue=None)


async def _heartbeats(clients: list[Any]) -> None:
    """`ping` every HEARTBEAT_S from each client, as devices do, spread evenly over the
    interval rather than in bursts (both servers answer `pong`)."""
    while True:
        for ws in list(clients):
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send("ping")
            await asyncio.sleep(HEARTBEAT_S / max(1, len(clients)))
        await asyncio.sleep(0.1)  # while there are no clients yet


async def _join(server: DevServer, clients: list[Any]) -> None:
    """CLIENTS devices joined to one swarm (into `clients`, as each joins), the joins' own
    broadcasts drained."""
    async with httpx.AsyncClient(base_url=server.url, headers=ADMIN, timeout=60) as client:
        body = {"name": "fan-out", "settings": {"broadcast_interval_ms": 100}}
        swarm_id = (await client.post("/api/swarms", json=body)).json()["id"]
        invite = await client.post(f"/api/swarms/{swarm_id}/invites", json={"max_uses": CLIENTS})
        token = invite.json()["token"]
    url = f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws"
    for n in range(CLIENTS):
        ws = await _connect(f"{url}?persistentId=c{n}")
        await ws.send(json.dumps({"type": "JOIN", "data": {"invite_token": token}}))
        while json.loads(await ws.recv())["type"] != "STATE":
            pass
        clients.append(ws)
    await asyncio.sleep(1)  # the joins' own broadcasts go out
    for ws in clients:  # drain them
        with contextlib.suppress(TimeoutError):
            while True:
                await asyncio.wait_for(ws.recv(), 0.01)


async def _fan_outs(port: int, server: DevServer) -> tuple[list[float], list[float]]:
    """(bare, apiary) latencies, their rounds taking turns: a noisy machine weighs on both."""
    bare = [await _connect(f"ws://127.0.0.1:{port}") for _ in range(CLIENTS)]
    beating = [asyncio.create_task(_heartbeats(bare))]
    apiary: list[Any] = []
    beating.append(asyncio.create_task(_heartbeats(apiary)))
    await _join(server, apiary)
    bare_ms: list[float] = []
    apiary_ms: list[float] = []
    for n in range(ROUNDS):
        change = {"type": "CHANGE", "data": {"score": n + 1}}
        bare_ms += await _fan_out(bare[1:], bare[0], json.dumps(change), "STATE")
        await asyncio.sleep(0.3)
        change["type"] = "BENCHMARK_RESULT"
        apiary_ms += await _fan_out(apiary[1:], apiary[0], json.dumps(change), "STATE")
        await asyncio.sleep(0.3)
    for task in beating:
        task.cancel()
    for ws in bare + apiary:
        await ws.close()
    return bare_ms, apiary_ms


def _dev_server(work: Path, name: str) -> DevServer:
    project = work / name
    project.mkdir()
    server = DevServer(project / "state", config=project_config(project), args=("--no-cron",))
    write_dev_vars(project, JWT_SECRET=JWT_SECRET, PUBLIC_URL=server.url)
    return server.start()


def _one_at_a_time() -> Any:
    """A handler that runs one chunk at a time, as a CPU-bound device would."""
    lock = asyncio.Lock()

    async def handler(payload: Any) -> Any:
        async with lock:
            return await echo(payload)

    return handler


async def _device_hour(server: DevServer, busy: bool) -> dict[str, float]:
    """Meter figures per device-hour for DEVICES agents over WINDOW_S seconds."""
    async with httpx.AsyncClient(base_url=server.url, headers=ADMIN, timeout=60) as client:
        swarm_id = (await client.post("/api/swarms", json={"name": "cost"})).json()["id"]
        invite = await client.post(f"/api/swarms/{swarm_id}/invites", json={"max_uses": DEVICES})
        stop = asyncio.Event()
        agents = [
            DeviceAgent(server.url, swarm_id, token=invite.json()["token"], name=f"d{n}",
                        heartbeat_s=HEARTBEAT_S, handler=_one_at_a_time())
            for n in range(DEVICES)
        ]  # fmt: skip
        tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
        await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 120)
        if busy:  # each device always has work: one-second chunks, more than the window holds
            chunks = [{"ms": 1000}] * (DEVICES * (WINDOW_S + 10))
            body = {"name": "busy", "chunks": chunks, "chunk_timeout_s": 60}
            assert (await client.post(f"/api/swarms/{swarm_id}/jobs", json=body)).is_success
        await asyncio.sleep(2)
        await client.post("/__meter/reset")
        await asyncio.sleep(WINDOW_S)
        meter = (await client.get("/__meter")).json()
        stop.set()
        await asyncio.gather(*tasks)
    counts = meter["objects"].get("SwarmCoordinator", {})
    scale = 3600 / WINDOW_S / DEVICES
    invocations = (
        sum(counts.get(k, 0) for k in ("do_requests", "do_alarms"))
        + counts.get("do_ws_messages", 0) / 20
    )  # Cloudflare bills 20 incoming WebSocket messages as one request
    return {
        "invocations": round(invocations * scale, 2),
        "rows_written": round(counts.get("do_rows_written", 0) * scale, 2),
        "auto_responses": round(counts.get("do_ws_auto_responses", 0) * scale, 2),
        "alarms": round(counts.get("do_alarms", 0) * scale, 2),
        "messages_in": round(counts.get("do_ws_messages", 0) * scale, 2),
    }


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "bench.baseline_broadcast", str(port)], cwd=ROOT)
    try:
        wait_up(f"http://127.0.0.1:{port}")
        server = _dev_server(work, "fanout")
        try:
            bare_latencies, apiary_latencies = asyncio.run(_fan_outs(port, server))
        finally:
            server.stop()
    finally:
        bare.terminate()
        bare.wait(10)
    costs = {}
    for mode in ("idle", "busy"):
        server = _dev_server(work, mode)
        try:
            costs[mode] = asyncio.run(_device_hour(server, busy=mode == "busy"))
        finally:
            server.stop()
    apiary, baseline = _quantiles(apiary_latencies), _quantiles(bare_latencies)
    naive_busy_invocations = NAIVE_REQUESTS + costs["busy"]["messages_in"] / 20
    return {
        "benchmark": "swarm broadcast fan-out and cost per device-hour",
        "fan_out": {
            "clients": CLIENTS,
            "rounds": ROUNDS,
            "apiary_ms": apiary,
            "bare_websockets_ms": baseline,
            "p50_ratio": round(apiary["p50"] / baseline["p50"], 2),
            "p99_ratio": round(apiary["p99"] / baseline["p99"], 2),
        },
        "per_device_hour": {
            "devices": DEVICES,
            "window_s": WINDOW_S,
            "heartbeat_s": HEARTBEAT_S,
            "idle": costs["idle"],
            "busy": costs["busy"],
            "naive_idle": {"invocations": NAIVE_REQUESTS, "rows_written": NAIVE_ROWS},
            "idle_invocations_vs_naive": round(costs["idle"]["invocations"] / NAIVE_REQUESTS, 4),
            "idle_rows_vs_naive": round(costs["idle"]["rows_written"] / NAIVE_ROWS, 4),
            "busy_invocations_vs_naive_busy": round(
                costs["busy"]["invocations"] / naive_busy_invocations, 4
            ),
        },
    }
