"""Structured logs: one JSON object per line, with the correlation id, secrets redacted.

On Cloudflare a line written to stdout becomes a Workers Logs entry; locally it goes to the
terminal. Secret values are registered when services are built (see `register_secrets`) and
replaced wherever they appear in a message or field.
"""

import base64
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import correlation
from clock import SystemClock, rfc3339

_REDACTED = "[redacted]"
_secrets: set[str] = set()
_clock = SystemClock()
LOGGER_NAME = "apiary"


def encoded_forms(secret: str) -> set[str]:
    """The ways a secret travels in text: as it is, URL- and form-encoded, and base64."""
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def register_secrets(values: Iterable[str]) -> None:
    # Short values would redact ordinary words; real secrets are long.
    _secrets.update(form for v in values if len(v) >= 6 for form in encoded_forms(v))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` replaced, longest first (so a secret containing a shorter
    one is scrubbed whole)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def redact(text: str) -> str:
    return scrub(text, _secrets)


def redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value with `secrets` scrubbed from every string in it."""
    found = sorted(set(secrets), key=len, reverse=True)
    if isinstance(value, dict):
        return {k: redact_value(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, found) for v in value]
    return scrub(value, found) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname.lower(),
            "time": rfc3339(_clock.now()),
            "message": record.getMessage(),
            "correlation_id": correlation.current(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry["fields"] = fields
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, separators=(",", ":")))


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Install the JSON handler on the apiary logger once (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    logger.propagate = False
    if not any(getattr(h, "_apiary", False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._apiary = True  # type: ignore[attr-defined]  # our mark, for the check above
        logger.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    logger.log(level, message, extra={"fields": fields} if fields else None)
