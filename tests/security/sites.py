"""Sites for the attacks: real HTTP servers on loopback that serve the pages a test gives them
and record every request they receive, so a test can say "this site was never asked"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def page(title: str, body: str) -> Reply:
    return Reply(200, f"<!doctype html><html><head><title>{title}</title></head><body>{body}")


def login_form(action: str, method: str = "post") -> Reply:
    return page(
        "Log in",
        f"<form method='{method}' action='{action}'><input id='username' name='username'>"
        "<input id='password' name='password'><button id='submit' type='submit'>Go</button>"
        "</form>",
    )


class RecordingSite:
    """`RecordingSite(host)` serves `pages[path]` (a Reply, or a function of the site giving
    one) for any method, 404 otherwise, and appends every request to `seen`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.pages: dict[str, Reply | Callable[[RecordingSite], Reply]] = {}
        self.seen: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> RecordingSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                site.seen.append(Seen(self.command, self.path, body))
                found = site.pages.get(urlsplit(self.path).path)
                reply = found(site) if callable(found) else found
                reply = reply or Reply(404, "not found")
                data = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> RecordingSite:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
