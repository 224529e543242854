"""Every invocation of a deployed Worker: what GraphQL analytics count and logs will show.

The router records an invocation (script, version, status, wall time) before its response
leaves, so a count read after the response includes it. The Worker's own report (console
lines, subrequests, exception) is collected from workerd later (`runner.collect`) and merged
by `cf-ray`, in whichever order the two arrive. Statuses are Cloudflare's: `success`,
`scriptThrewException`, `exceededResources`, `internalError` (and `clientDisconnected`).

The file is `STATE/account/invocations.sqlite`, WAL with synchronous=NORMAL: a committed row
survives the process being killed (only the machine losing power can take the last ones), at
a fraction of the cost of an fsync per request. Rows older than `RETENTION_DAYS` go at start.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apiary_local.d1 import connect

SUCCESS = "success"
THREW = "scriptThrewException"
EXCEEDED = "exceededResources"
INTERNAL = "internalError"
DISCONNECTED = "clientDisconnected"
ERROR_STATUSES = frozenset({THREW, EXCEEDED, INTERNAL})
RETENTION_DAYS = 92  # Cloudflare keeps three months
MAX_LOG_LINES = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations(
    ray TEXT PRIMARY KEY,
    namespace TEXT,
    script TEXT,
    version_id TEXT,
    started_ms INTEGER,
    duration_ms REAL,
    status TEXT,
    http_status INTEGER,
    subrequests INTEGER NOT NULL DEFAULT 0,
    logs TEXT NOT NULL DEFAULT '[]',
    exception TEXT
);
CREATE INDEX IF NOT EXISTS invocations_by_time ON invocations(started_ms);
"""


@dataclass(frozen=True, slots=True)
class Invocation:
    ray: str
    namespace: str
    script: str
    version_id: str
    started_ms: int
    duration_ms: float
    status: str
    http_status: int
    exception: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class InvocationRow:
    ray: str
    namespace: str
    script: str
    version_id: str
    started_ms: int
    duration_ms: float
    status: str
    http_status: int
    subrequests: int
    logs: list[dict[str, Any]]
    exception: dict[str, str] | None


class InvocationLog:
    def __init__(self, path: Path, *, now_ms: int) -> None:
        self.conn = connect(path)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)
        cutoff = now_ms - RETENTION_DAYS * 86_400_000
        self.conn.execute("DELETE FROM invocations WHERE started_ms < ?", (cutoff,))

    def close(self) -> None:
        self.conn.close()

    def record(self, invocation: Invocation) -> None:
        exception = json.dumps(invocation.exception) if invocation.exception else None
        self.conn.execute(
            "INSERT INTO invocations(ray, namespace, script, version_id, started_ms, "
            "duration_ms, status, http_status, exception) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(ray) DO UPDATE SET namespace = excluded.namespace, "
            "script = excluded.script, version_id = excluded.version_id, "
            "started_ms = excluded.started_ms, duration_ms = excluded.duration_ms, "
            "status = excluded.status, http_status = excluded.http_status, "
            "exception = COALESCE(invocations.exception, excluded.exception)",
            (
                invocation.ray, invocation.namespace, invocation.script, invocation.version_id,
                invocation.started_ms, invocation.duration_ms, invocation.status,
                invocation.http_status, exception,
            ),
        )  # fmt: skip

    def attach(self, reports: list[dict[str, Any]]) -> None:
        """The Workers' own reports of invocations (from wrapper.js), merged by ray, in one
        transaction."""
        rows = []
        for report in reports:
            ray = report.get("ray") if isinstance(report, dict) else None
            if not isinstance(ray, str) or not ray:
                continue
            logs = [line for line in report.get("logs") or [] if isinstance(line, dict)]
            exception = report.get("exception")
            rows.append(
                (
                    ray,
                    int(report.get("subrequests") or 0),
                    json.dumps(logs[:MAX_LOG_LINES]),
                    json.dumps(exception) if isinstance(exception, dict) else None,
                )
            )
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO invocations(ray, subrequests, logs, exception) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(ray) DO UPDATE SET subrequests = excluded.subrequests, "
            "logs = excluded.logs, exception = COALESCE(excluded.exception, invocations.exception)",
            rows,
        )
        self.conn.execute("COMMIT")

    def select(
        self, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[InvocationRow]:
        """Recorded invocations (reports alone are not invocations) from `since_ms` to
        `until_ms` inclusive, oldest first."""
        clauses, args = ["script IS NOT NULL"], []
        if since_ms is not None:
            clauses.append("started_ms >= ?")
            args.append(since_ms)
        if until_ms is not None:
            clauses.append("started_ms <= ?")
            args.append(until_ms)
        rows = self.conn.execute(
            f"SELECT * FROM invocations WHERE {' AND '.join(clauses)} ORDER BY started_ms",
            args,
        ).fetchall()
        return [_row(r) for r in rows]

    def get(self, ray: str) -> InvocationRow | None:
        row = self.conn.execute("SELECT * FROM invocations WHERE ray = ?", (ray,)).fetchone()
        return _row(row) if row and row["script"] is not None else None


def _row(row: sqlite3.Row) -> InvocationRow:
    return InvocationRow(
        row["ray"], row["namespace"] or "", row["script"], row["version_id"], row["started_ms"],
        row["duration_ms"], row["status"], row["http_status"], row["subrequests"],
        json.loads(row["logs"]), json.loads(row["exception"]) if row["exception"] else None,
    )  # fmt: skip
