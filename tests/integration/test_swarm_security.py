"""Swarm authentication and bad input through `apiary dev`: invites, RESUME, bad frames, and
hypothesis fuzzing over a real WebSocket."""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from swarms import credentials
from tests.harness import DevServer
from tests.swarm_client import (
    ADMIN,
    create_swarm,
    invite,
    receive,
    send,
    snapshot,
    submit,
    token,
    ws_url,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


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
