"""A small HTTP/1.1 client for the one hop from apiary dev's router to workerd's gateway.

The hop is on loopback, to one socket whose answers we trust, on every request to a deployed
Worker: a general client (httpx) spends more per request here than workerd does. This keeps
idle connections for reuse, sends each request in one write, and reads a whole answer (a
Content-Length body, a chunked one, or one ended by closing). A request on a reused connection
that the peer had closed is retried once on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

type Headers = list[tuple[bytes, bytes]]
HEAD_LIMIT = 1024 * 1024
MAX_IDLE = 32


class UpstreamError(Exception):
    """The gateway could not be reached, or broke off its answer."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: Headers  # lower-case names
    body: bytes

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


type Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Upstream:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def request(
        self, method: str, target: str, headers: Headers, body: bytes = b""
    ) -> UpstreamResponse:
        head = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1")]
        head += [k + b": " + v + b"\r\n" for k, v in headers]
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        message = b"".join(head) + body
        while self._idle:
            connection = self._idle.pop()
            if connection[0].at_eof():
                connection[1].close()
                continue
            try:
                return await self._exchange(connection, message, method)
            except _Stale:
                continue
        try:
            connection = await asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT)
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc}") from exc
        try:
            return await self._exchange(connection, message, method)
        except _Stale as exc:
            raise UpstreamError("the gateway closed the connection") from exc

    async def _exchange(
        self, connection: Connection, message: bytes, method: str
    ) -> UpstreamResponse:
        reader, writer = connection
        received = False
        try:
            writer.write(message)
            await writer.drain()
            raw = await reader.readuntil(b"\r\n\r\n")
            received = True
            status, headers = _parse_head(raw)
            body, reusable = await _read_body(reader, status, headers, method)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            if not received:
                raise _Stale from exc
            raise UpstreamError(f"the answer broke off: {type(exc).__name__}") from exc
        except BaseException:
            writer.close()
            raise
        if reusable and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            writer.close()
        return UpstreamResponse(status, headers, body)


class _Stale(Exception):
    pass


def _parse_head(raw: bytes) -> tuple[int, Headers]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not an HTTP/1.1 status line")
    headers: Headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: Headers, method: str
) -> tuple[bytes, bool]:
    """The body, and whether the connection can carry another request."""
    values = dict(headers)
    keep = values.get(b"connection", b"").lower() != b"close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", keep
    if b"chunked" in values.get(b"transfer-encoding", b"").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks), keep
            chunks.append((await reader.readexactly(size + 2))[:-2])
    if b"content-length" in values:
        return await reader.readexactly(int(values[b"content-length"])), keep
    with contextlib.suppress(OSError):
        return await reader.read(), False
    return b"", False
