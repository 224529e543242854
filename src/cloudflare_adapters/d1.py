"""ports.Database over a D1 binding (https://developers.cloudflare.com/d1/worker-api/)."""

from collections.abc import Sequence
from typing import Any

from ports import PortError, QueryResult, SqlValue, Statement

MAX_SAFE_INTEGER = 2**53 - 1  # D1 numbers are JS doubles


def _checked(params: Sequence[SqlValue]) -> list[SqlValue]:
    for value in params:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is not exact in D1 (over 2**53); bind it as text")
    # None stays None: the SDK turns it into JS null (D1 refuses undefined).
    return list(params)


def _result(raw: Any) -> QueryResult:
    meta = raw.get("meta") or {}
    rows = [dict(row) for row in raw.get("results") or []]
    return QueryResult(
        rows=rows,
        changes=int(meta.get("changes") or 0),
        last_row_id=meta.get("last_row_id"),
        rows_read=int(meta.get("rows_read") or 0),
        rows_written=int(meta.get("rows_written") or 0),
    )


class D1Database:
    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def _prepare(self, sql: str, params: Sequence[SqlValue]) -> Any:
        statement = self.binding.prepare(sql)
        return statement.bind(*_checked(params)) if params else statement

    async def execute(self, sql: str, *params: SqlValue) -> QueryResult:
        statement = self._prepare(sql, params)
        try:
            return _result(await statement.all())
        except Exception as exc:
            raise PortError(f"D1: {exc}") from None

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]:
        prepared = [self._prepare(s.sql, s.params) for s in statements]
        try:
            results = await self.binding.batch(prepared)
        except Exception as exc:
            raise PortError(f"D1 batch: {exc}") from None
        return [_result(r) for r in results]
