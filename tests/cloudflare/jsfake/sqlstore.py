"""sqlite3 plumbing shared by the D1 and Durable Object SQL fakes.

Both products are SQLite underneath; what differs is the JS surface (see `d1.py`, `durable.py`).
Common rules from the docs (https://developers.cloudflare.com/durable-objects/api/sql-storage/ ,
https://developers.cloudflare.com/d1/worker-api/ , https://developers.cloudflare.com/d1/platform/limits/):
- at most 100 bound parameters per statement; SQL text at most 100 KB;
- transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, END) are refused: use
  `transactionSync()` / `batch()`;
- tables named `_cf_*` are reserved.
rows_read / rows_written are approximations here (SQLite does not expose scan counts): rows read
= rows returned + rows changed, rows written = rows changed (indexes are not counted).
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

MAX_BOUND_PARAMETERS = 100
MAX_STATEMENT_BYTES = 100_000
_COMMENT = re.compile(r"^\s*(?:--[^\n]*\n|/\*.*?\*/|\s)*", re.S)
_TRANSACTION_KEYWORDS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_RESERVED_TABLE = re.compile(r"\b_cf_\w*", re.I)


# Connections stay referenced until `close_all()` (called by `uninstall()`), so none is garbage
# collected unclosed (Python 3.13 warns about that, and pytest turns warnings into errors).
_OPEN: list[sqlite3.Connection] = []


def connect(path: str = ":memory:") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    _OPEN.append(conn)
    return conn


def close_all() -> None:
    while _OPEN:
        _OPEN.pop().close()


def split_statements(sql: str) -> list[str]:
    """Split a script into statements (semicolons inside strings and comments are kept)."""
    statements: list[str] = []
    current = ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if _COMMENT.sub("", current).strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    if _COMMENT.sub("", current).strip(" \t\r\n;"):
        statements.append(current.strip().rstrip(";"))
    return statements


def first_keyword(statement: str) -> str:
    body = _COMMENT.sub("", statement)
    match = re.match(r"[A-Za-z]+", body)
    return match.group(0).upper() if match else ""


def is_transaction_statement(statement: str) -> bool:
    return first_keyword(statement) in _TRANSACTION_KEYWORDS


def touches_reserved_table(statement: str) -> bool:
    return bool(_RESERVED_TABLE.search(statement))


@dataclass
class Outcome:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    changes: int
    last_row_id: int
    duration_ms: float

    @property
    def rows_read(self) -> int:
        return len(self.rows) + self.changes

    @property
    def rows_written(self) -> int:
        return self.changes


def run(conn: sqlite3.Connection, statement: str, params: list[Any]) -> Outcome:
    """Execute one statement and fetch all of its rows."""
    started = time.perf_counter()
    before = conn.total_changes
    cursor = conn.execute(statement, params)
    columns = [d[0] for d in cursor.description or ()]
    rows = cursor.fetchall()
    changes = conn.total_changes - before
    last_row_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    return Outcome(columns, rows, changes, last_row_id, (time.perf_counter() - started) * 1000)


def database_size(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(size)


def user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return [r[0] for r in rows]
