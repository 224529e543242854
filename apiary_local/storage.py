"""A Durable Object's storage: its own SQLite file, with the platform's rules.

The host opens a transaction when an event starts and commits it before the event's response
or socket messages leave (the output gate): an acknowledged write is on disk. `transaction(fn)`
is a savepoint inside it. As on Cloudflare, user SQL may not open or end transactions itself.
The alarm lives in the same file, so it commits atomically with the writes that set it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from apiary_local.d1 import connect
from apiary_local.meter import Meter
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
        self.conn = connect(path)
        self.conn.executescript(_SCHEMA)
        self._savepoints = 0
        self.alarm_changed = False
        self.firing_ms: int | None = None  # the alarm whose handler is running

    # --- the event transaction (driven by the host) ---

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Make the event's writes so far durable before something leaves the object."""
        if self.conn.in_transaction and self._savepoints == 0:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")

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
        if scheduled is None or (scheduled[0] == self.firing_ms and not self.alarm_changed):
            return None  # as on Cloudflare, the running alarm is no longer scheduled
        return scheduled[0]

    async def set_alarm(self, epoch_ms: int) -> None:
        self.schedule_alarm(int(epoch_ms), retry_count=0)

    async def delete_alarm(self) -> None:
        if self.conn.execute("DELETE FROM __apiary_alarm").rowcount:
            self.meter.count("do_rows_written", object_class=self.object_class)
        self.alarm_changed = True

    # --- for the host ---

    def alarm(self) -> tuple[int, int] | None:
        row = self.conn.execute("SELECT at_ms, retry_count FROM __apiary_alarm").fetchone()
        return (row[0], row[1]) if row else None

    def schedule_alarm(self, epoch_ms: int, *, retry_count: int) -> None:
        self.conn.execute(
            "INSERT INTO __apiary_alarm (id, at_ms, retry_count) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms,"
            " retry_count = excluded.retry_count",
            (epoch_ms, retry_count),
        )
        self.meter.count("do_rows_written", object_class=self.object_class)
        self.alarm_changed = True

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM __apiary_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO __apiary_meta (key, value) VALUES (?, ?)", (key, value)
        )
