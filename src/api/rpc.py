"""Turning a Durable Object's RPC envelope into a result or a domain error, once, at the edge."""

from typing import Any

from errors import ApiaryError, Conflict, NotFound

_BY_STATUS: dict[int, type[ApiaryError]] = {404: NotFound, 409: Conflict}


def unwrap(envelope: dict[str, Any], key: str) -> Any:
    error = envelope.get("error")
    if error:
        kind = _BY_STATUS.get(int(error.get("status", 500)), ApiaryError)
        raise kind(error.get("message", "failed"), code=error.get("code"))
    return envelope[key]
