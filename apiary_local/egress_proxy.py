"""A forward proxy on loopback that holds the browser to the egress policy.

Chromium sends every connection through it (`--proxy-server`, with loopback not bypassed):
page loads, redirects, subresources, iframes and WebSockets alike. Playwright's request
routing cannot do this, as it never sees a redirect's next hop. The proxy resolves each host
itself, judges every address with `egress.refusal`, and connects to the address it judged, so
a DNS answer that changes after the check (rebinding) cannot steer the browser elsewhere.

- `CONNECT host:port` (https, wss): a tunnel of bytes; TLS stays end to end.
- `GET http://host/path` (plain http, ws): the request goes on in origin form with
  `Connection: close`, one request per connection, so a reused proxy connection can never carry
  a request to a host that was not judged.

A refusal answers 403 and is logged; nothing is read from the refused host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from egress import EgressPolicy, explain, refusal
from logs import event, get_logger

log = get_logger("egress")
HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT_S = 15.0
_HOP_BY_HOP = (b"proxy-connection", b"connection", b"keep-alive", b"proxy-authorization")


class EgressProxy:
    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.refused: list[str] = []  # what was refused, for tests and diagnostics
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _judge(self, scheme: str, host: str, port: int) -> tuple[str | None, str | None]:
        """(the address to connect to, or None) and why not."""
        url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}/"
        reason = refusal(url, self.policy)
        if reason is not None:
            return None, reason
        if host == "localhost" or host.endswith(".localhost"):
            addresses = ["127.0.0.1"]  # RFC 6761, as Chromium resolves them itself
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError:
                return None, None  # no such host: a plain failure, not a refusal
            addresses = [str(info[4][0]) for info in infos]
        reason = refusal(url, self.policy, addresses)
        return (addresses[0] if reason is None and addresses else None), reason

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > HEAD_LIMIT:
                return
            request_line, *header_lines = head[:-4].split(b"\r\n")
            method, target, version = request_line.split(b" ", 2)
            tunnel = method.upper() == b"CONNECT"
            if tunnel:
                host, _, port_text = target.decode("latin-1").rpartition(":")
                scheme, port, path = "https", int(port_text), ""
                host = host.strip("[]")
            else:
                parts = urlsplit(target.decode("latin-1"))
                scheme, host = parts.scheme, parts.hostname or ""
                port = parts.port or (443 if scheme == "https" else 80)
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            address, reason = await self._judge(scheme if scheme else "http", host, port)
            if address is None:
                await self._refuse(writer, host, port, reason)
                return
            upstream_reader, opened = await asyncio.wait_for(
                asyncio.open_connection(address, port), CONNECT_TIMEOUT_S
            )
            upstream = opened  # closed below, whatever happens next
            if tunnel:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                kept = [
                    line
                    for line in header_lines
                    if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP
                ]
                forwarded = [b" ".join((method, path.encode(), version)), *kept]
                opened.write(b"\r\n".join([*forwarded, b"Connection: close", b"", b""]))
            await asyncio.gather(_pipe(reader, opened), _pipe(upstream_reader, writer))
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the browser or the host went away; the page sees a network error
        except asyncio.LimitOverrunError:
            pass  # a head over the reader's limit: not a request we serve
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    with contextlib.suppress(Exception):
                        stream.close()

    async def _refuse(
        self, writer: asyncio.StreamWriter, host: str, port: int, reason: str | None
    ) -> None:
        if reason is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        else:
            self.refused.append(f"{host}:{port}")
            event(log, logging.WARNING, "audit: browser request refused", host=host, port=port,
                  reason=reason)  # fmt: skip
            body = explain(reason).encode()
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        with contextlib.suppress(Exception):
            await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if sink.can_write_eof():
                sink.write_eof()
