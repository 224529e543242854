"""A swarm's storage: one SQLite database in its SwarmCoordinator. Rows in, dicts out.

Every change that devices should see bumps the swarm's `version` and stamps the changed rows
with it, so a STATE delta is "rows with a newer version" and costs no change log.

A chunk's row is written when it is done or fails, not when it is handed out: chunks in flight
are in the sockets' attachments (`swarms.connections`). Its one index, (job, index), never
changes after the insert, so on Cloudflare, which bills each changed index entry as a row
written, finishing a chunk is one row. Job counts and device statistics are batched
(`swarms.bookkeeping`): reads here see them.
"""

from collections.abc import Callable
from typing import Any

from durable import document
from durable.document import Document
from ports import ObjectStorage
from swarms.bookkeeping import DEVICE_FIELDS, Bookkeeping

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
        status TEXT NOT NULL, device_id TEXT, attempts INTEGER NOT NULL, result TEXT,
        error TEXT, duration_ms INTEGER, completed_ms INTEGER)""",
    "CREATE INDEX IF NOT EXISTS chunks_by_job ON chunks (job_id, idx)",
    """CREATE TABLE IF NOT EXISTS log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, level TEXT NOT NULL,
        message TEXT NOT NULL)""",
)
# A swarm created before chunks in flight moved to the attachments: its rows of chunks in
# flight go back to waiting (their connections did not survive the new code's deploy), and its
# indexes become the one that finishing a chunk does not change. No-ops once done.
UPGRADE = (
    "UPDATE chunks SET status = 'pending' WHERE status = 'assigned'",
    "DROP INDEX IF EXISTS chunks_by_status",
    "DROP INDEX IF EXISTS chunks_by_device",
    "CREATE INDEX IF NOT EXISTS chunks_by_job ON chunks (job_id, idx)",
)


class SwarmStore:
    """The schema is installed by `create`, never by a read: an object addressed by an id that
    was never created stays empty (nothing stored, nothing billed as storage)."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.doc = Document(storage)
        self.books = Bookkeeping()
        self.installed = bool(
            storage.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'doc'")
        )
        if self.installed and storage.exec(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'chunks_by_status'"
        ):
            for statement in UPGRADE:
                storage.exec(statement)

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

    # --- devices ---

    def device(self, device_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM devices WHERE id = ?", device_id)
        return self.books.overlay_device(rows[0]) if rows else None

    def devices(self, where: str = "1", *params: Any) -> list[dict[str, Any]]:
        rows = self.exec(f"SELECT * FROM devices WHERE {where} ORDER BY joined_ms, id", *params)
        return [self.books.overlay_device(row) for row in rows]

    def update_device(self, device_id: str, version: int, **fields: Any) -> None:
        """Write a device's row (a change devices see: `version` is a new one), with whatever
        of its statistics was not written yet."""
        fields = {**self.books.take_device(device_id), **fields}
        sets = ", ".join(f"{name} = ?" for name in fields)
        self.exec(
            f"UPDATE devices SET {sets}, version = ? WHERE id = ?",
            *fields.values(),
            version,
            device_id,
        )

    def note_outcome(self, device: dict[str, Any], now_ms: int, **fields: Any) -> None:
        """A device's statistics after a chunk (see `swarms.bookkeeping`): written later."""
        assert set(fields) <= set(DEVICE_FIELDS)
        self.books.note_device(device["id"], now_ms, **fields)

    def flush_devices(self, stamp: Callable[[], int]) -> None:
        """Write the devices' batched statistics; one whose quota changed gets a version from
        `stamp` (devices are shown quotas), the others keep theirs."""
        for device_id in list(self.books.devices):
            row = self.exec("SELECT quota, version FROM devices WHERE id = ?", device_id)
            fields = self.books.take_device(device_id)
            if not row:
                continue
            changed = fields.get("quota", row[0]["quota"]) != row[0]["quota"]
            self.update_device(device_id, stamp() if changed else row[0]["version"], **fields)

    # --- jobs ---

    def job(self, job_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM jobs WHERE id = ?", job_id)
        return self.books.overlay_job(rows[0]) if rows else None

    def jobs(self, where: str = "1") -> list[dict[str, Any]]:
        rows = self.exec(f"SELECT * FROM jobs WHERE {where} ORDER BY created_ms, id")
        return [self.books.overlay_job(row) for row in rows]

    def count(self, job_id: str, column: str) -> None:
        """A chunk of the job is done or failed for good: counted with the next broadcast."""
        self.books.count(job_id, column)

    def flush_jobs(self, version: int) -> None:
        """Write the jobs' batched counts, stamped `version`. A job whose last chunk this
        counts completed when that chunk did."""
        jobs = self.books.take_jobs()
        for job_id, add in jobs.items():
            self.exec(
                "UPDATE jobs SET done = done + ?, failed = failed + ?, version = ?,"
                " completed_ms = CASE WHEN completed_ms IS NULL AND done + failed + ? >= total"
                " THEN (SELECT max(completed_ms) FROM chunks WHERE job_id = jobs.id)"
                " ELSE completed_ms END WHERE id = ?",
                add["done"],
                add["failed"],
                version,
                add["done"] + add["failed"],
                job_id,
            )

    def recount_jobs(self, version: int) -> None:
        """Count unfinished jobs again from their chunks (after an instance went with counts
        not written); only the jobs whose counts were behind are written."""
        done = "(SELECT count(*) FROM chunks WHERE job_id = jobs.id AND status = 'done')"
        failed = "(SELECT count(*) FROM chunks WHERE job_id = jobs.id AND status = 'failed')"
        last = "(SELECT max(completed_ms) FROM chunks WHERE job_id = jobs.id)"
        self.exec(
            f"UPDATE jobs SET done = {done}, failed = {failed}, version = ?,"
            f" completed_ms = CASE WHEN {done} + {failed} >= total THEN {last} END"
            f" WHERE completed_ms IS NULL AND (done != {done} OR failed != {failed})",
            version,
        )

    # --- chunks ---

    def chunk(self, chunk_id: str) -> dict[str, Any] | None:
        rows = self.exec("SELECT * FROM chunks WHERE id = ?", chunk_id)
        return rows[0] if rows else None

    def pending_chunks(self, job_id: str, from_idx: int, limit: int) -> list[dict[str, Any]]:
        """Pending rows of a job from an index on, in order (some may be in flight)."""
        return self.exec(
            "SELECT id, idx FROM chunks WHERE job_id = ? AND idx >= ? AND status = 'pending'"
            " ORDER BY idx LIMIT ?",
            job_id,
            from_idx,
            limit,
        )

    def update_chunk(self, chunk_id: str, **fields: Any) -> None:
        """An outcome: done, failed for good, or a failed attempt (still `pending`)."""
        sets = ", ".join(f"{name} = ?" for name in fields)
        self.exec(f"UPDATE chunks SET {sets} WHERE id = ?", *fields.values(), chunk_id)

    # --- the system log ---

    def log(self, at_ms: int, level: str, message: str) -> None:
        self.exec("INSERT INTO log (at_ms, level, message) VALUES (?, ?, ?)", at_ms, level, message)
        self.exec("DELETE FROM log WHERE seq <= (SELECT max(seq) FROM log) - ?", LOG_KEEP)

    def recent_log(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.exec("SELECT at_ms, level, message FROM log ORDER BY seq DESC LIMIT ?", limit)
        return rows[::-1]
