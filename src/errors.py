"""Domain errors. Each becomes an HTTP or WebSocket error exactly once, at the edge."""

from typing import Any


class ApiaryError(Exception):
    status = 500
    code = "internal"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # extra fields of the error body (plain JSON values)
        if code is not None:
            self.code = code


class InvalidInput(ApiaryError):
    status = 422
    code = "invalid_input"


class Unauthorized(ApiaryError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiaryError):
    status = 403
    code = "forbidden"


class NotFound(ApiaryError):
    status = 404
    code = "not_found"


class Conflict(ApiaryError):
    status = 409
    code = "conflict"


class RateLimited(ApiaryError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ApiaryError):
    status = 503
    code = "unavailable"


class Upstream(ApiaryError):
    """A service apiary depends on (Cloudflare's API) refused or failed: a 502 whose `details`
    carry what it answered (`upstream: {status, code, message}`), never a stack trace."""

    status = 502
    code = "upstream_error"
