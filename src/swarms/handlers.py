"""What each valid client message does to a swarm (frames are parsed before they get here)."""

import json
import logging
from typing import TYPE_CHECKING, Any

from logs import event, get_logger
from ports import Socket
from swarms import credentials
from swarms.protocol import (
    BenchmarkResult,
    DeviceRegister,
    JobComplete,
    JobProgress,
    Join,
    Resume,
    Sync,
    deliver,
    frame,
    hang_up,
)
from swarms.views import wants_full

if TYPE_CHECKING:
    from durable.swarm_coordinator import SwarmCoordinator

log = get_logger("swarms")
REPLACED = 4000  # another connection resumed as this device


async def handle(
    swarm: "SwarmCoordinator",
    socket: Socket,
    meta: dict[str, Any],
    doc: dict[str, Any],
    kind: str,
    data: Any,
) -> None:
    device_id = meta.get("dev")
    store = swarm.store
    if kind == "JOIN":
        _join(swarm, socket, meta, doc, data)
    elif kind == "RESUME":
        _resume(swarm, socket, meta, doc, data)
    elif kind == "DEVICE_REGISTER":
        assert isinstance(data, DeviceRegister)
        store.update_device(
            device_id,
            swarm.bump(doc),
            name=data.name,
            capabilities=json.dumps(data.capabilities.model_dump(exclude_none=True)),
        )
        swarm.work(doc).schedule()
    elif kind == "BENCHMARK_RESULT":
        assert isinstance(data, BenchmarkResult)
        store.update_device(device_id, swarm.bump(doc), score=data.score)
        swarm.work(doc).schedule()
    elif kind == "JOB_PROGRESS":
        assert isinstance(data, JobProgress)
        swarm.work(doc).progress(device_id, data.chunkId, data.pct)
    elif kind == "JOB_COMPLETE":
        assert isinstance(data, JobComplete)
        work = swarm.work(doc)
        if not work.complete(device_id, data):
            deliver(
                socket,
                frame(
                    "SYSTEM_LOG",
                    {"level": "info", "message": f"{data.chunkId}: not yours now; ignored"},
                ),
            )
        work.schedule()
    elif kind == "SYNC":
        assert isinstance(data, Sync)
        since = None if wants_full(data.version, doc["version"]) else data.version
        deliver(socket, swarm.state_frame(doc, since))
        socket.attach({**meta, "v": doc["version"]})


def _refuse(
    swarm: "SwarmCoordinator", socket: Socket, meta: dict[str, Any], doc: dict[str, Any], why: str
) -> None:
    swarm.bad_frame(socket, meta, doc, "auth_failed", why)


def _join(
    swarm: "SwarmCoordinator", socket: Socket, meta: dict[str, Any], doc: dict[str, Any], data: Join
) -> None:
    store, now = swarm.store, swarm.ctx.services.clock.now_ms()
    if meta.get("dev") is not None:
        _refuse(swarm, socket, meta, doc, "already joined")
        return
    rows = store.exec(
        "SELECT * FROM invites WHERE digest = ?", credentials.digest(data.invite_token)
    )
    invite = rows[0] if rows else None
    if invite is None:
        _refuse(swarm, socket, meta, doc, "unknown invite")
        return
    if invite["expires_ms"] <= now:
        _refuse(swarm, socket, meta, doc, "invite expired")
        return
    if invite["uses"] >= invite["max_uses"]:
        _refuse(swarm, socket, meta, doc, "invite used up")
        return
    limit = doc["settings"].get("max_devices")
    count = store.exec("SELECT count(*) AS n FROM devices WHERE status != 'offline'")[0]["n"]
    if limit is not None and count >= limit:
        deliver(
            socket, frame("ERROR", {"code": "swarm_full", "message": f"at most {limit} devices"})
        )
        return
    store.exec("UPDATE invites SET uses = uses + 1 WHERE digest = ?", invite["digest"])
    device_id, secret = swarm.new_device(doc, meta.get("pid"))
    store.log(now, "info", f"device {device_id} joined")
    _welcome(swarm, socket, meta, doc, device_id, {"device_secret": secret})


def _resume(
    swarm: "SwarmCoordinator",
    socket: Socket,
    meta: dict[str, Any],
    doc: dict[str, Any],
    data: Resume,
) -> None:
    store, now = swarm.store, swarm.ctx.services.clock.now_ms()
    device = store.device(data.device_id)
    why = (
        "unknown device"
        if device is None
        else credentials.check_resume(
            device["secret"], data.device_id, data.ts, data.nonce, data.signature, now
        )
    )
    if why is None and store.exec(
        "SELECT 1 FROM nonces WHERE device_id = ? AND nonce = ?", data.device_id, data.nonce
    ):
        why = "nonce reused"
    if why is not None:
        _refuse(swarm, socket, meta, doc, why)
        return
    store.exec("DELETE FROM nonces WHERE ts < ?", now - 2 * credentials.MAX_SKEW_MS)
    store.exec(
        "INSERT INTO nonces (device_id, nonce, ts) VALUES (?, ?, ?)",
        data.device_id,
        data.nonce,
        data.ts,
    )
    for other in swarm.ctx.sockets.sockets("device"):
        if other is not socket and (other.attachment or {}).get("dev") == data.device_id:
            hang_up(other, REPLACED, "resumed elsewhere")
    # Chunks live on a connection: what the device held on its last one goes back to the queue.
    swarm.work(doc).release_held(data.device_id, "device reconnected")
    store.update_device(data.device_id, swarm.bump(doc), status="online", last_seen_ms=now)
    store.log(now, "info", f"device {data.device_id} resumed")
    _welcome(swarm, socket, meta, doc, data.device_id, {"resumed": True})


def _welcome(
    swarm: "SwarmCoordinator",
    socket: Socket,
    meta: dict[str, Any],
    doc: dict[str, Any],
    device_id: str,
    extra: dict[str, Any],
) -> None:
    socket.attach({**meta, "dev": device_id, "bad": 0, "v": doc["version"]})
    deliver(socket, frame("WELCOME", {"device_id": device_id, "swarm_id": doc["id"], **extra}))
    deliver(socket, swarm.state_frame(doc, None))
    event(log, logging.INFO, "device connected", swarm=doc["id"], device=device_id)
    swarm.work(doc).schedule()
