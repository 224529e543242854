"""The one error shape: `{"error": {"code", "message", "correlation_id"}}`.

Every failure reaches the client through `error_response`, with the right status and never a
stack trace or internal detail.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import correlation
from errors import ApiaryError, RateLimited, Unauthorized
from logs import redact

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": redact(message),
        "correlation_id": correlation.current(),
    }
    error.update(extra)
    return {"error": error}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for err in exc.errors():
        location = ".".join(str(part) for part in err.get("loc", ()))
        details.append({"field": location, "problem": err.get("msg", "invalid")})
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return f"invalid request: {summary}" if summary else "invalid request", details


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiaryError)
    async def domain_error(_: Request, exc: ApiaryError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="apiary"'
        return error_response(
            exc.status, exc.code, exc.message, headers or None, **(exc.details or {})
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = _validation_message(exc)
        return error_response(422, "invalid_input", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)
