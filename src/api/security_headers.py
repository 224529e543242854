"""The security headers every page and every Worker response carries, defined once.

Static assets get them from `public/_headers` (Workers Static Assets applies that file to asset
responses only; `apiary dev` applies it the same way), and `tests/unit/test_security_headers.py`
checks the file says exactly this. Responses the Worker itself makes (the API, `/openapi.json`)
get them from `SecurityHeadersMiddleware`. HSTS goes only on https (RFC 6797 7.2: a host must
not send it over plain http, and browsers ignore it there).
"""

from typing import Any

from starlette.types import Scope

# No 'unsafe-inline' and no 'unsafe-eval': scripts and styles come only from files of this
# origin. `data:` images are Swagger UI's icons; `blob:` is the join page's worker fallback.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"
PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HTTPS_ONLY_HEADERS: dict[str, str] = {"Strict-Transport-Security": HSTS}


def headers_for(*, https: bool) -> dict[str, str]:
    return {**PAGE_HEADERS, **(HTTPS_ONLY_HEADERS if https else {})}


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response the app makes, unless a route set its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (name.lower().encode(), value.encode())
            for name, value in headers_for(https=scope.get("scheme") == "https").items()
        ]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
