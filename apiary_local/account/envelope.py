"""Cloudflare's v4 envelope and the error codes the local account answers with.

Success is `{"success": true, "errors": [], "messages": [], "result": ...}` (plus
`result_info` on paged lists); failure is the same with `success: false`, `result: null` and
`errors: [{"code", "message"}]`. The codes below are Cloudflare's where its API is known to use
them (10000 authentication, 10007 not found, 10090 service not found); the others are in
Cloudflare's 10xxx Workers range, chosen here: clients read the HTTP status and the message.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

AUTHENTICATION = 10000
NOT_FOUND = 10007
SERVICE_NOT_FOUND = 10090
VALIDATION = 10021  # the upload or its metadata is not a valid Worker
BAD_BINDING = 10054  # a binding of an unknown type, or one that cannot run locally
BAD_DEPLOYMENT = 10146  # percentages, versions of another script, too many versions
NAMESPACE_EXISTS = 100119
FORBIDDEN = 10001  # a local-only endpoint asked from a foreign Host or Origin
TOO_LARGE = 10013
ROUTE_NOT_FOUND = 7003
METHOD_NOT_ALLOWED = 7001


class ApiError(Exception):
    """An answer in Cloudflare's failure envelope, raised anywhere and sent once at the edge."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"{what} not found")


def failure_body(code: int, message: str) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }


def failure(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(failure_body(code, message), status_code=status)


def success(
    result: Any,
    *,
    result_info: dict[str, int] | None = None,
    messages: list[str] | None = None,
    status: int = 200,
) -> JSONResponse:
    body: dict[str, Any] = {
        "success": True,
        "errors": [],
        "messages": [{"code": 10000 + i, "message": m} for i, m in enumerate(messages or [])],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)
