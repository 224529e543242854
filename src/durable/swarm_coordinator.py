"""SwarmCoordinator: one per swarm; its devices over hibernating WebSockets, its jobs, its state.

Heartbeats (`ping` -> `pong`) are the hibernation auto-response and never wake the object;
presence comes from their timestamps, swept by the alarm, and the alarm is set only while a
device is connected, so an idle swarm costs nothing. A socket that has not joined within the
swarm's `join_timeout_s` is closed (4002) and keeps no alarm alive past that; after
`AUTH_FAILURES_PER_MINUTE` failed JOIN/RESUME attempts in a minute the swarm refuses the rest
(`rate_limited`) until the window passes. An id nobody created never reaches this object (the
API and the upgrade route check D1 first), and even then a read stores nothing.

Every change that devices should see bumps the swarm's version; STATE broadcasts are coalesced
to one per `broadcast_interval_ms` and only when the version moved: the event that makes one due
sends it when the interval has passed, else the alarm does when it has. A broadcast serialises
each distinct frame once and writes nothing per socket (`views.since`). Presence is swept four
times per heartbeat timeout, not on every alarm. A frame is parsed before anything is touched:
a bad one gets an ERROR and an audit line, and a socket that keeps sending them is closed with
1008 (policy).

Chunks in flight live in their connections' attachments (`swarms.connections`), job counts and
device statistics are written in batches (`swarms.bookkeeping`): a busy swarm writes about one
row per chunk, its result.

Operators watch a swarm live on a second kind of socket (`?watch=1`, tag `watcher`, opened by
the dashboard with its session cookie, checked at the upgrade): it gets a full STATE at once and
then the same coalesced STATE broadcasts, and nothing it sends is acted on. A watcher never
keeps the alarm alive: with no device connected, the alarm is set only for a broadcast that a
change made due, so a watched idle swarm costs no invocation at all.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
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
from swarms.backlog import Backlog
from swarms.connections import Connections
from swarms.handlers import handle
from swarms.models import SWARMS
from swarms.protocol import PING, PONG, Join, ProtocolError, Resume, deliver, frame, hang_up, parse
from swarms.scheduling import INITIAL_QUOTA, Speed, next_sweep_ms, presence, sweep_due, weights
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
        self.backlog = Backlog(self.store.pending_chunks)
        self.swept_ms: int | None = None  # the last presence sweep (memory: lost, sweep again)
        doc = self.store.swarm()
        if doc is not None and doc.pop("uncounted", False):  # the last instance went first
            self.store.recount_jobs(self.bump(doc))
            self.store.save_swarm(doc)

    def bump(self, doc: dict[str, Any]) -> int:
        """A change devices should see: the version to stamp it with, and a broadcast due
        (coalesced). Changes share a version until someone is sent it (`shown_v`), so a
        busy swarm writes its document about twice per broadcast, not once per change."""
        if doc.get("shown_v", doc["version"]) >= doc["version"]:
            doc["version"] += 1
        if doc.get("broadcast_at") is None:
            interval = doc["settings"]["broadcast_interval_ms"]
            doc["broadcast_at"] = max(self.now_ms(), doc.get("last_broadcast_ms", 0) + interval)
        return cast(int, doc["version"])

    def work(self, doc: dict[str, Any], connections: Connections | None = None) -> Work:
        if connections is None:
            connections = Connections(self.ctx.sockets.sockets("device"))
        return Work(self.store, doc, self.now_ms(), self.bump, connections, self.backlog)

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
        now, connections = self.now_ms(), Connections(self.ctx.sockets.sockets("device"))
        sockets = connections.joined
        rows = self.store.devices()
        speeds = {d["id"]: Speed(d["score"], d["ms_per_chunk"]) for d in rows}
        weight, in_flight = weights(speeds), Counter(connections.holders().values())
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
                    in_flight=in_flight[row["id"]],
                )
            )
        jobs = self.store.jobs()
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
        holders = Connections(self.ctx.sockets.sockets("device")).holders()
        return {
            **views.job_view(job),
            "chunks": [views.chunk_view(c, holders.get(c["id"])) for c in chunks],
        }

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
        doc = self._swarm()  # other events ran during the await
        socket = self.ctx.sockets.accept(
            tags=[watchers.TAG], attachment={"v": doc["version"], "exp": expires_at}
        )
        deliver(socket, self.state_frame(doc, None))
        self.store.save_swarm(doc)  # what it was shown (`shown_v`)
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
            if meta.get("dev") is not None:  # what it held waits for others
                self.work(doc).release_held(meta["dev"])
            hang_up(socket, POLICY_VIOLATION, "too many bad frames")

    async def on_socket_close(self, socket: Socket, code: int, reason: str) -> None:
        doc = self.store.swarm()
        meta = socket.attachment or {}
        device_id = meta.get("dev")
        if doc is None or device_id is None:
            return
        socket.attach({**meta, "dev": None, "closed": True})
        work = self.work(doc)
        if device_id not in work.connections.joined:  # else it resumed on another connection
            work.device_gone(device_id, f"disconnected ({code})", sorted(meta.get("held") or {}))
        await self._finish(doc)

    # --- the alarm: presence, deadlines, broadcasts ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.store.swarm()
        if doc is None:
            return
        connections, now = Connections(self.ctx.sockets.sockets("device")), self.now_ms()
        for unjoined, meta in connections.unjoined:
            if meta.get("join_by", 0) <= now:
                hang_up(unjoined, JOIN_TIMEOUT, "no JOIN or RESUME in time")
        timeout = doc["settings"]["heartbeat_timeout_s"]
        work, sockets = self.work(doc, connections), dict(connections.joined)
        if sweep_due(now, self.swept_ms, timeout):  # not on every alarm: most are broadcasts
            self.swept_ms = now
            self.backlog.reset()  # a cache: read again from the rows, so nothing can stay lost
            for row in self.store.devices("status != 'offline'"):
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
        await self._finish(doc)

    def _broadcast(self, doc: dict[str, Any], connections: Connections) -> None:
        """The STATE each joined device and watcher lacks (`views.since`): one frame per
        distinct version they have, serialised once. Most sockets have the last broadcast's
        version, so they share one frame; nothing per socket is written."""
        if self.store.books.jobs:  # their counts, under a version nobody has been sent
            self.store.flush_jobs(self.bump(doc))
            doc.pop("uncounted", None)
        version, sent, now = doc["version"], doc.get("broadcast_v", 0), self.now_ms()
        doc["broadcast_at"] = None
        doc["last_broadcast_ms"] = now
        doc["broadcast_v"] = version
        frames: dict[int | None, str] = {}

        def send(socket: Socket, socket_version: int | None) -> None:
            since = views.since(socket_version, sent, version)
            if since == version:
                return  # it was sent this version already
            if since not in frames:
                frames[since] = self.state_frame(doc, since)
            deliver(socket, frames[since])

        for device_id, socket in connections.joined.items():
            send(socket, connections.meta(device_id).get("v"))
        for socket, meta in watchers.live(self.ctx.sockets.sockets(watchers.TAG), now):
            send(socket, meta.get("v"))

    def state_frame(self, doc: dict[str, Any], since: int | None) -> str:
        """STATE at the swarm's version; changes after it need a new one (`bump`)."""
        doc["shown_v"] = doc["version"]
        floor = -1 if since is None else since
        devices = self.store.exec("SELECT * FROM devices WHERE version > ? ORDER BY id", floor)
        jobs = self.store.exec("SELECT * FROM jobs WHERE version > ? ORDER BY id", floor)
        return frame("STATE", views.state_frame(doc["version"], since, devices, jobs))

    # --- helpers ---

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
        """Send a broadcast that is due, save the swarm document and set the alarm: for
        presence, deadlines and a broadcast due later while a device is connected, and for
        the join deadline of a socket that has not joined."""
        now, connections = self.now_ms(), Connections(self.ctx.sockets.sockets("device"))
        deadlines = [d for device in connections.joined for d in connections.held(device).values()]
        if self.store.books.devices_due(now, in_flight=bool(deadlines)):
            self.store.flush_devices(lambda: self.bump(doc))
        if doc.get("broadcast_at") is not None and now >= doc["broadcast_at"]:
            self._broadcast(doc, connections)  # due now: this event sends it, no alarm
        self.store.save_swarm(doc)
        times = [meta.get("join_by", now) for _, meta in connections.unjoined]
        if connections.joined:
            timeout = doc["settings"]["heartbeat_timeout_s"]
            times.append(next_sweep_ms(now if self.swept_ms is None else self.swept_ms, timeout))
            if doc.get("broadcast_at") is not None:
                times.append(doc["broadcast_at"])
            if deadlines:
                times.append(min(deadlines))
            flush_at = self.store.books.devices_due_at()
            if flush_at is not None:
                times.append(flush_at)
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
