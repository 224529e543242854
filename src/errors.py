"""Domain errors. Each becomes an HTTP or WebSocket error exactly once, at the edge."""


class ApiaryError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
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
