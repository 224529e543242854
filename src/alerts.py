"""Alerts: Slack incoming-webhook messages, sent through an object's outbox.

Cron runs, managed Workers' health, rollouts and fleet limits all alert the same way: the
message is built when the change that causes it is decided, redacted, and written to the
outbox in the same transaction (`effect`); the outbox delivers it to `SLACK_WEBHOOK_URL`
(`sender`) after the commit, retrying with backoff, and drops it after `TRIES` failures so a
dead webhook never piles up. The body is Slack's (`text`) plus an `apiary` object with the
fields other receivers want (kind, subject, correlation id...).
https://api.slack.com/messaging/webhooks
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from durable.outbox import Deliver, Effect
from ids import new_id
from logs import event, get_logger, redact
from services import Services

log = get_logger("alerts")
KIND = "alert"  # the outbox kind
TRIES = 5  # then the alert is dropped (and logged)
TIMEOUT_S = 10


def slack_body(text: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"text": text, "apiary": dict(fields)}


def effect(now_ms: int, body: Mapping[str, Any], *, key: str | None = None) -> Effect:
    """An outbox row for one alert (secrets redacted now, before it is stored). A `key` makes
    it idempotent: the same key queued twice is one alert."""
    return Effect(key or f"alert:{new_id(now_ms)}", KIND, redact(json.dumps(body)))


def sender(services: Services) -> Deliver:
    async def send(body: str) -> None:
        url = services.config.get("SLACK_WEBHOOK_URL")
        if not url:
            event(log, logging.WARNING, "alert not sent: SLACK_WEBHOOK_URL is not set")
            return
        response = await services.http.request(
            "POST", url, json=json.loads(body), headers={}, timeout_s=TIMEOUT_S
        )
        if response.status >= 300:
            raise RuntimeError(f"alert webhook answered HTTP {response.status}")

    return send
