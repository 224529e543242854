"""Keyset pagination over ULID ids, newest first: the cursor is the last id of a page."""

import base64
from collections.abc import Mapping
from typing import Any

from errors import InvalidInput
from ids import looks_like
from ports import Database, Row, SqlValue, query


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(value: str | None, prefix: str) -> str | None:
    if value is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(value.encode() + b"==").decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("bad cursor") from None
    if not looks_like(decoded, prefix):
        raise InvalidInput("bad cursor")
    return decoded


def page[T: dict[str, Any]](rows: list[T], limit: int) -> tuple[list[T], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor for the next one."""
    shown = rows[:limit]
    return shown, encode_cursor(shown[-1]["id"]) if len(rows) > limit else None


async def newest_first(
    db: Database,
    select: str,
    *,
    equal: Mapping[str, SqlValue],
    since: str | None = None,
    cursor: str | None,
    prefix: str,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of `select` (`SELECT ... FROM table`), newest id first.

    Filters: `column = value` for each non-None value of `equal`, `created_at >= since`.
    """
    where = [f"{column} = ?" for column, value in equal.items() if value is not None]
    params: list[SqlValue] = [value for value in equal.values() if value is not None]
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    after = decode_cursor(cursor, prefix)
    if after is not None:
        where.append("id < ?")
        params.append(after)
    sql = select + (" WHERE " + " AND ".join(where) if where else "")
    rows = await query(db, f"{sql} ORDER BY id DESC LIMIT ?", *params, limit + 1)
    return page(rows, limit)
