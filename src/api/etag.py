"""ETags for the API's GET answers, so a page that polls pays for a 304, not the body again.

`ETagMiddleware` buffers each successful JSON answer to a GET under `/api/`, tags it with a
hash of its bytes, and answers `304 Not Modified` when the request's `If-None-Match` already
names that tag. `Cache-Control: private, no-cache` lets the browser keep the body but makes it
ask every time, so a `fetch(url, {cache: "no-cache"})` revalidates and the page sees the
cached body on a 304. The Worker still runs (and the meter counts the request); what is saved
is the transfer and the page's re-render.
"""

import hashlib
from typing import Any, cast

from starlette.types import Scope

CACHE_CONTROL = b"private, no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 13.1.2: a weak comparison against any listed tag, or `*`."""
    if not if_none_match:
        return False
    listed = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in listed or tag in listed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return cast(str, value.decode("latin-1"))  # ASGI header values are bytes
    return None


class ETagMiddleware:
    def __init__(self, app: Any, *, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or not scope.get("path", "").startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def buffer(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffer)

    async def _finish(self, scope: Scope, start: dict[str, Any], body: bytes, send: Any) -> None:
        headers = list(start.get("headers", []))
        names = {k.lower() for k, _ in headers}
        named = {k.lower(): v for k, v in headers}
        taggable = (
            start["status"] == 200
            and named.get(b"content-type", b"").startswith(b"application/json")
            and b"no-store" not in named.get(b"cache-control", b"")
        )
        if not taggable or b"etag" in names:
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        tag = etag_of(body)
        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
        headers += [(b"etag", tag.encode()), (b"cache-control", CACHE_CONTROL)]
        if matches(_header(scope, b"if-none-match"), tag):
            dropped = (b"content-length", b"content-type")
            kept = [(k, v) for k, v in headers if k.lower() not in dropped]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
