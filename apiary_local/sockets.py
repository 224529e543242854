"""WebSockets with hibernation semantics, hosted outside the object instance.

The hub belongs to the host, not to the instance: sockets, their tags and attachments stay while
the instance is evicted, and the next message wakes a fresh instance. An auto-response is
answered here and never reaches the object. Messages an event sends leave after the event's
writes commit (the output gate).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from clock import from_ms
from ports import PortError, Socket

MAX_TAGS = 10
MAX_TAG_LENGTH = 256
MAX_ATTACHMENT_BYTES = 2048


class Connection(Protocol):
    async def send(self, message: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


class LocalSocket:
    def __init__(self, hub: LocalSocketHub, tags: list[str]) -> None:
        self.hub = hub
        self.id = secrets.token_hex(8)
        self._tags = tags
        self._attachment: Any = None  # JSON values, as decoded from what `attach` was given
        self._flat = True  # no list or object inside: a shallow copy is a deep one
        self.connection: Connection | None = None
        self.auto_response_at_ms: int | None = None
        self.closed = False

    def send(self, message: str | bytes) -> None:
        if self.closed:
            raise PortError("socket is closed")
        self.hub.enqueue(self, message)
        self.hub.meter_sent()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.hub.enqueue(self, _Close(code, reason))

    @property
    def attachment(self) -> dict[str, Any] | None:
        # A copy, as Cloudflare's structured clone is. Objects read every socket's attachment
        # on most events: copying decoded JSON values costs far less than decoding them again.
        if self._attachment is None:
            return None
        return dict(self._attachment) if self._flat else _copy(self._attachment)

    def attach(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self._attachment = None
            return
        encoded = json.dumps(value, separators=(",", ":"))
        if len(encoded.encode()) > MAX_ATTACHMENT_BYTES:
            raise PortError(f"socket attachment over {MAX_ATTACHMENT_BYTES} bytes")
        self._attachment = json.loads(encoded)  # what a round trip keeps, and nothing shared
        self._flat = not any(isinstance(v, dict | list) for v in self._attachment.values())

    @property
    def tags(self) -> list[str]:
        return list(self._tags)


def _copy(value: Any) -> Any:
    """A deep copy of decoded JSON."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# The connection being upgraded, per event: events interleave, so two upgrades handled at once
# must each accept their own.
_upgrading: ContextVar[Connection | None] = ContextVar("upgrading", default=None)


class LocalSocketHub:
    def __init__(self, object_id: str, on_sent: Callable[[], None]) -> None:
        self.object_id = object_id
        self._sockets: dict[str, LocalSocket] = {}
        self._outbox: list[tuple[LocalSocket, str | bytes | _Close]] = []
        self._auto: tuple[str, str] | None = None
        self.meter_sent = on_sent
        self.now_ms: Callable[[], int] = lambda: 0

    # --- ports.SocketHub ---

    def accept(
        self, *, tags: Sequence[str] = (), attachment: dict[str, Any] | None = None
    ) -> LocalSocket:
        connection = _upgrading.get()
        if connection is None:
            raise PortError("accept() is only valid while handling a WebSocket upgrade")
        tags = list(tags)
        if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH or not t for t in tags):
            raise PortError(f"at most {MAX_TAGS} non-empty tags of {MAX_TAG_LENGTH} chars")
        socket = LocalSocket(self, tags)
        socket.attach(attachment)
        socket.connection = connection
        _upgrading.set(None)  # one socket per upgrade
        self._sockets[socket.id] = socket
        return socket

    def sockets(self, tag: str | None = None) -> list[Socket]:
        return [
            s for s in self._sockets.values() if not s.closed and (tag is None or tag in s._tags)
        ]

    def set_auto_response(self, request: str, response: str) -> None:
        self._auto = (request, response)

    def auto_response_timestamp(self, socket: Any) -> datetime | None:
        at = getattr(socket, "auto_response_at_ms", None)
        return None if at is None else from_ms(at)

    # --- for the host ---

    @contextlib.contextmanager
    def upgrading(self, connection: Connection) -> Iterator[None]:
        """While handling this upgrade, `accept()` accepts `connection`."""
        token = _upgrading.set(connection)
        try:
            yield
        finally:
            _upgrading.reset(token)

    def auto_response(self, socket: LocalSocket, message: str | bytes) -> str | None:
        if self._auto is not None and message == self._auto[0]:
            socket.auto_response_at_ms = self.now_ms()
            return self._auto[1]
        return None

    def enqueue(self, socket: LocalSocket, item: str | bytes | _Close) -> None:
        """A message (or the close) to deliver when the event's writes have committed. A
        broadcast enqueues the same string for every socket: nothing is copied or encoded."""
        self._outbox.append((socket, item))

    def discard_outbox(self) -> None:
        self._outbox.clear()

    async def flush(self) -> None:
        """Deliver what the last event sent, after its writes committed."""
        outbox, self._outbox = self._outbox, []
        for socket, item in outbox:
            connection = socket.connection
            if connection is None:
                continue
            try:
                if isinstance(item, _Close):
                    await connection.close(item.code, item.reason)
                else:
                    await connection.send(item)
            except Exception:
                # A send to a socket that went away: its close event will follow.
                socket.closed = True

    def forget(self, socket: LocalSocket) -> None:
        socket.closed = True
        self._sockets.pop(socket.id, None)
