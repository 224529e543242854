"""What keeps apiary dev's local-only endpoints local: `/__meter`, `/__scheduled` and
everything under `/client/v4/` (the local Cloudflare account).

A browser page on any site can send requests to 127.0.0.1, and a DNS-rebinding page can even
read the answers, so these endpoints answer only when
- the `Host` is loopback (`127.0.0.1`, `localhost` or `[::1]`, any port): a rebinding page's
  requests carry its own host name;
- the `Origin`, when there is one, is this server's own (http, loopback, this port): a page
  elsewhere cannot make them act;
- and, under `/client/v4/`, the request carries the account's bearer token.
Request bodies are capped before they are buffered: a declared `Content-Length` over the cap
is refused at once, and a chunked body is refused as soon as it passes the cap.
The deployed Workers (`*.localhost` hosts) are not local-only endpoints: they are public on
Cloudflare, and are served as such.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
JSON_BODY_LIMIT = 1024 * 1024  # as the Worker's own edge (api.edge.MAX_BODY_BYTES)
UPLOAD_BODY_LIMIT = 10 * 1024 * 1024  # a Worker upload: Cloudflare's limit on paid plans


class BodyTooLarge(Exception):
    pass


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _hostname(authority: str) -> str:
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority.split("]", 1)[0] + "]"
    return authority.rsplit(":", 1)[0] if ":" in authority else authority


def loopback_host(scope: dict[str, Any]) -> bool:
    host = header(scope, b"host")
    return host is not None and _hostname(host) in LOOPBACK_NAMES


def own_origin(scope: dict[str, Any], port: int) -> bool:
    """No Origin (curl, SDKs, wrangler), or an Origin that is this server."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        return False
    hostname = (parts.hostname or "").lower()
    return (
        parts.scheme == "http"
        and (hostname in LOOPBACK_NAMES or f"[{hostname}]" in LOOPBACK_NAMES)
        and origin_port == port
    )


def bearer_matches(scope: dict[str, Any], token: str) -> bool:
    presented = (header(scope, b"authorization") or "").encode("latin-1", "replace")
    return hmac.compare_digest(presented, f"Bearer {token}".encode())


def declared_too_large(scope: dict[str, Any], limit: int) -> bool:
    declared = header(scope, b"content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > limit)


async def read_body(receive: Any, scope: dict[str, Any], limit: int) -> bytes:
    """The whole body, or `BodyTooLarge` without reading past `limit`."""
    if declared_too_large(scope, limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
