"""Correlation ids: one per request, carried in logs and on every outbound call."""

import contextlib
import re
import secrets
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token

HEADER = "X-Correlation-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return secrets.token_hex(16)


def accept_or_new(incoming: str | None) -> str:
    """Keep a caller's id when it is safe to echo and log; otherwise mint one."""
    if incoming and _ACCEPTABLE.match(incoming):
        return incoming
    return new_correlation_id()


def current() -> str | None:
    return _current.get()


def bind(correlation_id: str | None) -> Token[str | None]:
    """Make `correlation_id` current; returns a token for `reset`."""
    return _current.set(correlation_id)


def reset(token: Token[str | None]) -> None:
    _current.reset(token)


@contextlib.contextmanager
def bound(correlation_id: str | None) -> Iterator[None]:
    """`correlation_id` is current inside the block (each event binds its own once)."""
    token = _current.set(correlation_id)
    try:
        yield
    finally:
        _current.reset(token)


def outgoing(headers: Mapping[str, str] | None) -> dict[str, str]:
    """`headers` for an outbound call, with the current correlation id unless already there."""
    sent = dict(headers or {})
    cid = current()
    if cid and not any(k.lower() == HEADER.lower() for k in sent):
        sent[HEADER] = cid
    return sent
