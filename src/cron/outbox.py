"""A JobRunner's outbox: effects outside the object, written in the same transaction as the
change that causes them and delivered after it commits (at least once; each is idempotent or
harmless to repeat). Kinds: `project` (a run's D1 upserts) and `alert` (a webhook message).
"""

import json
import logging
from collections.abc import Callable, Sequence

from logs import event, get_logger
from ports import ObjectStorage, Statement
from services import Services

log = get_logger("cron")
ALERT_TRIES = 5  # then the alert is dropped (and logged): a dead webhook must not pile up
SCHEMA = """CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0)"""


def queue(storage: ObjectStorage, key: str, kind: str, body: str) -> None:
    storage.exec("INSERT OR IGNORE INTO outbox (key, kind, body) VALUES (?, ?, ?)", key, kind, body)


def pending(storage: ObjectStorage) -> bool:
    return bool(storage.exec("SELECT 1 FROM outbox LIMIT 1"))


async def flush(
    storage: ObjectStorage,
    services: Services,
    job: str,
    projection: Callable[[str], Sequence[Statement] | None],
) -> None:
    """Deliver what is queued; what fails stays for the next flush (the caller's alarm)."""
    for item in storage.exec("SELECT * FROM outbox ORDER BY key"):
        try:
            if item["kind"] == "project":
                statements = projection(item["body"])
                if statements:
                    await services.database.batch(statements)
            else:
                await _send(services, job, item["body"])
        except Exception as exc:
            tries = item["tries"] + 1
            if item["kind"] == "alert" and tries >= ALERT_TRIES:
                event(log, logging.ERROR, "alert dropped", job=job, error=str(exc))
                storage.exec("DELETE FROM outbox WHERE key = ?", item["key"])
            else:
                log.warning("outbox flush failed; retrying", exc_info=True)
                storage.exec("UPDATE outbox SET tries = ? WHERE key = ?", tries, item["key"])
            continue
        storage.exec("DELETE FROM outbox WHERE key = ?", item["key"])


async def _send(services: Services, job: str, body: str) -> None:
    url = services.config.get("SLACK_WEBHOOK_URL")
    if not url:
        event(log, logging.WARNING, "alert not sent: SLACK_WEBHOOK_URL is not set", job=job)
        return
    response = await services.http.request(
        "POST", url, json=json.loads(body), headers={}, timeout_s=10
    )
    if response.status >= 300:
        raise RuntimeError(f"alert webhook answered HTTP {response.status}")
