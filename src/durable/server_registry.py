"""ServerRegistry: the authoritative list of backend servers, their status and load.

One object per shard (`REGISTRY_SHARDS`, default 1; shard 0 is named `NAME`, shard k `NAME-k`);
`durable.registry_shards` puts the shards behind one interface. Each shard records which task
holds a slot on which server (per attempt), so choosing a server and counting its load are one
atomic step. A task no server can take now is queued; capacity that frees (a slot released, a
server back to healthy) goes to the queue at once, highest priority and longest waiting first,
as offers. It never calls other objects (the call graph stays acyclic): offers, and the tasks of
a server that was lost or stopped listing them, are returned to the caller, which tells their
TaskManagers.

Reconciliation: a heartbeat may list the tasks the server is working on (`active_tasks`). A
slot whose task is missing from two consecutive heartbeats of its server (counting only
heartbeats that came after the dispatch had time to land) is reported lost, so a callback that
never came does not hold the task until its timeout.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, TypedDict

from durable.base import DurableObjectLogic, rpc
from durable.rpc import ObjectClient
from errors import NotFound
from services import Services
from tasks import settings as names
from tasks.choice import Candidate, choose_server
from tasks.settings import TaskSettings

NAME = "global"
MISSES_TO_LOSE = 2


class ServerRecord(TypedDict):
    id: str
    name: str
    url: str
    capabilities: list[str]
    capacity: int
    metadata: dict[str, Any]
    status: str
    load: float | None
    version: str | None
    active_tasks: int
    reported_active_tasks: int | None
    registered_at_ms: int
    last_seen_ms: int


class Slot(TypedDict):
    id: str
    url: str
    shard: int  # the registry shard that holds it (a release goes there)


class Acquired(TypedDict):
    slot: Slot | None
    queued: bool  # no slot now: the task waits in this shard's queue for an offer


def shard_name(shard: int) -> str:
    return NAME if shard == 0 else f"{NAME}-{shard}"


def _shard_index(name: str | None) -> int:
    return int(name.rsplit("-", 1)[1]) if name and name.startswith(f"{NAME}-") else 0


class Offer(TypedDict):
    """A slot the registry gave a queued task: its TaskManager takes it or releases it."""

    task_id: str
    attempt: int
    server: Slot


class StatusChange(TypedDict):
    moved: list[str]  # the tasks it held, to reassign (the server is down)
    offers: list[Offer]  # queued tasks given its capacity (the server is up)


class Removal(TypedDict):
    removed: bool
    tasks: list[str]


class Report(TypedDict):
    known: bool
    lost: list[str]  # tasks the server stopped reporting: their attempts end


def _record(row: dict[str, Any], assigned: int) -> ServerRecord:
    return ServerRecord(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        capabilities=json.loads(row["capabilities"]),
        capacity=row["capacity"],
        metadata=json.loads(row["metadata"]),
        status=row["status"],
        load=row["load"],
        version=row["version"],
        active_tasks=assigned,
        reported_active_tasks=row["reported_active"],
        registered_at_ms=row["registered_at_ms"],
        last_seen_ms=row["last_seen_ms"],
    )


class ServerRegistry(DurableObjectLogic):
    SCHEMA = (
        """CREATE TABLE IF NOT EXISTS servers (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,
            capabilities TEXT NOT NULL, capacity INTEGER NOT NULL, metadata TEXT NOT NULL,
            status TEXT NOT NULL, load REAL, version TEXT, reported_active INTEGER,
            registered_at_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS assignments (
            task_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, server_id TEXT NOT NULL,
            priority INTEGER NOT NULL, assigned_ms INTEGER NOT NULL,
            misses INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX IF NOT EXISTS assignments_by_server ON assignments (server_id)",
        """CREATE TABLE IF NOT EXISTS queue (
            task_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, priority INTEGER NOT NULL,
            required TEXT NOT NULL, exclude TEXT NOT NULL, since_ms INTEGER NOT NULL)""",
    )

    def on_start(self) -> None:
        super().on_start()
        # A slot is expected in a heartbeat only once its dispatch has had time to arrive.
        self.expect_after_ms = TaskSettings.from_config(self.services.config).dispatch_window_ms
        # When each server last got a task, for fair rotation among equals. Kept in memory (a
        # write per task saved): after a restart ties go by id until servers get tasks again.
        self.last_assigned: dict[str, int] = {}
        self.shard = _shard_index(self.ctx.name)

    def _assigned(self) -> dict[str, int]:
        rows = self.ctx.storage.exec(
            "SELECT server_id, COUNT(*) AS n FROM assignments GROUP BY server_id"
        )
        return {r["server_id"]: r["n"] for r in rows}

    def _server(self, server_id: str) -> ServerRecord | None:
        rows = self.ctx.storage.exec("SELECT * FROM servers WHERE id = ?", server_id)
        return _record(rows[0], self._assigned().get(server_id, 0)) if rows else None

    @rpc
    async def register(self, server: dict[str, Any], status: str) -> ServerRecord:
        now = self.now_ms()
        self.ctx.storage.exec(
            "INSERT INTO servers (id, name, url, capabilities, capacity, metadata, status,"
            " registered_at_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            server["id"],
            server["name"],
            server["url"],
            json.dumps(sorted(set(server["capabilities"]))),
            server["capacity"],
            json.dumps(server.get("metadata") or {}),
            status,
            now,
            now,
        )
        found = self._server(server["id"])
        assert found is not None
        return found

    @rpc
    async def get(self, server_id: str) -> ServerRecord:
        found = self._server(server_id)
        if found is None:
            raise NotFound("no such server")
        return found

    @rpc
    async def servers(self) -> list[ServerRecord]:
        assigned = self._assigned()
        rows = self.ctx.storage.exec("SELECT * FROM servers ORDER BY registered_at_ms, id")
        return [_record(r, assigned.get(r["id"], 0)) for r in rows]

    @rpc
    async def remove(self, server_id: str) -> Removal:
        """Forget a server; `tasks` are the tasks it held, to reassign."""
        storage = self.ctx.storage

        def remove() -> Removal:
            held = storage.exec("SELECT task_id FROM assignments WHERE server_id = ?", server_id)
            removed = storage.exec("SELECT id FROM servers WHERE id = ?", server_id)
            storage.exec("DELETE FROM assignments WHERE server_id = ?", server_id)
            storage.exec("DELETE FROM servers WHERE id = ?", server_id)
            return Removal(removed=bool(removed), tasks=[r["task_id"] for r in held])

        return storage.transaction(remove)

    @rpc
    async def report(self, server_id: str, fields: dict[str, Any]) -> Report:
        """A heartbeat's figures; `known` False when the server is unknown (deregistered)."""
        storage, now = self.ctx.storage, self.now_ms()
        active = fields.get("active_tasks")
        listed = active if isinstance(active, list) else None
        count = len(listed) if listed is not None else active

        def report() -> Report:
            rows = storage.exec(
                "UPDATE servers SET load = ?, reported_active = ?,"
                " version = COALESCE(?, version), last_seen_ms = ? WHERE id = ? RETURNING id",
                fields.get("load"),
                count,
                fields.get("version"),
                now,
                server_id,
            )
            if not rows:
                return Report(known=False, lost=[])
            return Report(known=True, lost=[] if listed is None else self._reconcile(
                server_id, set(listed), now
            ))  # fmt: skip

        return storage.transaction(report)

    def _reconcile(self, server_id: str, listed: set[str], now: int) -> list[str]:
        storage, lost = self.ctx.storage, []
        held = storage.exec("SELECT * FROM assignments WHERE server_id = ?", server_id)
        for slot in held:
            if slot["task_id"] in listed:
                misses = 0
            elif slot["assigned_ms"] <= now - self.expect_after_ms:
                misses = slot["misses"] + 1
            else:
                continue  # too new: its dispatch may not have arrived before this heartbeat
            if misses != slot["misses"]:
                storage.exec(
                    "UPDATE assignments SET misses = ? WHERE task_id = ?", misses, slot["task_id"]
                )
            if misses >= MISSES_TO_LOSE:
                lost.append(slot["task_id"])
        return lost

    @rpc
    async def set_status(self, server_id: str, status: str) -> StatusChange:
        """Record a health change: a server down gives up its tasks, one up takes queued ones."""
        storage = self.ctx.storage

        def change() -> StatusChange:
            storage.exec("UPDATE servers SET status = ? WHERE id = ?", status, server_id)
            if status in ("unhealthy", "offline"):
                rows = storage.exec("SELECT task_id FROM assignments WHERE server_id = ?",
                                    server_id)  # fmt: skip
                return StatusChange(moved=[r["task_id"] for r in rows], offers=[])
            return StatusChange(moved=[], offers=self._fill())

        return storage.transaction(change)

    @rpc
    async def stale(self, older_than_ms: int) -> list[str]:
        cutoff = self.now_ms() - older_than_ms
        rows = self.ctx.storage.exec(
            "SELECT id FROM servers WHERE last_seen_ms < ? ORDER BY id", cutoff
        )
        return [r["id"] for r in rows]

    def _candidates(self) -> list[Candidate]:
        assigned = self._assigned()
        return [
            Candidate(
                id=r["id"],
                status=r["status"],
                capabilities=frozenset(json.loads(r["capabilities"])),
                capacity=r["capacity"],
                assigned=assigned.get(r["id"], 0),
                last_assigned_ms=self.last_assigned.get(r["id"], 0),
            )
            for r in self.ctx.storage.exec("SELECT id, status, capabilities, capacity FROM servers")
        ]

    def _take(self, task_id: str, attempt: int, priority: int, server_id: str) -> Slot:
        """Record the slot (inside the caller's transaction)."""
        storage, now = self.ctx.storage, self.now_ms()
        storage.exec(
            "INSERT INTO assignments (task_id, attempt, server_id, priority, assigned_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET"
            " attempt = excluded.attempt, server_id = excluded.server_id,"
            " assigned_ms = excluded.assigned_ms, misses = 0",
            task_id, attempt, server_id, priority, now,
        )  # fmt: skip
        self.last_assigned[server_id] = now
        url = storage.exec("SELECT url FROM servers WHERE id = ?", server_id)[0]["url"]
        return Slot(id=server_id, url=url, shard=self.shard)

    def _fill(self) -> list[Offer]:
        """Give free capacity to queued tasks (inside the caller's transaction)."""
        queued = self.ctx.storage.exec("SELECT * FROM queue ORDER BY priority DESC, since_ms")
        if not queued:
            return []
        candidates, offers = self._candidates(), list[Offer]()
        for row in queued:
            required, exclude = json.loads(row["required"]), json.loads(row["exclude"])
            chosen = choose_server(candidates, required, exclude)
            if chosen is None:
                continue  # nothing fits it; a task behind it may need other servers
            self.ctx.storage.exec("DELETE FROM queue WHERE task_id = ?", row["task_id"])
            slot = self._take(row["task_id"], row["attempt"], row["priority"], chosen.id)
            offers.append(Offer(task_id=row["task_id"], attempt=row["attempt"], server=slot))
            candidates = [
                replace(c, assigned=c.assigned + 1) if c.id == chosen.id else c for c in candidates
            ]
        return offers

    @rpc
    async def acquire(
        self,
        task_id: str,
        attempt: int,
        priority: int,
        required: list[str],
        exclude: list[str],
        last: bool = True,
    ) -> Acquired:
        """A slot for attempt `attempt` of `task_id` on the best server, or none: the task is
        queued and will be offered one. Higher priority first: while a higher-priority queued
        task fits, lower ones queue too. Asking again for the same attempt returns the slot it
        holds (an offer that never arrived) or keeps its place in the queue. Unless `last`, a
        shard with no healthy server that has the capabilities queues nothing: ask another."""
        storage, now = self.ctx.storage, self.now_ms()

        def acquire() -> Acquired:
            held = storage.exec(
                "SELECT s.id, s.url FROM assignments a JOIN servers s ON s.id = a.server_id"
                " WHERE a.task_id = ? AND a.attempt = ?",
                task_id,
                attempt,
            )
            if held:
                slot = Slot(id=held[0]["id"], url=held[0]["url"], shard=self.shard)
                return Acquired(slot=slot, queued=False)
            candidates = self._candidates()
            if not last and not any(
                c.status == "healthy" and set(required) <= c.capabilities for c in candidates
            ):
                return Acquired(slot=None, queued=False)
            ahead = any(
                choose_server(candidates, json.loads(w["required"])) is not None
                for w in storage.exec(
                    "SELECT required FROM queue WHERE priority > ? AND task_id != ?",
                    priority,
                    task_id,
                )
            )
            chosen = None if ahead else choose_server(candidates, required, exclude)
            if chosen is None:
                storage.exec(
                    "INSERT INTO queue (task_id, attempt, priority, required, exclude, since_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET"
                    " attempt = excluded.attempt, exclude = excluded.exclude"
                    " WHERE queue.attempt != excluded.attempt",
                    task_id, attempt, priority, json.dumps(list(required)),
                    json.dumps(list(exclude)), now,
                )  # fmt: skip
                return Acquired(slot=None, queued=True)
            storage.exec("DELETE FROM queue WHERE task_id = ?", task_id)
            return Acquired(slot=self._take(task_id, attempt, priority, chosen.id), queued=False)

        return storage.transaction(acquire)

    @rpc
    async def release(self, task_id: str, attempt: int) -> list[Offer]:
        """Free the slot of attempt `attempt` (never a later attempt's), or its place in the
        queue: idempotent. Returns the queued tasks given the capacity it freed."""
        storage = self.ctx.storage

        def release() -> list[Offer]:
            freed = storage.exec(
                "DELETE FROM assignments WHERE task_id = ? AND attempt = ? RETURNING task_id",
                task_id,
                attempt,
            )
            storage.exec("DELETE FROM queue WHERE task_id = ?", task_id)
            return self._fill() if freed else []

        return storage.transaction(release)


class ServerRegistryClient(ObjectClient):
    """One shard; `ServerRegistries` for the registry as a whole."""

    @classmethod
    def of(cls, services: Services, shard: int = 0) -> ServerRegistryClient:
        return cls(services.namespace(names.REGISTRY).get(shard_name(shard)))

    async def register(self, server: dict[str, Any], status: str) -> ServerRecord:
        return await self.invoke(ServerRegistry.register, server, status)

    async def get(self, server_id: str) -> ServerRecord:
        return await self.invoke(ServerRegistry.get, server_id)

    async def servers(self) -> list[ServerRecord]:
        return await self.invoke(ServerRegistry.servers)

    async def remove(self, server_id: str) -> Removal:
        return await self.invoke(ServerRegistry.remove, server_id)

    async def report(self, server_id: str, fields: dict[str, Any]) -> Report:
        return await self.invoke(ServerRegistry.report, server_id, fields)

    async def set_status(self, server_id: str, status: str) -> StatusChange:
        return await self.invoke(ServerRegistry.set_status, server_id, status)

    async def stale(self, older_than_ms: int) -> list[str]:
        return await self.invoke(ServerRegistry.stale, older_than_ms)

    async def acquire(
        self,
        task_id: str,
        attempt: int,
        priority: int,
        required: list[str],
        exclude: list[str],
        last: bool = True,
    ) -> Acquired:
        return await self.invoke(ServerRegistry.acquire, task_id, attempt, priority, required,
                                 exclude, last)  # fmt: skip

    async def release(self, task_id: str, attempt: int) -> list[Offer]:
        return await self.invoke(ServerRegistry.release, task_id, attempt)
