"""SwarmCoordinator: one per swarm; its devices over hibernating WebSockets, its jobs, its state.

Heartbeats (`ping` -> `pong`) are the hibernation auto-response and never wake the object;
presence comes from their timestamps, swept by the alarm, and the alarm is set only while a
device is connected, so an idle swarm costs nothing. A socket that has not joined within the
swarm's `join_timeout_s` is closed (4002) and keeps no alarm alive past that; after
`AUTH_FAILURES_PER_MINUTE` failed JOIN/RESUME attempts in a minute the swarm refuses the rest
(`rate_limited`) until the window passes. An id nobody created never reaches this object (the
API and the upgrade route check D1 first), and even then a read stores nothing.

Every change that devices should see bumps the swarm's version; STATE broadcasts are coalesced
to one per `broadcast_interval_ms` and only when the version moved. A frame is parsed before
anything is touched: a bad one gets an ERROR and an audit line, and a socket that keeps sending
them is closed with 1008 (policy).

Operators watch a swarm live on a second kind of socket (`?watch=1`, tag `watcher`, opened by
the dashboard with its session cookie, checked at the upgrade): it gets a full STATE at once and
then the same coalesced STATE broadcasts, and nothing it sends is acted on. A watcher never
keeps the alarm alive: with no device connected, the alarm is set only for a broadcast that a
change made due, so a watched idle swarm costs no invocation at all.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from clock import rfc3339_ms
from durable.base import AlarmInfo, DurableObjectLogic, ObjectRequest, ObjectResponse, rpc
from durable.rpc import ObjectClient
from errors import NotFound
from ids import new_id
from logs import event, get_logger
from ports import Socket
from services import Services
from swarms import credentials, views, watchers
from swarms.handlers import handle
from swarms.models import SWARMS
from swarms.protocol import PING, PONG, Join, ProtocolError, Resume, deliver, frame, hang_up, parse
from swarms.scheduling import INITIAL_QUOTA, Speed, presence, weights
from swarms.store import SwarmStore
from swarms.work import Work

log = get_logger("swarms")
MAX_BAD_FRAMES = 10
POLICY_VIOLATION = 1008
TIMED_OUT = 4001  # no heartbeat within heartbeat_timeout_s
JOIN_TIMEOUT = 4002  # no JOIN or RESUME within join_timeout_s of the upgrade
AUTH_FAILURES_PER_MINUTE = 20


type Doc = dict[str, Any]
type View = dict[str, Any]


class SwarmCoordinator(DurableObjectLogic):
    def on_start(self) -> None:
        self.store = SwarmStore(self.ctx.storage)
        self.ctx.sockets.set_auto_response(PING, PONG)

    def bump(self, doc: dict[str, Any]) -> int:
        """A change devices should see: a new version, and a broadcast due (coalesced)."""
        doc["version"] += 1
        if doc.get("broadcast_at") is None:
            interval = doc["settings"]["broadcast_interval_ms"]
            doc["broadcast_at"] = max(self.now_ms(), doc.get("last_broadcast_ms", 0) + interval)
        return cast(int, doc["version"])

    def work(self, doc: dict[str, Any]) -> Work:
        return Work(self.store, doc, self.now_ms(), self.bump, self._device_sockets())

    def device_sockets(self) -> list[Socket]:
        return self.ctx.sockets.sockets("device")

    def _swarm(self) -> Doc:
        doc = self.store.swarm()
        if doc is None:
            raise NotFound("no such swarm")
        return doc

    # --- RPC (from the API) ---

    @rpc
    async def create(self, spec: dict[str, Any]) -> View:
        doc = self.store.swarm()
        if doc is None:
            self.store.install()
            doc = {**spec, "created_ms": self.now_ms(), "version": 0, "last_broadcast_ms": 0}
            self.store.save_swarm(doc)
        return views.swarm_view(doc)

    @rpc
    async def snapshot(self) -> View:
        doc = self._swarm()
        now, sockets = self.now_ms(), self._device_sockets()
        rows = self.store.devices()
        speeds = {d["id"]: Speed(d["score"], d["ms_per_chunk"]) for d in rows}
        weight, in_flight = weights(speeds), self.store.in_flight()
        devices = []
        for row in rows:
            seen = self._last_seen(row, sockets.get(row["id"]))
            status = presence(
                now, seen, row["id"] in sockets, doc["settings"]["heartbeat_timeout_s"]
            )
            devices.append(
                views.device_view(
                    row,
                    status=status,
                    last_seen_ms=seen,
                    weight=weight[row["id"]],
                    in_flight=in_flight.get(row["id"], 0),
                )
            )
        jobs = self.store.exec("SELECT * FROM jobs ORDER BY created_ms, id")
        log_lines = [
            {"at": rfc3339_ms(r["at_ms"]), "level": r["level"], "message": r["message"]}
            for r in self.store.recent_log()
        ]
        return {
            **views.swarm_view(doc),
            "devices": devices,
            "jobs": [views.job_view(j) for j in jobs],
            "log": log_lines,
        }

    @rpc
    async def invite(self, max_uses: int, ttl_s: int) -> View:
        self._swarm()
        token, now = credentials.new_token(), self.now_ms()
        expires = now + ttl_s * 1000
        self.store.exec(
            "INSERT INTO invites (digest, expires_ms, max_uses, created_ms) VALUES (?, ?, ?, ?)",
            credentials.digest(token),
            expires,
            max_uses,
            now,
        )
        return {"token": token, "expires_at": rfc3339_ms(expires), "max_uses": max_uses}

    @rpc
    async def add_job(self, spec: dict[str, Any]) -> View:
        doc = self._swarm()
        now = self.now_ms()
        job_id = new_id(now, prefix="job_")
        version = self.bump(doc)

        def write() -> None:
            self.store.exec(
                "INSERT INTO jobs (id, name, requirements, chunk_timeout_s, total, created_ms,"
                " version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                job_id,
                spec["name"],
                json.dumps(spec["requirements"]),
                spec["chunk_timeout_s"],
                len(spec["chunks"]),
                now,
                version,
            )
            for idx, payload in enumerate(spec["chunks"]):
                self.store.exec(
                    "INSERT INTO chunks (id, job_id, idx, payload, status, attempts)"
                    " VALUES (?, ?, ?, ?, 'pending', 0)",
                    f"{job_id}.{idx}",
                    job_id,
                    idx,
                    json.dumps(payload),
                )
            self.store.log(
                now, "info", f"job {spec['name']} ({job_id}): {len(spec['chunks'])} chunks"
            )

        self.ctx.storage.transaction(write)
        self.work(doc).schedule()
        await self._finish(doc)
        job = self.store.job(job_id)
        assert job is not None
        return views.job_view(job)

    @rpc
    async def get_job(self, job_id: str) -> View:
        self._swarm()
        job = self.store.job(job_id)
        if job is None:
            raise NotFound("no such job")
        chunks = self.store.exec("SELECT * FROM chunks WHERE job_id = ? ORDER BY idx", job_id)
        return {**views.job_view(job), "chunks": [views.chunk_view(c) for c in chunks]}

    # --- sockets ---

    async def on_request(self, request: ObjectRequest) -> ObjectResponse:
        doc = self.store.swarm()
        if not request.is_websocket_upgrade:
            return await super().on_request(request)
        if doc is None:
            return ObjectResponse.json({"code": "not_found", "message": "no such swarm"}, 404)
        if request.query.get("watch"):
            return await self._watch(request, doc)
        origin = request.headers.get("origin")
        allowed = doc["settings"].get("allowed_origins") or []
        if origin and allowed and origin not in allowed:
            event(log, logging.WARNING, "audit: upgrade refused", swarm=doc["id"], origin=origin)
            return ObjectResponse.json({"code": "forbidden", "message": "origin not allowed"}, 403)
        pid = request.query.get("persistentId", "")[:64] or None
        join_by = self.now_ms() + int(doc["settings"].get("join_timeout_s", 10) * 1000)
        socket = self.ctx.sockets.accept(
            tags=["device"],
            attachment={"pid": pid, "dev": None, "bad": 0, "v": 0, "seen": 0, "join_by": join_by},
        )
        await self._finish(doc)
        return ObjectResponse.upgrade(socket)

    async def _watch(self, request: ObjectRequest, doc: dict[str, Any]) -> ObjectResponse:
        refusal, expires_at = await watchers.admit(self.ctx.services, request)
        if refusal is not None:
            event(log, logging.WARNING, "audit: watcher refused", swarm=doc["id"], why=refusal)
            return ObjectResponse.json({"code": "forbidden", "message": refusal}, 403)
        # Devices' messages may have moved the swarm on while the session was looked up.
        doc = self.store.swarm() or doc
        socket = self.ctx.sockets.accept(
            tags=[watchers.TAG], attachment={"v": doc["version"], "exp": expires_at}
        )
        deliver(socket, self.state_frame(doc, None))
        return ObjectResponse.upgrade(socket)

    async def on_socket_message(self, socket: Socket, message: str | bytes) -> None:
        if watchers.TAG in socket.tags:
            return  # watchers only listen (their `ping`s are the auto-response's)
        doc = self.store.swarm()
        if doc is None:
            hang_up(socket, POLICY_VIOLATION, "no such swarm")
            return
        meta = socket.attachment or {}
        if meta.get("closed"):
            return  # sent before our close reached the client
        meta["seen"] = self.now_ms()
        if message == PING:  # only when the auto-response did not answer it
            socket.attach(meta)
            deliver(socket, PONG)
            return
        try:
            _, data = parse(message)
            joining = isinstance(data, Join | Resume)
            if meta.get("dev") is None and not joining:
                raise ProtocolError("invalid", "send JOIN or RESUME first")
        except ProtocolError as exc:
            self.bad_frame(socket, meta, doc, exc.code, exc.message)
            return
        if joining and len(self._recent_failures(doc)) >= AUTH_FAILURES_PER_MINUTE:
            self.bad_frame(
                socket, meta, doc, "rate_limited", "too many failed joins; wait a minute"
            )
            await self._finish(doc)
            return
        socket.attach(meta)
        handle(self, socket, meta, doc, data)
        await self._finish(doc)

    def _recent_failures(self, doc: dict[str, Any]) -> list[int]:
        since = self.now_ms() - 60_000
        return [at for at in doc.get("auth_failures", []) if at > since]

    def bad_frame(
        self, socket: Socket, meta: dict[str, Any], doc: dict[str, Any], code: str, message: str
    ) -> None:
        if code == "auth_failed":  # the window is kept in the document, trimmed as it goes
            doc["auth_failures"] = [*self._recent_failures(doc), self.now_ms()]
        meta["bad"] = meta.get("bad", 0) + 1
        event(
            log,
            logging.WARNING,
            "audit: bad frame",
            swarm=doc["id"],
            device=meta.get("dev"),
            persistent_id=meta.get("pid"),
            code=code,
            detail=message,
            count=meta["bad"],
        )
        socket.attach(meta)
        deliver(socket, frame("ERROR", {"code": code, "message": message}))
        if meta["bad"] >= MAX_BAD_FRAMES:
            hang_up(socket, POLICY_VIOLATION, "too many bad frames")

    async def on_socket_close(self, socket: Socket, code: int, reason: str) -> None:
        doc = self.store.swarm()
        device_id = (socket.attachment or {}).get("dev")
        if doc is None or device_id is None:
            return
        socket.attach({**(socket.attachment or {}), "dev": None})
        if device_id not in self._device_sockets():
            self.work(doc).device_gone(device_id, f"disconnected ({code})")
        await self._finish(doc)

    # --- the alarm: presence, deadlines, broadcasts ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.store.swarm()
        if doc is None:
            return
        sockets, now = self._device_sockets(), self.now_ms()
        for unjoined in self._unjoined():
            if (unjoined.attachment or {}).get("join_by", 0) <= now:
                hang_up(unjoined, JOIN_TIMEOUT, "no JOIN or RESUME in time")
        timeout = doc["settings"]["heartbeat_timeout_s"]
        work = self.work(doc)
        for row in self.store.exec("SELECT * FROM devices WHERE status != 'offline'"):
            socket = sockets.get(row["id"])
            status = presence(now, self._last_seen(row, socket), socket is not None, timeout)
            if status == "offline":
                if socket is not None:
                    hang_up(socket, TIMED_OUT, "heartbeat timeout")
                work.device_gone(row["id"], "heartbeat timeout")
            elif status != row["status"]:
                self.store.update_device(row["id"], self.bump(doc), status=status)
        work.expire_deadlines()
        work.schedule()
        if doc.get("broadcast_at") is not None and now >= doc["broadcast_at"]:
            self._broadcast(doc)
        await self._finish(doc)

    def _broadcast(self, doc: dict[str, Any]) -> None:
        doc["broadcast_at"] = None
        doc["last_broadcast_ms"] = self.now_ms()
        cache: dict[int | None, str] = {}
        for socket in self.ctx.sockets.sockets("device"):
            meta = socket.attachment or {}
            if meta.get("dev") is None or meta.get("v") == doc["version"]:
                continue
            since = None if views.wants_full(meta.get("v"), doc["version"]) else meta["v"]
            if since not in cache:
                cache[since] = self.state_frame(doc, since)
            deliver(socket, cache[since])
            socket.attach({**meta, "v": doc["version"]})
        watchers.broadcast(
            self.ctx.sockets.sockets(watchers.TAG), doc, self.now_ms(), cache, self.state_frame
        )

    def state_frame(self, doc: dict[str, Any], since: int | None) -> str:
        floor = -1 if since is None else since
        devices = self.store.exec("SELECT * FROM devices WHERE version > ? ORDER BY id", floor)
        jobs = self.store.exec("SELECT * FROM jobs WHERE version > ? ORDER BY id", floor)
        return frame("STATE", views.state_frame(doc["version"], since, devices, jobs))

    # --- helpers ---

    def _unjoined(self) -> list[Socket]:
        """Sockets upgraded but not (yet) joined as a device, and not closed by us."""
        return [
            socket
            for socket in self.ctx.sockets.sockets("device")
            if not (meta := socket.attachment or {}).get("dev") and not meta.get("closed")
        ]

    def _device_sockets(self) -> dict[str, Socket]:
        found = {}
        for socket in self.ctx.sockets.sockets("device"):
            device_id = (socket.attachment or {}).get("dev")
            if device_id is not None:
                found[device_id] = socket
        return found

    def _last_seen(self, row: dict[str, Any], socket: Socket | None) -> int | None:
        seen = [row["last_seen_ms"] or 0]
        if socket is not None:
            seen.append((socket.attachment or {}).get("seen") or 0)
            heartbeat = self.ctx.sockets.auto_response_timestamp(socket)
            if heartbeat is not None:
                seen.append(int(heartbeat.timestamp() * 1000))
        return max(seen) or None

    def new_device(self, doc: dict[str, Any], persistent_id: str | None) -> tuple[str, str]:
        now = self.now_ms()
        device_id, secret = new_id(now, prefix="dev_"), credentials.new_token()
        self.store.exec(
            "INSERT INTO devices (id, secret, persistent_id, quota, reliability, status,"
            " last_seen_ms, joined_ms, version) VALUES (?, ?, ?, ?, 1.0, 'online', ?, ?, ?)",
            device_id,
            secret,
            persistent_id,
            INITIAL_QUOTA,
            now,
            now,
            self.bump(doc),
        )
        return device_id, secret

    async def _finish(self, doc: dict[str, Any]) -> None:
        """Save the swarm document and set the alarm: for presence and deadlines while a device
        is connected, and for the join deadline of a socket that has not joined."""
        self.store.save_swarm(doc)
        now = self.now_ms()
        times = [(s.attachment or {}).get("join_by", now) for s in self._unjoined()]
        if self._device_sockets():
            times.append(now + int(doc["settings"]["heartbeat_timeout_s"] * 250))
            if doc.get("broadcast_at") is not None:
                times.append(doc["broadcast_at"])
            deadline = self.store.exec(
                "SELECT min(deadline_ms) AS at FROM chunks WHERE status = 'assigned'"
            )[0]["at"]
            if deadline is not None:
                times.append(deadline)
        else:  # watchers alone keep an alarm only for a broadcast a change made due
            due = watchers.broadcast_due(doc, self.ctx.sockets.sockets(watchers.TAG))
            if due is not None:
                times.append(due)
        current = await self.ctx.storage.get_alarm()
        if not times:
            if current is not None:
                await self.ctx.storage.delete_alarm()
            return
        target = min(times)
        if current is None or current > target or current < now - 60_000:
            await self.ctx.storage.set_alarm(target)


class SwarmClient(ObjectClient):
    @classmethod
    def for_swarm(cls, services: Services, swarm_id: str) -> SwarmClient:
        """Only for a swarm D1 knows (`swarms.registry`): any other id would wake an object."""
        return cls(services.namespace(SWARMS).get(swarm_id))

    async def create(self, spec: dict[str, Any]) -> View:
        return await self.invoke(SwarmCoordinator.create, spec)

    async def snapshot(self) -> View:
        return await self.invoke(SwarmCoordinator.snapshot)

    async def invite(self, max_uses: int, ttl_s: int) -> View:
        return await self.invoke(SwarmCoordinator.invite, max_uses, ttl_s)

    async def add_job(self, spec: dict[str, Any]) -> View:
        return await self.invoke(SwarmCoordinator.add_job, spec)

    async def get_job(self, job_id: str) -> View:
        return await self.invoke(SwarmCoordinator.get_job, job_id)
