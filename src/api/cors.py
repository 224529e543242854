"""CORS from an allowlist var (`CORS_ORIGINS`, comma separated). No `*` unless configured.

The allowlist is read per request from the services, because on Cloudflare vars arrive with
the request's `env`.
"""

from typing import Any

from starlette.types import Scope

from services import ServicesProvider

ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Correlation-ID"
MAX_AGE = "600"


def allowed_origins(raw: str | None) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip())


class CorsMiddleware:
    def __init__(self, app: Any, *, services: ServicesProvider) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = None
        for key, value in scope.get("headers", ()):
            if key == b"origin":
                origin = value.decode("latin-1")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowlist = allowed_origins(self.services(scope).config.get("CORS_ORIGINS"))
        allowed = "*" if "*" in allowlist else (origin if origin in allowlist else None)
        preflight = scope["method"] == "OPTIONS" and any(
            k == b"access-control-request-method" for k, _ in scope.get("headers", ())
        )
        if preflight:
            headers = [(b"vary", b"Origin")]
            if allowed:
                headers += [
                    (b"access-control-allow-origin", allowed.encode()),
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", MAX_AGE.encode()),
                ]
            await send(
                {
                    "type": "http.response.start",
                    "status": 204 if allowed else 403,
                    "headers": headers,
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"vary", b"Origin")]
                if allowed:
                    headers += [
                        (b"access-control-allow-origin", allowed.encode()),
                        (b"access-control-expose-headers", b"X-Correlation-ID, Retry-After"),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)
