"""Durable Object storage: `FakeDurableObjectStorage` with its SQLite API (`SqlStorage`).

Contracts:
- SQL (https://developers.cloudflare.com/durable-objects/api/sql-storage/): `sql.exec(query,
  ...bindings)` is synchronous and returns a SqlStorageCursor (`toArray()`, `one()`, `raw()`,
  `next()`, iteration, `columnNames`, `rowsRead`, `rowsWritten`); several statements may be given,
  the bindings apply to the last one and the cursor is the last one's. Bindings are
  `ArrayBuffer | string | number | null` (`undefined` is accepted as NULL; booleans and BigInts
  are refused here). BLOBs read back as ArrayBuffer. `one()` throws unless exactly one row.
  BEGIN/SAVEPOINT are refused: `transactionSync(fn)` runs `fn` synchronously and rolls back if it
  throws (an async `fn` is refused too). `databaseSize` is the file size.
- Storage (https://developers.cloudflare.com/durable-objects/api/storage-api/): KV `get/put/
  delete/list/deleteAll` (values are structured clones; `get` of a missing key is undefined),
  `transaction(fn)`, alarms `getAlarm()` (ms or null), `setAlarm(ms | Date)`, `deleteAlarm()`,
  `sync()`; all of these return promises. `deleteAll()` also drops the SQL tables.
- The SDK wraps `ctx.storage` in its binding wrapper (`workers.entrypoints.DurableObjectContext`),
  so through `self.ctx.storage` arguments are converted with `python_to_rpc` (None -> null) and
  results with `python_from_rpc` (rows -> dicts).
"""

from __future__ import annotations

import inspect
import sqlite3
from typing import Any

from . import sqlstore
from .buffers import ArrayBuffer, JsBuffer
from .clone import structured_clone
from .errors import JsException, error, type_error
from .jsglobals import JsDate
from .promises import JsPromise
from .proxy import JsNull, jsnull
from .values import (
    JsArray,
    JsIterator,
    JsMap,
    JsObject,
    JsProxy,
    PyProxy,
    await_js,
    call_function,
    is_awaitable_value,
    is_bigint,
    js_method,
    js_number,
)

# ---------------------------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------------------------


def _sql_error(message: str) -> JsException:
    return error(message)


def _sql_bind(value: Any) -> Any:
    if value is None or isinstance(value, JsNull):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise type_error(
            "SQL bindings must be ArrayBuffer | string | number | null; got a boolean "
            "(bind 1/0 instead)"
        )
    if is_bigint(value):
        raise type_error("SQL bindings cannot be BigInt (ints beyond 2**53 are BigInt in JS)")
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, JsBuffer):
        return value.to_bytes()
    if isinstance(value, PyProxy):
        raise type_error(f"SQL bindings cannot be a Python {value.type} (PyProxy)")
    raise type_error(f"Unsupported SQL binding of type {getattr(value, 'js_class', '?')}")


def _sql_read(value: Any) -> Any:
    if value is None:
        return jsnull
    if isinstance(value, bytes):
        return ArrayBuffer(value)
    if isinstance(value, int) and abs(value) > 2**53:
        return float(value)
    if isinstance(value, float):
        return js_number(value)
    return value


class SqlStorageCursor(JsProxy):
    js_class = "SqlStorageCursor"

    def __init__(self, outcome: sqlstore.Outcome) -> None:
        self._columns = outcome.columns
        self._rows = [tuple(_sql_read(v) for v in row) for row in outcome.rows]
        self._index = 0
        self.rowsRead = outcome.rows_read
        self.rowsWritten = outcome.rows_written

    @property
    def columnNames(self) -> JsArray:
        return JsArray(self._columns)

    def _take(self) -> list[tuple[Any, ...]]:
        rows = self._rows[self._index :]
        self._index = len(self._rows)
        return rows

    def _object(self, row: tuple[Any, ...]) -> JsObject:
        return JsObject(dict(zip(self._columns, row, strict=True)))

    def toArray(self) -> JsArray:
        return JsArray(self._object(row) for row in self._take())

    def one(self) -> JsObject:
        rows = self._take()
        if not rows:
            raise error("Expected exactly one result from SQL query, but got no results.")
        if len(rows) > 1:
            raise error("Expected exactly one result from SQL query, but got multiple results.")
        return self._object(rows[0])

    def raw(self) -> Any:
        return JsIterator(JsArray(row) for row in self._take())

    def next(self) -> JsObject:
        if self._index >= len(self._rows):
            return JsObject({"done": True, "value": None})
        row = self._rows[self._index]
        self._index += 1
        return JsObject({"done": False, "value": self._object(row)})

    def __iter__(self) -> SqlStorageCursor:
        return self

    def __next__(self) -> JsObject:
        if self._index >= len(self._rows):
            raise StopIteration
        row = self._rows[self._index]
        self._index += 1
        return self._object(row)


class SqlStorage(JsProxy):
    js_class = "SqlStorage"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self.statements: list[tuple[str, list[Any]]] = []

    @property
    def databaseSize(self) -> int:
        return sqlstore.database_size(self._conn)

    @js_method
    def exec(self, query: Any = None, *bindings: Any) -> SqlStorageCursor:
        if not isinstance(query, str):
            raise type_error("sql.exec() expects a SQL string")
        if len(query.encode()) > sqlstore.MAX_STATEMENT_BYTES:
            raise _sql_error("statement too long: SQLITE_TOOBIG")
        statements = sqlstore.split_statements(query)
        if not statements:
            raise _sql_error("sql.exec() got no SQL statement")
        for statement in statements:
            if sqlstore.is_transaction_statement(statement):
                raise _sql_error(
                    "To execute a transaction, please use the state.storage.transactionSync() or "
                    "state.storage.transaction() APIs instead of the SQL BEGIN TRANSACTION or "
                    "SAVEPOINT statements. The JavaScript API is safer because it will "
                    "automatically roll back on exceptions, and because it interacts correctly "
                    "with Durable Objects' automatic atomic write coalescing."
                )
            if sqlstore.touches_reserved_table(statement):
                raise _sql_error(f"not authorized to use {statement!r}: SQLITE_AUTH")
        if len(bindings) > sqlstore.MAX_BOUND_PARAMETERS:
            raise _sql_error("too many SQL variables: SQLITE_ERROR")
        params = [_sql_bind(b) for b in bindings]
        try:
            for statement in statements[:-1]:
                sqlstore.run(self._conn, statement, [])
            self.statements.append((statements[-1], params))
            outcome = sqlstore.run(self._conn, statements[-1], params)
        except sqlite3.ProgrammingError as exc:
            raise _sql_error(f"{exc}: SQLITE_RANGE") from None
        except sqlite3.Error as exc:
            raise _sql_error(f"{exc}: SQLITE_ERROR") from None
        return SqlStorageCursor(outcome)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


class FakeDurableObjectStorage(JsProxy):
    js_class = "DurableObjectStorage"

    def __init__(self, connection: sqlite3.Connection | None = None) -> None:
        self.connection = connection or sqlstore.connect()
        self.sql = SqlStorage(self.connection)
        self._kv: dict[str, Any] = {}
        self._alarm: int | None = None
        self._txn_depth = 0
        # Test side: every callback handed to transactionSync (a PyProxy when Python passed a
        # function: whoever made it must destroy it, or it leaks for the isolate's lifetime).
        self.transaction_callbacks: list[Any] = []

    # transactions
    @js_method
    def transactionSync(self, closure: Any = None) -> Any:
        self.transaction_callbacks.append(closure)
        self._txn_depth += 1
        name = f"jsfake_txn_{self._txn_depth}"
        self.connection.execute(f"SAVEPOINT {name}")
        try:
            result = call_function(closure)
            if is_awaitable_value(result):
                awaitable = result._obj if isinstance(result, PyProxy) else result
                if inspect.iscoroutine(awaitable):
                    awaitable.close()
                raise type_error(
                    "jsfake: transactionSync() callback must be synchronous, it "
                    "returned an awaitable"
                )
        except BaseException:
            self.connection.execute(f"ROLLBACK TO {name}")
            self.connection.execute(f"RELEASE {name}")
            raise
        else:
            self.connection.execute(f"RELEASE {name}")
            return result
        finally:
            self._txn_depth -= 1

    @js_method
    def transaction(self, closure: Any = None) -> JsPromise:
        async def run() -> Any:
            self._txn_depth += 1
            name = f"jsfake_txn_{self._txn_depth}"
            self.connection.execute(f"SAVEPOINT {name}")
            try:
                result = await await_js(call_function(closure, self))
            except BaseException:
                self.connection.execute(f"ROLLBACK TO {name}")
                self.connection.execute(f"RELEASE {name}")
                raise
            finally:
                self._txn_depth -= 1
            self.connection.execute(f"RELEASE {name}")
            return result

        return JsPromise(run())

    # key-value API
    @staticmethod
    def _key(key: Any) -> str:
        if not isinstance(key, str):
            raise type_error("Storage keys must be strings")
        return key

    @staticmethod
    def _keys(keys: Any) -> list[str] | None:
        if isinstance(keys, JsArray):
            return [FakeDurableObjectStorage._key(k) for k in keys._items]
        if isinstance(keys, PyProxy):
            raise type_error(
                f"jsfake: storage keys must be a string or a JS array, not a Python {keys.type}"
            )
        return None

    @js_method
    def get(self, keys: Any = None, *_options: Any) -> JsPromise:
        def get() -> Any:
            many = self._keys(keys)
            if many is None:
                key = self._key(keys)
                return structured_clone(self._kv[key]) if key in self._kv else None
            found = JsMap()
            for key in many:
                if key in self._kv:
                    found._data[key] = structured_clone(self._kv[key])
            return found

        return JsPromise.from_call(get)

    @js_method
    def put(self, key_or_entries: Any = None, value: Any = None, *_options: Any) -> JsPromise:
        def put() -> None:
            if type(key_or_entries) is JsObject:
                for key, item in key_or_entries._props.items():
                    self._kv[key] = structured_clone(item)
                return
            key = self._key(key_or_entries)
            if value is None:
                raise type_error("jsfake: put() needs a value (undefined cannot be stored)")
            self._kv[key] = structured_clone(value)

        return JsPromise.from_call(put)

    @js_method
    def delete(self, keys: Any = None, *_options: Any) -> JsPromise:
        def delete() -> Any:
            many = self._keys(keys)
            if many is None:
                return self._kv.pop(self._key(keys), None) is not None
            return sum(1 for key in many if self._kv.pop(key, None) is not None)

        return JsPromise.from_call(delete)

    @js_method
    def list(self, options: Any = None) -> JsPromise:
        def list_() -> JsMap:
            prefix = getattr(options, "prefix", None) if options is not None else None
            start = getattr(options, "start", None) if options is not None else None
            end = getattr(options, "end", None) if options is not None else None
            limit = getattr(options, "limit", None) if options is not None else None
            reverse = bool(getattr(options, "reverse", False)) if options is not None else False
            keys = sorted(self._kv, reverse=reverse)
            selected = [
                k
                for k in keys
                if (prefix is None or k.startswith(prefix))
                and (start is None or k >= start)
                and (end is None or k < end)
            ]
            if limit is not None:
                selected = selected[: int(limit)]
            result = JsMap()
            for key in selected:
                result._data[key] = structured_clone(self._kv[key])
            return result

        return JsPromise.from_call(list_)

    def deleteAll(self, *_options: Any) -> JsPromise:
        def delete_all() -> None:
            self._kv.clear()
            self._alarm = None
            for table in sqlstore.user_tables(self.connection):
                self.connection.execute(f'DROP TABLE IF EXISTS "{table}"')

        return JsPromise.from_call(delete_all)

    # alarms
    def getAlarm(self, *_options: Any) -> JsPromise:
        return JsPromise.resolve(jsnull if self._alarm is None else self._alarm)

    @js_method
    def setAlarm(self, scheduled_time: Any = None, *_options: Any) -> JsPromise:
        def set_alarm() -> None:
            if isinstance(scheduled_time, JsDate):
                self._alarm = int(scheduled_time.getTime())
            elif isinstance(scheduled_time, int | float) and not isinstance(scheduled_time, bool):
                self._alarm = int(scheduled_time)
            else:
                raise type_error("setAlarm() expects a number of ms since the epoch or a Date")

        return JsPromise.from_call(set_alarm)

    def deleteAlarm(self, *_options: Any) -> JsPromise:
        def delete_alarm() -> None:
            self._alarm = None

        return JsPromise.from_call(delete_alarm)

    def sync(self) -> JsPromise:
        return JsPromise.resolve(None)

    # test helpers
    @property
    def alarm_ms(self) -> int | None:
        return self._alarm

    @property
    def kv(self) -> dict[str, Any]:
        return dict(self._kv)
