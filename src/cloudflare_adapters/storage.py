"""ports.ObjectStorage over `ctx.storage` (SQLite-backed Durable Objects).

https://developers.cloudflare.com/durable-objects/api/sql-storage ,
https://developers.cloudflare.com/durable-objects/api/alarms
"""

from collections.abc import Callable
from typing import Any, cast

from ports import PortError, Row, SqlValue


class DurableObjectStorage:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def exec(self, query: str, *params: SqlValue) -> list[Row]:
        try:
            cursor = self.storage.sql.exec(query, *params)
            # Consume the cursor now: an open cursor on a table breaks the next statement.
            return [dict(row) for row in cursor.toArray()]
        except Exception as exc:
            raise PortError(f"SQL: {exc}") from None

    def transaction[T](self, fn: Callable[[], T]) -> T:
        # The result and any exception are kept on the Python side, so neither depends on how
        # they would convert through JS; re-raising inside makes transactionSync roll back.
        # The callback's proxy is ours to destroy: left to the SDK's conversion, one would leak
        # per transaction for the life of the isolate.
        from pyodide.ffi import create_proxy

        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as exc:
                outcome["error"] = exc
                raise

        callback = create_proxy(run)
        try:
            self.storage.transactionSync(callback)
        except BaseException as exc:
            if "error" in outcome:
                raise outcome["error"] from None
            raise PortError(f"transaction: {exc}") from None
        finally:
            callback.destroy()
        return cast(T, outcome["value"])  # what fn returned

    async def get_alarm(self) -> int | None:
        value = await self.storage.getAlarm()
        return None if value is None else int(value)

    async def set_alarm(self, epoch_ms: int) -> None:
        await self.storage.setAlarm(int(epoch_ms))

    async def delete_alarm(self) -> None:
        await self.storage.deleteAlarm()
