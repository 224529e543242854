"""D1: `FakeD1Database` (constructor "D1Database") backed by sqlite3.

Contracts (https://developers.cloudflare.com/d1/worker-api/ ,
https://developers.cloudflare.com/d1/worker-api/prepared-statements/ ,
https://developers.cloudflare.com/d1/worker-api/d1-database/ ,
https://developers.cloudflare.com/d1/worker-api/return-object/ , workerd `types/defines/d1.d.ts`):
- `db.prepare(sql)` -> D1PreparedStatement; `stmt.bind(...values)` returns a *new* statement.
- Bound values: null -> NULL, number -> INTEGER/REAL, string -> TEXT, boolean -> INTEGER 1/0,
  ArrayBuffer / ArrayBufferView / array of bytes -> BLOB; `undefined` (Python `None` passed to
  the raw binding) and BigInt (ints beyond 2**53) throw `Error("D1_TYPE_ERROR: ...")` at bind.
  Through the SDK wrapper `None` becomes `jsnull` (NULL), as it should.
- `all()` / `run()` -> `{success: true, meta: {...}, results: [...]}`; `first()` -> the first row
  or null; `first(column)` -> that value, or throws `D1_COLUMN_NOTFOUND` if the column is absent;
  `raw({columnNames})` -> arrays. Rows are plain objects; BLOBs read back as arrays of numbers.
- meta: duration, changes, last_row_id, changed_db, size_after, rows_read, rows_written,
  served_by, served_by_region, served_by_primary, timings.sql_duration_ms.
- `db.batch([stmts])` takes a JS array of statements, runs them in one transaction (all or
  nothing) and resolves to an array of results; `db.exec(sql)` -> `{count, duration}`.
- Errors are `Error("D1_ERROR: <sqlite message>: SQLITE_ERROR")`; a prepared statement holds
  exactly one SQL statement.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from . import sqlstore
from .buffers import JsBuffer
from .errors import JsException, type_error
from .promises import JsPromise
from .proxy import JsNull, jsnull
from .values import JsArray, JsObject, JsProxy, PyProxy, js_method, js_number, js_typeof


def _d1_error(message: str) -> JsException:
    return JsException("Error", f"D1_ERROR: {message}")


def _bind_value(value: Any) -> Any:
    kind = js_typeof(value)
    if isinstance(value, JsNull):
        return None
    if kind in ("number", "string"):
        return js_number(value) if kind == "number" else value
    if kind == "boolean":
        return 1 if value else 0
    if isinstance(value, JsBuffer):
        return value.to_bytes()
    if isinstance(value, JsArray) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value._items
    ):
        return bytes(value._items)
    shown = (
        "undefined"
        if value is None
        else (f"Python {value.type}" if isinstance(value, PyProxy) else str(value))
    )
    raise JsException("Error", f"D1_TYPE_ERROR: Type '{kind}' not supported for value '{shown}'")


def _read_value(value: Any) -> Any:
    if value is None:
        return jsnull
    if isinstance(value, bytes):
        return JsArray(list(value))
    if isinstance(value, int) and abs(value) > 2**53:
        return float(value)  # a JS number loses the low bits
    if isinstance(value, float):
        return js_number(value)
    return value


class FakeD1PreparedStatement(JsProxy):
    js_class = "D1PreparedStatement"

    def __init__(self, db: FakeD1Database, sql: str, params: list[Any] | None = None) -> None:
        self._db = db
        self._sql = sql
        self._params = params or []

    @js_method
    def bind(self, *values: Any) -> FakeD1PreparedStatement:
        return FakeD1PreparedStatement(self._db, self._sql, [_bind_value(v) for v in values])

    def _execute(self) -> sqlstore.Outcome:
        return self._db._execute(self._sql, self._params)

    def _result(self, outcome: sqlstore.Outcome) -> JsObject:
        results = JsArray(
            JsObject({c: _read_value(v) for c, v in zip(outcome.columns, row, strict=True)})
            for row in outcome.rows
        )
        return JsObject({"success": True, "meta": self._db._meta(outcome), "results": results})

    def all(self) -> JsPromise:
        return JsPromise.from_call(lambda: self._result(self._execute()))

    def run(self) -> JsPromise:
        return JsPromise.from_call(lambda: self._result(self._execute()))

    @js_method
    def first(self, column: Any = None) -> JsPromise:
        def first() -> Any:
            outcome = self._execute()
            if not outcome.rows:
                return jsnull
            row = dict(zip(outcome.columns, outcome.rows[0], strict=True))
            if column is None:
                return JsObject({c: _read_value(v) for c, v in row.items()})
            if column not in row:
                raise JsException("Error", "D1_COLUMN_NOTFOUND: Column not found")
            return _read_value(row[column])

        return JsPromise.from_call(first)

    @js_method
    def raw(self, options: Any = None) -> JsPromise:
        def raw() -> JsArray:
            outcome = self._execute()
            rows = JsArray(JsArray(_read_value(v) for v in row) for row in outcome.rows)
            if options is not None and getattr(options, "columnNames", False):
                rows.insert(0, JsArray(outcome.columns))
            return rows

        return JsPromise.from_call(raw)

    def __repr__(self) -> str:
        return f"<D1PreparedStatement {self._sql!r} {self._params!r}>"


class FakeD1Database(JsProxy):
    """A D1 binding. `FakeD1Database()` is an empty in-memory database; pass `path` or
    `connection` to share one; `apply_migrations(dir)` runs `NNNN_*.sql` files in order."""

    js_class = "D1Database"

    def __init__(
        self, path: str = ":memory:", *, connection: sqlite3.Connection | None = None
    ) -> None:
        self.connection = connection or sqlstore.connect(path)
        self.queries: list[tuple[str, list[Any]]] = []

    # --- JS API ------------------------------------------------------------------------------

    @js_method
    def prepare(self, query: Any = None) -> FakeD1PreparedStatement:
        if not isinstance(query, str):
            raise type_error("D1Database.prepare() expects a SQL string")
        return FakeD1PreparedStatement(self, query)

    @js_method
    def batch(self, statements: Any = None) -> JsPromise:
        if isinstance(statements, PyProxy):
            return JsPromise.reject(
                type_error(
                    "statements.map is not a function (a Python list reached D1 "
                    "directly: pass a JS array, e.g. through the SDK wrapper or to_js)"
                )
            )
        if not isinstance(statements, JsArray):
            return JsPromise.reject(type_error("D1Database.batch() expects an array"))
        items = list(statements._items)
        for item in items:
            if not isinstance(item, FakeD1PreparedStatement):
                return JsPromise.reject(
                    type_error("Batch entries must be D1PreparedStatement objects")
                )

        def batch() -> JsArray:
            conn = self.connection
            conn.execute("BEGIN")
            try:
                results = JsArray(item._result(item._execute()) for item in items)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return results

        return JsPromise.from_call(batch)

    @js_method
    def exec(self, query: Any = None) -> JsPromise:
        def run() -> JsObject:
            statements = sqlstore.split_statements(str(query))
            total = 0.0
            for statement in statements:
                total += self._execute(statement, []).duration_ms
            return JsObject({"count": len(statements), "duration": total})

        return JsPromise.from_call(run)

    def withSession(self, *_args: Any) -> FakeD1Database:
        return self

    # --- internals ---------------------------------------------------------------------------

    def _execute(self, sql: str, params: list[Any]) -> sqlstore.Outcome:
        statements = sqlstore.split_statements(sql)
        if len(statements) != 1:
            raise _d1_error("A prepared SQL statement must contain only one statement.")
        statement = statements[0]
        if len(statement.encode()) > sqlstore.MAX_STATEMENT_BYTES:
            raise _d1_error("statement too long: SQLITE_TOOBIG")
        if len(params) > sqlstore.MAX_BOUND_PARAMETERS:
            raise _d1_error("too many SQL variables: SQLITE_ERROR")
        if sqlstore.is_transaction_statement(statement):
            raise _d1_error(
                "not authorized to use BEGIN/COMMIT/SAVEPOINT: use D1Database.batch() for "
                "transactions: SQLITE_AUTH"
            )
        if sqlstore.touches_reserved_table(statement):
            raise _d1_error("not authorized to access _cf_ tables: SQLITE_AUTH")
        self.queries.append((statement, list(params)))
        try:
            return sqlstore.run(self.connection, statement, params)
        except sqlite3.ProgrammingError as exc:
            raise _d1_error(f"Wrong number of parameter bindings for SQL query ({exc})") from None
        except sqlite3.Error as exc:
            raise _d1_error(f"{exc}: SQLITE_ERROR") from None

    def _meta(self, outcome: sqlstore.Outcome) -> JsObject:
        return JsObject(
            {
                "served_by": "jsfake-d1",
                "served_by_region": "local",
                "served_by_primary": True,
                "timings": JsObject({"sql_duration_ms": outcome.duration_ms}),
                "duration": outcome.duration_ms,
                "changes": outcome.changes,
                "last_row_id": outcome.last_row_id,
                "changed_db": outcome.changes > 0,
                "size_after": sqlstore.database_size(self.connection),
                "rows_read": outcome.rows_read,
                "rows_written": outcome.rows_written,
            }
        )

    # --- test helpers ----------------------------------------------------------------------

    def apply_migrations(self, directory: str) -> list[str]:
        """Apply `NNNN_name.sql` files in name order (like `wrangler d1 migrations apply`)."""
        from pathlib import Path

        applied = []
        for path in sorted(Path(directory).glob("*.sql")):
            self.connection.executescript(path.read_text())
            applied.append(path.name)
        return applied

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Read rows directly from sqlite (bypassing the JS surface)."""
        cursor = self.connection.execute(sql, params)
        columns = [d[0] for d in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
