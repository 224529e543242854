"""D1 on a local SQLite file, and wrangler's migration bookkeeping.

Every statement's writes are on disk before its call returns, so an acknowledged write survives
SIGKILL and a power loss; the fsync runs off the event loop (`wal_sync`), as D1 is a service of
its own. `batch` is one transaction, as on D1.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from apiary_local.meter import Meter
from apiary_local.wal_sync import WalSync
from ports import PortError, QueryResult, SqlValue, Statement

# wrangler's own table (see `wrangler d1 migrations apply`), so either tool sees the other's work.
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS d1_migrations(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)
"""


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """`synchronous="NORMAL"` leaves syncing the WAL to the caller (`wal_sync.WalSync`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class LocalD1:
    def __init__(self, path: Path, meter: Meter) -> None:
        self.path = path
        self.meter = meter
        self.conn = connect(path, synchronous="NORMAL")
        self.sync = WalSync(path)

    def close(self) -> None:
        self.conn.close()

    def _run(self, sql: str, params: Sequence[SqlValue]) -> QueryResult:
        before = self.conn.total_changes
        started = time.perf_counter()
        try:
            cursor = self.conn.execute(sql, tuple(params))
            rows = [dict(row) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise PortError(f"D1_ERROR: {exc}") from None
        written = self.conn.total_changes - before
        self.meter.count("d1_queries")
        self.meter.count("d1_rows_read", len(rows))
        self.meter.count("d1_rows_written", written)
        self.meter.count("d1_ms", (time.perf_counter() - started) * 1000)
        return QueryResult(
            rows=rows,
            changes=written,
            last_row_id=cursor.lastrowid,
            rows_read=len(rows),
            rows_written=written,
        )

    async def execute(self, sql: str, *params: SqlValue) -> QueryResult:
        result = self._run(sql, params)
        await self._durable(result.rows_written)
        return result

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            results = [self._run(s.sql, s.params) for s in statements]
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        await self._durable(sum(r.rows_written for r in results))
        return results

    async def _durable(self, written: int) -> None:
        if written:
            self.sync.committed()
        await self.sync.durable()  # a read waits too: it may have seen writes not yet synced


def apply_migrations(conn: sqlite3.Connection, directory: Path) -> list[str]:
    """Apply `NNNN_name.sql` files not yet recorded in `d1_migrations`, in order."""
    conn.execute(_MIGRATIONS_TABLE)
    done = {row[0] for row in conn.execute("SELECT name FROM d1_migrations")}
    applied = []
    for path in sorted(directory.glob("*.sql")) if directory.is_dir() else []:
        if path.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(path.read_text()):
                conn.execute(statement)
            conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (path.name,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(path.name)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        statements.append(current.strip())
    return statements
