"""A swarm's storage: one SQLite database in its SwarmCoordinator. Rows in, dicts out.

Every change that devices should see bumps the swarm's `version` and stamps the changed rows
with it, so a STATE delta is "rows with a newer version" and costs no change log.
"""

from typing import Any

from durable import document
from durable.document import Document
from ports import ObjectStorage

LOG_KEEP = 100
SCHEMA = (
    document.SCHEMA,
    """CREATE TABLE IF NOT EXISTS invites (
        digest TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL, max_uses INTEGER NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS devices (
        id TEXT PRIMARY KEY, secret TEXT NOT NULL, persistent_id TEXT, name TEXT,
        capabilities TEXT, score REAL, ms_per_chunk REAL, quota INTEGER NOT NULL,
        reliability REAL NOT NULL, status TEXT NOT NULL, last_seen_ms INTEGER,
        joined_ms INTEGER NOT NULL, version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nonces (
        device_id TEXT NOT NULL, nonce TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (device_id, nonce))""",
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, requirements TEXT NOT NULL,
        chunk_timeout_s REAL NOT NULL, total INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,
        completed_ms INTEGER, version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chunks (
        id TEXT PRIMARY KEY, job_id TEXT NOT NULL, idx INTEGER NOT NULL, payload TEXT NOT NULL,
        status TEXT NOT NULL, device_id TEXT, deadline_ms INTEGER, attempts INTEGER NOT NULL,
        pct REAL, result TEXT, error TEXT, duration_ms INTEGER, completed_ms INTEGER)""",
    "CREATE INDEX IF NOT EXISTS chunks_by_status ON chunks (status, job_id, idx)",
    "CREATE INDEX IF NOT EXISTS chunks_by_device ON chunks (device_id, status)",
    """CREATE TABLE IF NOT EXISTS log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, level TEXT NOT NULL,
        message TEXT NOT NULL)""",
)


class SwarmStore:
    """The schema is installed by `create`, never by a read: an object addressed by an id that
    was never created stays empty (nothing stored, nothing billed as storage)."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.doc = Document(storage)
        self.installed = bool(
            storage.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'doc'")
        )

    def install(self) -> None:
        if not self.installed:
            for statement in SCHEMA:
                self.storage.exec(statement)
            self.installed = True

    def exec(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.storage.exec(sql, *params)

    # --- the swarm document: identity, settings, version, broadcast bookkeeping ---

    def swarm(self) -> dict[str, Any] | None:
        return self.doc.load() if self.installed else None

    def save_swarm(self, doc: dict[str, Any]) -> None:
        """Write the document if it changed: most events (progress, heartbeats) do not. Its
        version is the broadcast version (`SwarmCoordinator.bump`), not one per write."""
        self.doc.save(doc, new_version=False)

    # --- rows ---

    def device(self, device_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM devices WHERE id = ?", device_id)
        return rows[0] if rows else None

    def devices(self) -> list[dict[str, Any]]:
        return self.exec("SELECT * FROM devices ORDER BY joined_ms, id")

    def update_device(self, device_id: str, version: int, **fields: Any) -> None:
        sets = ", ".join(f"{name} = ?" for name in fields)
        self.exec(
            f"UPDATE devices SET {sets}, version = ? WHERE id = ?",
            *fields.values(),
            version,
            device_id,
        )

    def job(self, job_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM jobs WHERE id = ?", job_id)
        return rows[0] if rows else None

    def chunk(self, chunk_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM chunks WHERE id = ?", chunk_id)
        return rows[0] if rows else None

    def in_flight(self) -> dict[str, int]:
        rows = self.exec(
            "SELECT device_id, count(*) AS n FROM chunks WHERE status = 'assigned'"
            " GROUP BY device_id"
        )
        return {row["device_id"]: row["n"] for row in rows}

    def pending_jobs(self) -> list[dict[str, Any]]:
        return self.exec(
            "SELECT * FROM jobs WHERE id IN (SELECT DISTINCT job_id FROM chunks"
            " WHERE status = 'pending') ORDER BY created_ms, id"
        )

    def pending_chunks(self, job_id: str, limit: int) -> list[str]:
        rows = self.exec(
            "SELECT id FROM chunks WHERE status = 'pending' AND job_id = ? ORDER BY idx LIMIT ?",
            job_id,
            limit,
        )
        return [row["id"] for row in rows]

    def log(self, at_ms: int, level: str, message: str) -> None:
        self.exec("INSERT INTO log (at_ms, level, message) VALUES (?, ?, ?)", at_ms, level, message)
        self.exec("DELETE FROM log WHERE seq <= (SELECT max(seq) FROM log) - ?", LOG_KEEP)

    def recent_log(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.exec("SELECT at_ms, level, message FROM log ORDER BY seq DESC LIMIT ?", limit)
        return rows[::-1]
