"""What each valid client message does to a swarm (frames are parsed before they get here).

Handlers see the swarm through `Swarm`, the narrow protocol the coordinator offers them (its
store, its work, its frames), never the coordinator itself: this module does not import it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol, cast

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
from swarms.store import SwarmStore
from swarms.views import wants_full
from swarms.work import Work

log = get_logger("swarms")
REPLACED = 4000  # another connection resumed as this device

type Doc = dict[str, Any]
type Meta = dict[str, Any]  # a socket's attachment


class Swarm(Protocol):
    """What a handler may use of the swarm it runs in."""

    store: SwarmStore

    def now_ms(self) -> int: ...

    def bump(self, doc: Doc) -> int: ...

    def work(self, doc: Doc) -> Work: ...

    def bad_frame(self, socket: Socket, meta: Meta, doc: Doc, code: str, message: str) -> None: ...

    def state_frame(self, doc: Doc, since: int | None) -> str: ...

    def new_device(self, doc: Doc, persistent_id: str | None) -> tuple[str, str]: ...

    def device_sockets(self) -> list[Socket]: ...


def handle(swarm: Swarm, socket: Socket, meta: Meta, doc: Doc, message: object) -> None:
    device_id = cast(str, meta.get("dev"))  # None only for JOIN and RESUME, which ignore it
    store = swarm.store
    match message:
        case Join():
            _join(swarm, socket, meta, doc, message)
        case Resume():
            _resume(swarm, socket, meta, doc, message)
        case DeviceRegister(name=name, capabilities=capabilities):
            store.update_device(
                device_id,
                swarm.bump(doc),
                name=name,
                capabilities=json.dumps(capabilities.model_dump(exclude_none=True)),
            )
            swarm.work(doc).schedule()
        case BenchmarkResult(score=score):
            store.update_device(device_id, swarm.bump(doc), score=score)
            swarm.work(doc).schedule()
        case JobProgress():
            pass  # a sign of life (the socket was heard from); progress itself is not kept
        case JobComplete():
            work = swarm.work(doc)
            if not work.complete(device_id, message):
                note = {"level": "info", "message": f"{message.chunkId}: not yours now; ignored"}
                deliver(socket, frame("SYSTEM_LOG", note))
            work.schedule()
        case Sync(version=version):
            since = None if wants_full(version, doc["version"]) else version
            deliver(socket, swarm.state_frame(doc, since))
            socket.attach({**meta, "v": doc["version"]})


def _refuse(swarm: Swarm, socket: Socket, meta: Meta, doc: Doc, why: str) -> None:
    swarm.bad_frame(socket, meta, doc, "auth_failed", why)


def _join(swarm: Swarm, socket: Socket, meta: Meta, doc: Doc, data: Join) -> None:
    store, now = swarm.store, swarm.now_ms()
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


def _resume(swarm: Swarm, socket: Socket, meta: Meta, doc: Doc, data: Resume) -> None:
    store, now = swarm.store, swarm.now_ms()
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
    # Chunks live on a connection: what the device held on its last one waits for others.
    swarm.work(doc).release_held(data.device_id)
    for other in swarm.device_sockets():
        if other is not socket and (other.attachment or {}).get("dev") == data.device_id:
            hang_up(other, REPLACED, "resumed elsewhere")
    store.update_device(data.device_id, swarm.bump(doc), status="online", last_seen_ms=now)
    store.log(now, "info", f"device {data.device_id} resumed")
    _welcome(swarm, socket, meta, doc, data.device_id, {"resumed": True})


def _welcome(
    swarm: Swarm, socket: Socket, meta: Meta, doc: Doc, device_id: str, extra: dict[str, Any]
) -> None:
    socket.attach({**meta, "dev": device_id, "bad": 0, "v": doc["version"]})
    deliver(socket, frame("WELCOME", {"device_id": device_id, "swarm_id": doc["id"], **extra}))
    deliver(socket, swarm.state_frame(doc, None))
    event(log, logging.INFO, "device connected", swarm=doc["id"], device=device_id)
    swarm.work(doc).schedule()
