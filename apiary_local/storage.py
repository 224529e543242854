"""A Durable Object's storage: its own SQLite file, with the platform's rules.

Writes open a transaction when none is open; the host commits it and waits for it to be on disk
(`flush`) before anything leaves the object (an outbound call, a response, socket messages: the
output gate), so an acknowledged write survives SIGKILL and a power loss. The fsync runs off the
event loop (`wal_sync`), so other objects go on meanwhile, as on Cloudflare. `transaction(fn)`
is a savepoint inside it, and runs synchronously, so no other event's writes can land in the
middle of it. As on Cloudflare, user SQL may not open or end transactions itself. The alarm
lives in the same file, so it commits atomically with the writes that set it; `alarm_version`
counts its changes, for the host's timers.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from apiary_local.d1 import connect
from apiary_local.meter import Meter
from apiary_local.wal_sync import WalSync
from ports import PortError, Row, SqlValue

_FORBIDDEN = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_INTERNAL = re.compile(r"__apiary_", re.IGNORECASE)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS __apiary_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS __apiary_alarm (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0
);
"""


class LocalObjectStorage:
    def __init__(self, path: Path, meter: Meter, object_class: str) -> None:
        self.path = path
        self.meter = meter
        self.object_class = object_class
        self.conn = connect(path, synchronous="NORMAL")
        self.sync = WalSync(path)
        self._changes = 0  # conn.total_changes at the last commit
        self.conn.executescript(_SCHEMA)
        self._savepoints = 0
        self.alarm_version = 0  # bumped by every set or delete of the alarm
        self.firing_version: int | None = None  # the alarm version whose handler is running

    # --- the event transaction (driven by the host) ---

    def begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        """Commit the open transaction; on disk once `sync.durable()` returns."""
        if self.conn.in_transaction and self._savepoints == 0:
            self.conn.execute("COMMIT")
            if self.conn.total_changes != self._changes:
                self._changes = self.conn.total_changes
                self.sync.committed()

    async def flush(self) -> None:
        """Make the writes so far durable, before something leaves the object."""
        self.commit()
        await self.sync.durable()

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.rollback()
        self.conn.close()

    # --- ports.ObjectStorage ---

    def exec(self, query: str, *params: SqlValue) -> list[Row]:
        if _FORBIDDEN.match(query):
            raise PortError("use storage.transaction() instead of transaction statements")
        if _INTERNAL.search(query):
            raise PortError("tables named __apiary_* are reserved")
        before = self.conn.total_changes
        self.begin()
        try:
            rows = [dict(r) for r in self.conn.execute(query, params).fetchall()]
        except sqlite3.Error as exc:
            raise PortError(f"SQLITE_ERROR: {exc}") from None
        self.meter.count("do_rows_read", len(rows), object_class=self.object_class)
        self.meter.count(
            "do_rows_written", self.conn.total_changes - before, object_class=self.object_class
        )
        return rows

    def transaction[T](self, fn: Callable[[], T]) -> T:
        self.begin()
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            result = fn()
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        finally:
            self._savepoints -= 1
        self.conn.execute(f"RELEASE {name}")
        return result

    async def get_alarm(self) -> int | None:
        scheduled = self.alarm()
        if scheduled is None or self.firing_version == self.alarm_version:
            return None  # as on Cloudflare, the running alarm is no longer scheduled
        return scheduled[0]

    async def set_alarm(self, epoch_ms: int) -> None:
        self.schedule_alarm(int(epoch_ms), retry_count=0)

    async def delete_alarm(self) -> None:
        self.clear_alarm()

    # --- for the host ---

    def alarm(self) -> tuple[int, int] | None:
        row = self.conn.execute("SELECT at_ms, retry_count FROM __apiary_alarm").fetchone()
        return (row[0], row[1]) if row else None

    def clear_alarm(self) -> None:
        self.begin()
        if self.conn.execute("DELETE FROM __apiary_alarm").rowcount:
            self.meter.count("do_rows_written", object_class=self.object_class)
        self.alarm_version += 1

    def schedule_alarm(self, epoch_ms: int, *, retry_count: int) -> None:
        self.begin()
        self.conn.execute(
            "INSERT INTO __apiary_alarm (id, at_ms, retry_count) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms,"
            " retry_count = excluded.retry_count",
            (epoch_ms, retry_count),
        )
        self.meter.count("do_rows_written", object_class=self.object_class)
        self.alarm_version += 1

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM __apiary_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO __apiary_meta (key, value) VALUES (?, ?)", (key, value)
        )
