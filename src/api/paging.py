"""Keyset pagination over ULID ids, newest first: the cursor is the last id of a page."""

import base64

from errors import InvalidInput
from ids import looks_like


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


def page[T: dict](rows: list[T], limit: int) -> tuple[list[T], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor for the next one."""
    shown = rows[:limit]
    return shown, encode_cursor(shown[-1]["id"]) if len(rows) > limit else None
