"""ServerRegistry: the one authoritative list of backend servers, their status and load.

One object (named "global"). It records which task holds a slot on which server, so choosing a
server and counting its load are one atomic step. It never calls other objects (the call graph
stays acyclic): when a server is lost it returns the affected task ids to its caller.
"""

import json
from typing import Any

from durable.base import DurableObjectLogic, rpc
from tasks.choice import Candidate, choose_server

NAME = "global"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS servers (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,
        capabilities TEXT NOT NULL, capacity INTEGER NOT NULL, metadata TEXT NOT NULL,
        status TEXT NOT NULL, load REAL, version TEXT, reported_active INTEGER,
        registered_at_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
        last_assigned_ms INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS assignments (
        task_id TEXT PRIMARY KEY, server_id TEXT NOT NULL, priority INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS assignments_by_server ON assignments (server_id)",
    """CREATE TABLE IF NOT EXISTS waiting (
        task_id TEXT PRIMARY KEY, priority INTEGER NOT NULL, required TEXT NOT NULL,
        since_ms INTEGER NOT NULL)""",
)
WAITER_TTL_MS = 15_000  # a waiter that stopped asking no longer holds others back


def _record(row: dict[str, Any], assigned: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "url": row["url"],
        "capabilities": json.loads(row["capabilities"]),
        "capacity": row["capacity"],
        "metadata": json.loads(row["metadata"]),
        "status": row["status"],
        "load": row["load"],
        "version": row["version"],
        "active_tasks": assigned,
        "reported_active_tasks": row["reported_active"],
        "registered_at_ms": row["registered_at_ms"],
        "last_seen_ms": row["last_seen_ms"],
    }


class ServerRegistry(DurableObjectLogic):
    def on_start(self) -> None:
        for statement in _SCHEMA:
            self.ctx.storage.exec(statement)

    def _now(self) -> int:
        return self.ctx.services.clock.now_ms()

    def _assigned(self) -> dict[str, int]:
        rows = self.ctx.storage.exec(
            "SELECT server_id, COUNT(*) AS n FROM assignments GROUP BY server_id"
        )
        return {r["server_id"]: r["n"] for r in rows}

    @rpc
    async def register(self, server: dict[str, Any], status: str) -> dict[str, Any]:
        now = self._now()
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
        return await self.get(server["id"])  # type: ignore[return-value]

    @rpc
    async def get(self, server_id: str) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT * FROM servers WHERE id = ?", server_id)
        return _record(rows[0], self._assigned().get(server_id, 0)) if rows else None

    @rpc
    async def servers(self) -> list[dict[str, Any]]:
        assigned = self._assigned()
        rows = self.ctx.storage.exec("SELECT * FROM servers ORDER BY registered_at_ms, id")
        return [_record(r, assigned.get(r["id"], 0)) for r in rows]

    @rpc
    async def remove(self, server_id: str) -> dict[str, Any]:
        """Forget a server; returns `{removed, tasks}`: the tasks it held, to reassign."""
        storage = self.ctx.storage

        def remove() -> dict[str, Any]:
            tasks = [
                r["task_id"]
                for r in storage.exec(
                    "SELECT task_id FROM assignments WHERE server_id = ?", server_id
                )
            ]
            removed = storage.exec("SELECT id FROM servers WHERE id = ?", server_id)
            storage.exec("DELETE FROM assignments WHERE server_id = ?", server_id)
            storage.exec("DELETE FROM servers WHERE id = ?", server_id)
            return {"removed": bool(removed), "tasks": tasks}

        return storage.transaction(remove)

    @rpc
    async def report(self, server_id: str, fields: dict[str, Any]) -> bool:
        """A heartbeat's figures; False if the server is unknown (deregistered)."""
        rows = self.ctx.storage.exec(
            "UPDATE servers SET load = ?, reported_active = ?, version = COALESCE(?, version),"
            " last_seen_ms = ? WHERE id = ? RETURNING id",
            fields.get("load"),
            fields.get("active_tasks"),
            fields.get("version"),
            self._now(),
            server_id,
        )
        return bool(rows)

    @rpc
    async def set_status(self, server_id: str, status: str) -> list[str]:
        """Record a health change; returns the tasks to reassign when the server is down."""
        self.ctx.storage.exec("UPDATE servers SET status = ? WHERE id = ?", status, server_id)
        if status not in ("unhealthy", "offline"):
            return []
        rows = self.ctx.storage.exec(
            "SELECT task_id FROM assignments WHERE server_id = ?", server_id
        )
        return [r["task_id"] for r in rows]

    @rpc
    async def stale(self, older_than_ms: int) -> list[str]:
        cutoff = self._now() - older_than_ms
        rows = self.ctx.storage.exec(
            "SELECT id FROM servers WHERE last_seen_ms < ? ORDER BY id", cutoff
        )
        return [r["id"] for r in rows]

    @rpc
    async def acquire(
        self, task_id: str, priority: int, required: list[str], exclude: list[str]
    ) -> dict[str, Any] | None:
        """Give `task_id` a slot on the best server, or None (it then waits its turn).

        Higher priority first: while a higher-priority task is waiting, lower ones wait too.
        """
        storage = self.ctx.storage
        now = self._now()

        def acquire() -> dict[str, Any] | None:
            held = storage.exec(
                "SELECT s.id, s.url FROM assignments a JOIN servers s ON s.id = a.server_id"
                " WHERE a.task_id = ?",
                task_id,
            )
            if held:  # a retried call: the slot is already ours
                return {"id": held[0]["id"], "url": held[0]["url"]}
            storage.exec("DELETE FROM waiting WHERE since_ms < ?", now - WAITER_TTL_MS)
            assigned = self._assigned()
            candidates = [
                Candidate(
                    id=r["id"],
                    status=r["status"],
                    capabilities=frozenset(json.loads(r["capabilities"])),
                    capacity=r["capacity"],
                    assigned=assigned.get(r["id"], 0),
                    last_assigned_ms=r["last_assigned_ms"],
                )
                for r in storage.exec(
                    "SELECT id, status, capabilities, capacity, last_assigned_ms FROM servers"
                )
            ]
            # A higher-priority waiter that a server could take now goes first.
            ahead = any(
                choose_server(candidates, json.loads(w["required"])) is not None
                for w in storage.exec(
                    "SELECT required FROM waiting WHERE priority > ? AND task_id != ?",
                    priority,
                    task_id,
                )
            )
            chosen = None if ahead else choose_server(candidates, required, exclude)
            if chosen is None:
                storage.exec(
                    "INSERT INTO waiting (task_id, priority, required, since_ms)"
                    " VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (task_id) DO UPDATE SET since_ms = excluded.since_ms",
                    task_id,
                    priority,
                    json.dumps(list(required)),
                    now,
                )
                return None
            storage.exec("DELETE FROM waiting WHERE task_id = ?", task_id)
            storage.exec(
                "INSERT INTO assignments (task_id, server_id, priority) VALUES (?, ?, ?)",
                task_id,
                chosen.id,
                priority,
            )
            storage.exec("UPDATE servers SET last_assigned_ms = ? WHERE id = ?", now, chosen.id)
            url = storage.exec("SELECT url FROM servers WHERE id = ?", chosen.id)[0]["url"]
            return {"id": chosen.id, "url": url}

        return storage.transaction(acquire)

    @rpc
    async def release(self, task_id: str) -> None:
        self.ctx.storage.exec("DELETE FROM assignments WHERE task_id = ?", task_id)
        self.ctx.storage.exec("DELETE FROM waiting WHERE task_id = ?", task_id)
