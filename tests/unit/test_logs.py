"""Structured logs: JSON lines with the correlation id; registered secrets are redacted."""

import io
import json
import logging

import correlation
from logs import configure, event, get_logger, register_secrets


def test_json_lines_with_correlation_id_and_redaction() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("apiary")
    saved = list(logger.handlers)
    logger.handlers.clear()
    try:
        configure("DEBUG", stream)
        register_secrets(["s3cr3t-token-value", "abc"])
        token = correlation.bind("cid-1")
        try:
            event(get_logger("t"), logging.INFO, "using s3cr3t-token-value", user="abc", n=1)
        finally:
            correlation.reset(token)
    finally:
        logger.handlers[:] = saved
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "using [redacted]"
    assert line["correlation_id"] == "cid-1"
    assert line["level"] == "info"
    assert line["fields"] == {"user": "abc", "n": 1}  # short values are not treated as secrets
    assert line["time"].endswith("Z")
