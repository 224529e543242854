"""The ports core logic depends on.

Everything in `src/` outside `cloudflare_adapters/` and `entry.py` talks to the platform only
through these interfaces. Two adapter sets implement them: `cloudflare_adapters` (thin, over the
Python Workers API) and `apiary_local` (CPython, SQLite, uvicorn). Values crossing a port are
plain Python: dicts, lists, str, int, float, bool, None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

type SqlValue = str | int | float | bytes | None
type Row = dict[str, Any]


class PortError(Exception):
    """A platform failure translated by an adapter (never a raw JS or sqlite error)."""


# --- Database (D1) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[SqlValue, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryResult:
    rows: list[Row]
    changes: int = 0
    last_row_id: int | None = None
    rows_read: int = 0
    rows_written: int = 0


class Database(Protocol):
    """D1: asynchronous SQL. `batch` runs its statements as one transaction."""

    async def execute(self, sql: str, *params: SqlValue) -> QueryResult: ...

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]: ...


async def query(db: Database, sql: str, *params: SqlValue) -> list[Row]:
    return (await db.execute(sql, *params)).rows


async def first(db: Database, sql: str, *params: SqlValue) -> Row | None:
    rows = (await db.execute(sql, *params)).rows
    return rows[0] if rows else None


# --- Object storage (a Durable Object's own SQLite) -------------------------------------------


class ObjectStorage(Protocol):
    """Synchronous SQL like `ctx.storage.sql.exec`, plus transactions and the single alarm.

    Writes made while an event is handled are durable before that event's response or socket
    messages leave the object (the output gate).
    """

    def exec(self, query: str, *params: SqlValue) -> list[Row]: ...

    def transaction[T](self, fn: Callable[[], T]) -> T:
        """Run `fn` atomically: if it raises, none of its writes persist."""
        ...

    async def get_alarm(self) -> int | None:
        """The scheduled alarm time in epoch milliseconds, or None."""
        ...

    async def set_alarm(self, epoch_ms: int) -> None: ...

    async def delete_alarm(self) -> None: ...


# --- Sockets (WebSocket Hibernation) ----------------------------------------------------------


class Socket(Protocol):
    """A hibernatable WebSocket. Its attachment survives hibernation; memory does not."""

    def send(self, message: str | bytes) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...

    @property
    def attachment(self) -> dict[str, Any] | None: ...

    def attach(self, value: dict[str, Any] | None) -> None: ...

    @property
    def tags(self) -> list[str]: ...


class SocketHub(Protocol):
    def accept(
        self, *, tags: Sequence[str] = (), attachment: dict[str, Any] | None = None
    ) -> Socket:
        """Accept the WebSocket upgrade being handled now (only inside `on_request`)."""
        ...

    def sockets(self, tag: str | None = None) -> list[Socket]: ...

    def set_auto_response(self, request: str, response: str) -> None:
        """Answer `request` with `response` without waking the object."""
        ...

    def auto_response_timestamp(self, socket: Socket) -> datetime | None: ...


# --- Object namespaces (Durable Object stubs) -------------------------------------------------


class ObjectStub(Protocol):
    async def call(self, method: str, *args: Any) -> Any:
        """Invoke an RPC method of the object; arguments and result are plain values."""
        ...


class Namespace(Protocol):
    def get(self, name: str) -> ObjectStub: ...


# --- Object storage buckets (R2) -------------------------------------------------------------


class Bucket(Protocol):
    """R2: blobs by key. `get` returns None for a missing key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...


# --- Outbound HTTP, clock, config -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpError(PortError):
    """The request got no HTTP answer: `kind` is 'timeout', 'network', or 'refused' (by the
    egress policy, before any connection: retrying cannot help)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Http(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...

    def now_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Config:
    """Vars and secrets. Secrets are known by name so logs and errors can redact them."""

    values: Mapping[str, str] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value in (None, "") else value

    @property
    def environment(self) -> str:
        return self.get("ENVIRONMENT", "development") or "development"

    def secrets(self) -> list[str]:
        return [v for k, v in self.values.items() if k in self.secret_names and v]
