"""The local runtime's Durable Object semantics, through a real `apiary dev` and the probe."""

import asyncio
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.harness import ROOT, DevServer

pytestmark = pytest.mark.slow


def wait_for(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


@pytest.mark.anyio
async def test_the_input_gate_holds_across_storage_and_opens_at_awaits(
    dev_server: Callable[..., DevServer],
) -> None:
    """As on Cloudflare: code between awaits runs alone (read-then-write with no await between
    never collides), but events interleave while one awaits (read, await, write collides)."""
    server = dev_server(probe=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        atomic = await asyncio.gather(
            *(client.post("/probe/a/append_atomic", json={"value": f"v{i}"}) for i in range(40))
        )
        assert [r.status_code for r in atomic] == [200] * 40
        assert sorted(r.json()["seq"] for r in atomic) == list(range(1, 41))
        entries = (await client.get("/probe/a/entries")).json()
        assert sorted(e["value"] for e in entries) == sorted(f"v{i}" for i in range(40))
        racing = await asyncio.gather(
            *(
                client.post("/probe/b/append", json={"value": f"r{i}", "together": 10})
                for i in range(10)
            )
        )
    # All ten read the same count before any wrote: one insert wins, the rest collide.
    assert sorted(r.status_code for r in racing) == [200] + [500] * 9


def test_acknowledged_writes_survive_sigkill(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    for i in range(25):
        response = httpx.post(f"{server.url}/probe/k/append", json={"value": f"w{i}"})
        assert response.status_code == 200
    server.kill()
    server.start()
    entries = httpx.get(f"{server.url}/probe/k/entries").json()
    assert [e["value"] for e in entries] == [f"w{i}" for i in range(25)]


def test_alarm_persists_across_a_restart(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    armed = httpx.post(f"{server.url}/probe/p/arm", json={"in_ms": 2500}).json()["at_ms"]
    assert httpx.get(f"{server.url}/probe/p/alarm").json() == {"runs": [], "alarm": armed}
    server.kill()
    server.start()
    state = wait_for(
        lambda: (s := httpx.get(f"{server.url}/probe/p/alarm").json())["runs"] and s, 10
    )
    assert len(state["runs"]) == 1
    assert state["runs"][0]["at_ms"] >= armed
    assert state["alarm"] is None


def test_overdue_alarm_fires_at_start(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    armed = httpx.post(f"{server.url}/probe/o/arm", json={"in_ms": 300}).json()["at_ms"]
    server.kill()
    time.sleep(1.0)  # the alarm falls due while nothing runs
    server.start()
    started = time.time() * 1000
    state = wait_for(
        lambda: (s := httpx.get(f"{server.url}/probe/o/alarm").json())["runs"] and s, 5
    )
    assert len(state["runs"]) == 1
    assert state["runs"][0]["at_ms"] >= armed
    assert state["runs"][0]["at_ms"] - started < 2000


def test_alarm_interrupted_mid_handler_fires_again(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    httpx.post(f"{server.url}/probe/i/arm", json={"in_ms": 0, "slow_ms": 20_000})
    files = list((server.state / "objects" / "Probe").glob("*.sqlite"))
    assert len(files) == 1

    def runs_on_disk() -> int:
        with closing(sqlite3.connect(files[0])) as db:
            return db.execute("SELECT COUNT(*) FROM alarm_runs").fetchone()[0]

    wait_for(runs_on_disk, 5)  # the handler started and flushed before its slow call
    server.kill()
    server.start()
    state = wait_for(
        lambda: len((s := httpx.get(f"{server.url}/probe/i/alarm").json())["runs"]) >= 2 and s, 10
    )
    assert [r["retry_count"] for r in state["runs"]] == [0, 0]
    assert state["alarm"] is None


def test_raising_alarm_is_retried_with_backoff(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    httpx.post(f"{server.url}/probe/r/arm", json={"in_ms": 0, "failures": 2})
    state = wait_for(
        lambda: len((s := httpx.get(f"{server.url}/probe/r/alarm").json())["runs"]) >= 3 and s,
        15,
        0.2,
    )
    runs = state["runs"]
    assert [r["retry_count"] for r in runs] == [0, 1, 2]
    first_gap = runs[1]["at_ms"] - runs[0]["at_ms"]
    second_gap = runs[2]["at_ms"] - runs[1]["at_ms"]
    # Never before the backoff (2 s, then 4 s); how much later depends on the machine's load.
    assert first_gap >= 2000
    assert second_gap >= 4000
    assert state["alarm"] is None  # succeeded on the third run: nothing left to run
    assert '"alarm failed; retrying"' in server.log()


@pytest.mark.anyio
async def test_websocket_hibernation_and_auto_response(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(probe=True, args=("--evict-after", "0.3"))
    ws_url = server.url.replace("http://", "ws://")
    async with connect(f"{ws_url}/probe/h/ws?who=alice") as ws:
        assert await ws.recv() == "welcome"
        before = server.meter()["totals"]
        await ws.send("ping")
        assert await ws.recv() == "pong"
        after_ping = server.meter()["totals"]
        assert after_ping.get("do_ws_messages", 0) == before.get("do_ws_messages", 0)
        assert after_ping["do_ws_auto_responses"] == before.get("do_ws_auto_responses", 0) + 1

        await ws.send("hello")
        assert await ws.recv() == "echo:hello:alice"
        assert server.meter()["totals"]["do_ws_messages"] == before.get("do_ws_messages", 0) + 1

        # Idle: the instance is evicted while the socket stays connected.
        wait_for(lambda: server.meter()["instances"]["Probe"] == 0, 5)
        await ws.send("again")  # wakes a fresh instance; the attachment survived
        assert await ws.recv() == "echo:again:alice"
        async with httpx.AsyncClient() as client:
            state = (await client.get(f"{server.url}/probe/h/sockets")).json()
        assert state["messages"] == 2
        assert state["sockets"] == 1
        assert state["auto_response_at"][0] is not None


@pytest.mark.anyio
async def test_websocket_upgrade_refused_by_object(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    ws_url = server.url.replace("http://", "ws://")
    with pytest.raises(Exception, match="403"):
        async with connect(f"{ws_url}/probe/d/ws?deny=1"):
            pass
    with pytest.raises(Exception, match="404"):
        async with connect(f"{ws_url}/nowhere"):
            pass


def test_scheduled_endpoint_and_migrations(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()
    response = httpx.get(f"{server.url}/__scheduled", params={"cron": "*/5 * * * *"})
    assert response.status_code == 200
    assert response.text == "Ran scheduled event"
    assert server.meter()["totals"]["worker_scheduled"] == 1
    server.stop()
    database = sqlite3.connect(server.state / "d1" / "apiary-dev.sqlite")
    assert [r[0] for r in database.execute("SELECT cron FROM cron_events")] == ["*/5 * * * *"]
    migrations = [r[0] for r in database.execute("SELECT name FROM d1_migrations")]
    expected = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert migrations == expected
    database.close()
    server.start()  # applied once: a restart finds nothing new to apply
    server.stop()
    database = sqlite3.connect(server.state / "d1" / "apiary-dev.sqlite")
    assert database.execute("SELECT COUNT(*) FROM d1_migrations").fetchone()[0] == len(expected)
    database.close()


def test_meter_counts_what_cloudflare_bills(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(probe=True)
    httpx.post(f"{server.url}/__meter/reset")
    httpx.post(f"{server.url}/probe/m/append", json={"value": "x"})
    meter = server.meter()
    totals = meter["totals"]
    assert totals["worker_requests"] == 1
    assert totals["do_requests"] == 1
    # schema creation and the append's insert
    assert totals["do_rows_written"] >= 1
    assert totals["do_rows_read"] >= 1
    assert meter["objects"]["Probe"]["do_requests"] == 1
    assert meter["billable"]["do_requests"] == 1
    assert meter["billable"]["cpu_ms"] > 0
