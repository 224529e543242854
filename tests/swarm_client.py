"""Helpers for swarm tests: the HTTP API and raw protocol frames over a real WebSocket."""

import asyncio
import json
import time
from typing import Any

import httpx

from apiary_local.device_agent import DeviceAgent
from tests.harness import DevServer, admin_token

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
