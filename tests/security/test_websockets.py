"""Finding 4: nothing is reachable before authentication on the swarm WebSocket."""

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ids import new_id
from tests.harness import DevServer
from tests.swarm_client import ADMIN, create_swarm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def swarm_objects(server: DevServer) -> list[Path]:
    return sorted((server.state / "objects" / "SwarmCoordinator").glob("*.sqlite"))


def swarm_meter(server: DevServer) -> dict[str, int]:
    return server.meter()["objects"].get("SwarmCoordinator", {})


def test_unknown_swarm_ids_wake_no_object(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()

    async def upgrade(swarm_id: str) -> int:
        try:
            async with connect(f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws"):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    ids = [new_id(int(time.time() * 1000), prefix="swm_") for _ in range(50)]

    async def all_upgrades() -> list[int]:
        return await asyncio.gather(*(upgrade(i) for i in ids))

    assert set(asyncio.run(all_upgrades())) == {404}
    for swarm_id in ids[:10]:  # authenticated reads of unknown ids too
        read = httpx.get(f"{server.url}/api/swarms/{swarm_id}", headers=ADMIN)
        assert read.status_code == 404
        invite = httpx.post(f"{server.url}/api/swarms/{swarm_id}/invites", headers=ADMIN)
        assert invite.status_code == 404
    assert swarm_objects(server) == []
    assert swarm_meter(server) == {}  # not one request, row or alarm


def alarm_of(path: Path) -> tuple[int, int] | None:
    # The object's own file: is an alarm still pending?
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT at_ms, retry_count FROM __apiary_alarm").fetchone()


def test_a_socket_that_never_joins_is_closed_and_keeps_no_alarm(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server()
    swarm_id = create_swarm(server, join_timeout_s=1)
    httpx.post(f"{server.url}/__meter/reset")

    async def silent() -> tuple[int | None, float]:
        async with connect(f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws") as ws:
            opened = time.monotonic()
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
            return ws.close_code, time.monotonic() - opened

    code, lasted = asyncio.run(silent())
    assert code == 4002
    assert lasted >= 0.9  # held to its join deadline, not cut before it
    # One alarm, at the deadline; the close left none behind (no presence sweeps for it).
    assert swarm_meter(server).get("do_alarms", 0) == 1
    (stored,) = swarm_objects(server)
    assert alarm_of(stored) is None


def test_failed_joins_are_rate_limited_per_swarm(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()
    swarm_id = create_swarm(server)
    invite = httpx.post(f"{server.url}/api/swarms/{swarm_id}/invites", headers=ADMIN).json()

    async def attempt(token: str) -> str:
        async with connect(f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws") as ws:
            await ws.send(json.dumps({"type": "JOIN", "data": {"invite_token": token}}))
            reply = json.loads(await ws.recv())
            return reply["data"]["code"] if reply["type"] == "ERROR" else reply["type"]

    async def storm() -> list[str]:
        guesses = [await attempt(secrets.token_urlsafe(32)) for _ in range(21)]
        return [*guesses, await attempt(invite["token"])]

    codes = asyncio.run(storm())
    assert codes[:20] == ["auth_failed"] * 20
    # Past the limit even a good invite waits for the window: guessing is throttled per swarm.
    assert codes[20:] == ["rate_limited", "rate_limited"]


def test_an_oversize_frame_is_refused_at_the_socket(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()
    swarm_id = create_swarm(server)
    httpx.post(f"{server.url}/__meter/reset")

    async def huge() -> int | None:
        url = f"ws://127.0.0.1:{server.port}/api/swarms/{swarm_id}/ws"
        async with connect(url, max_size=None) as ws:
            await ws.send("x" * (1024 * 1024))
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    assert asyncio.run(huge()) == 1009  # message too big, before it reached the object
    assert swarm_meter(server).get("do_ws_messages", 0) == 0
