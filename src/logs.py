"""Structured logs: one JSON object per line, with the correlation id, secrets redacted.

On Cloudflare a line written to stdout becomes a Workers Logs entry; locally it goes to the
terminal. Secret values are registered when services are built (see `register_secrets`) and
replaced wherever they appear in a message or field.
"""

import json
import logging
import sys
from typing import Any

import correlation
from clock import SystemClock, rfc3339

_REDACTED = "[redacted]"
_secrets: set[str] = set()
_clock = SystemClock()
LOGGER_NAME = "apiary"


def register_secrets(values: list[str]) -> None:
    # Short values would redact ordinary words; real secrets are long.
    _secrets.update(v for v in values if len(v) >= 6)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


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
        handler._apiary = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def event(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    logger.log(level, message, extra={"fields": fields} if fields else None)
