"""A job backend and a Slack-compatible alert receiver, a real HTTP server on loopback.

Each path follows a script of replies (the last one repeats); every call is recorded with its
headers and JSON body, and every alert (`POST /slack`) is kept in order.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "{}"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: Any
    at: float  # time.time()


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 resets a burst of connections
    daemon_threads = True


class CronBackend:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.alerts: list[dict[str, Any]] = []
        self._script: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = urlsplit(self.path).path
                if path == "/slack":
                    with backend._lock:
                        backend.alerts.append(body)
                    reply = Reply()
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    call = Call(self.command, self.path, headers, body, time.time())
                    with backend._lock:
                        backend.calls.append(call)
                        script = backend._script.get(path, [])
                        reply = script.pop(0) if len(script) > 1 else (script or [Reply()])[0]
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.body.replace("{authorization}", self.headers.get("authorization", ""))
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data.encode())))
                    self.end_headers()
                    self.wfile.write(data.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller timed out and left

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CronBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._script[path] = list(replies)

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if urlsplit(c.path).path == path]
