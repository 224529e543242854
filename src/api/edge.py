"""The outermost middleware: correlation id, request log line, body cap, last-resort 500.

Pure ASGI so it wraps everything, including responses from exception handlers. An exception no
handler took is logged with its traceback and answered with the error shape, never a trace.
"""

import json
import logging
import time
from typing import Any, cast

from starlette.types import Scope

import correlation
from api.errors import error_body
from logs import event, get_logger

log = get_logger("http")
MAX_BODY_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

type Message = dict[str, Any]


def body_refusal(
    method: str,
    content_length: str | None,
    *,
    has_body: bool,
    max_bytes: int = MAX_BODY_BYTES,
) -> tuple[int, str, str] | None:
    """Why a request's body is refused before it is read, as (status, code, message), or None.

    A declared length over the cap is 413; a body that declares no length on a method that
    carries one is 411, since its size is known only after buffering it.
    """
    if content_length is None:
        if has_body and method.upper() in BODY_METHODS:
            return 411, "length_required", "Content-Length is required for a request body"
        return None
    if not content_length.strip().isdigit():
        return 400, "bad_request", "invalid Content-Length"
    if int(content_length) > max_bytes:
        return 413, "payload_too_large", "request body too large"
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return cast(str, value.decode("latin-1"))  # ASGI header values are bytes
    return None


class EdgeMiddleware:
    def __init__(self, app: Any, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = correlation.accept_or_new(_header(scope, b"x-correlation-id"))
        token = correlation.bind(cid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"x-correlation-id"
                ]
                headers.append((b"x-correlation-id", cid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        async def send_error(code_status: int, code: str, message: str) -> None:
            body = json.dumps(error_body(code, message)).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": code_status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            # Streaming bodies without a length are capped as they arrive (`_capped`).
            refusal = body_refusal(
                scope.get("method", "GET"),
                _header(scope, b"content-length"),
                has_body=False,
                max_bytes=self.max_body_bytes,
            )
            if refusal is not None:
                await send_error(*refusal)
                return
            await self.app(scope, self._capped(receive), send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await send_error(413, "payload_too_large", "request body too large")
        except Exception:
            log.exception("unhandled error", extra={"fields": {"path": scope.get("path")}})
            if not response_started:
                await send_error(500, "internal", "internal error")
        finally:
            event(
                log,
                logging.INFO,
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            correlation.reset(token)

    def _capped(self, receive: Any) -> Any:
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        return capped


class _BodyTooLarge(Exception):
    pass
